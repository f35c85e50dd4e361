//! Bad input gets one clear line and the documented exit code; no root needed.

mod common;

use std::process::{Command, Output};

use common::{is_root, require_cgroup2, TempDir};

fn dnsdoc(args: &[&str]) -> Output {
    common::run_dnsdoc(args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_flags_and_values_are_usage_errors() {
    for args in [
        &["watch", "--bogus"][..],
        &["watch", "--duration", "0s"],
        &["watch", "--duration", "ten"],
        &["watch", "--duration", "25h"],
        &["watch", "--port", "0"],
        &["watch", "--port", "70000"],
        &["watch", "--format", "xml"],
        &["nonsense"],
        &["watch", "--port", "53", "--port", "53"],
        &[
            "watch", "-p1", "-p2", "-p3", "-p4", "-p5", "-p6", "-p7", "-p8", "-p9",
        ],
        &["watch", "--pid", "4000000000"],
        &["watch", "--max-pending", "0"],
        &["watch", "--ring-buffer-bytes", "100"],
        &["doctor", "--ring-buffer-bytes", "2000000000"],
    ] {
        let o = dnsdoc(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {err}");
        // One line: what is wrong, clap's hint if any, and the usage.
        assert!(err.starts_with("dnsdoc: error: "), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("usage: dnsdoc"), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: nothing ran");
    }
}

#[test]
fn help_teaches_with_examples() {
    let o = dnsdoc(&["watch", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "Examples:",
        "--duration",
        "--cgroup",
        "--port",
        "CAP_BPF",
        "Ctrl-C",
    ] {
        assert!(text.contains(needle), "watch --help lacks {needle}");
    }
}

#[test]
fn missing_output_directory_is_refused_before_capturing() {
    let out = "/nonexistent-dnsdoc-dir/x.json";
    let chaos = [
        "chaos",
        "--induce",
        "dns-flood",
        "--target",
        "127.0.0.1:5",
        "--yes",
        "--verify",
        "-o",
        out,
    ];
    for args in [
        &["watch", "--duration", "1s", "-o", out][..],
        &["doctor", "--duration", "1s", "-o", out],
        &chaos,
    ] {
        let o = dnsdoc(args);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "one line: {}", stderr(&o));
        assert!(stderr(&o).contains("does not exist"), "{args:?}");
    }
}

#[test]
fn unknown_cgroup_is_a_usage_error() {
    if !require_cgroup2("unknown_cgroup_is_a_usage_error") {
        return;
    }
    let o = dnsdoc(&[
        "watch",
        "--duration",
        "1s",
        "--cgroup",
        "no/such/cgroup-dnsdoc",
    ]);
    // Without root the privilege check comes first (exit 3); with root, the cgroup (64).
    let code = o.status.code();
    assert!(
        code == Some(64) || code == Some(3),
        "{code:?}: {}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

/// Runs dnsdoc as `nobody` (via setpriv when we are root; directly otherwise).
#[test]
fn unprivileged_run_names_the_missing_capabilities() {
    let exe = env!("CARGO_BIN_EXE_dnsdoc");
    let o = if is_root() {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", exe])
            .args(["watch", "--duration", "1s"])
            .output()
            .expect("setpriv (util-linux)")
    } else {
        dnsdoc(&["watch", "--duration", "1s"])
    };
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "one line, no stack trace: {err}");
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_NET_ADMIN"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn corrupt_snapshot_file_is_rejected_by_the_reader() {
    let dir = TempDir::new("cli");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"schema\": 1, \"window\": ").unwrap();
    let err = dnsdoc::snapshot::Snapshot::read(&bad).unwrap_err();
    assert_eq!(dnsdoc::exit::code_for(&err), dnsdoc::exit::INPUT);
    assert!(err.to_string().contains("not a dnsdoc snapshot"), "{err}");
    let missing = dnsdoc::snapshot::Snapshot::read(&dir.path().join("absent.json")).unwrap_err();
    assert_eq!(dnsdoc::exit::code_for(&missing), dnsdoc::exit::INPUT);
}

#[test]
fn completions_and_man_page_come_from_the_same_definitions_as_help() {
    let o = dnsdoc(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let script = String::from_utf8_lossy(&o.stdout);
    for word in ["_dnsdoc", "watch", "doctor", "chaos", "--ring-buffer-bytes"] {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
    let o = dnsdoc(&["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(
        page.starts_with(".ie") && page.contains(".TH dnsdoc 1"),
        "{page}"
    );
    assert!(
        page.contains("doctor"),
        "the man page lists the subcommands"
    );
    let o = dnsdoc(&["completions", "tcsh"]);
    assert_eq!(
        o.status.code(),
        Some(64),
        "an unknown shell is a usage error"
    );
    assert!(stderr(&o).contains("possible values"), "{}", stderr(&o));
}

#[test]
fn each_format_flag_says_what_its_json_holds() {
    let help = |args: &[&str]| {
        let o = dnsdoc(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let chaos = help(&["chaos", "--help"]);
    assert!(!chaos.contains("The snapshot as JSON"), "{chaos}");
    assert!(chaos.contains("report as JSON"), "{chaos}");
    let metrics = help(&["rules", "metrics", "--help"]);
    assert!(!metrics.contains("incident"), "{metrics}");
    assert!(metrics.contains("docs/RULES.md"), "{metrics}");
    assert!(help(&["watch", "--help"]).contains("snapshot as JSON"));
    assert!(help(&["doctor", "--help"]).contains("incident ticket"));
}

#[test]
fn a_cgroup_v1_directory_is_named_as_such() {
    // A v1 hierarchy on this host (hybrid mode mounts them next to the cgroup2 one).
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(v1) = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split_whitespace().next() == Some("cgroup"))
            .then(|| left.split_whitespace().nth(4).map(str::to_string))
            .flatten()
    }) else {
        eprintln!("a_cgroup_v1_directory_is_named_as_such: no cgroup v1 mount on this host");
        return;
    };
    if !is_root() {
        eprintln!(
            "a_cgroup_v1_directory_is_named_as_such: needs root (privileges are checked first)"
        );
        return;
    }
    let o = dnsdoc(&["watch", "--duration", "1s", "--cgroup", &v1]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(64), "{err}");
    assert!(err.contains("cgroup v1"), "{err}");
    assert!(err.contains("cgroup2 mount"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
