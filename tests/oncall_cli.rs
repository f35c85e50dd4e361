//! What an on-call engineer or a CI job meets first: a snapshot piped on stdin, a
//! quiet node failing `--require-traffic` with its own exit code, `explain`,
//! `version`. No BPF needed except where a test says so.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::*;

const HEALTHY: &str = "tests/fixtures/snapshots/healthy.json";
const EMPTY: &str = "tests/fixtures/snapshots/empty.json";

fn dnsdoc_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dnsdoc"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn snapshot_dash_reads_standard_input() {
    let json = std::fs::read(HEALTHY).unwrap();
    let piped = dnsdoc_stdin(&["doctor", "--snapshot", "-", "--format", "json"], &json);
    let file = run_dnsdoc(&["doctor", "--snapshot", HEALTHY, "--format", "json"]);
    assert_eq!(piped.status.code(), file.status.code(), "{}", err(&piped));
    let a: serde_json::Value = serde_json::from_slice(&piped.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&file.stdout).unwrap();
    assert_eq!(
        a["findings"], b["findings"],
        "the same judgement either way"
    );
    // Garbage on stdin is bad input (exit 4), said in one line.
    let bad = dnsdoc_stdin(&["doctor", "--snapshot", "-"], b"not json");
    assert_eq!(bad.status.code(), Some(4), "{}", err(&bad));
    assert_eq!(err(&bad).lines().count(), 1, "{}", err(&bad));
}

#[test]
fn require_traffic_fails_a_quiet_window_with_its_own_exit_code() {
    let quiet = run_dnsdoc(&["doctor", "--snapshot", EMPTY, "--require-traffic", "1"]);
    assert_eq!(quiet.status.code(), Some(6), "{}", err(&quiet));
    assert!(
        err(&quiet).contains("--require-traffic 1"),
        "{}",
        err(&quiet)
    );
    assert!(!quiet.stdout.is_empty(), "the report is still printed");
    let busy = run_dnsdoc(&["doctor", "--snapshot", HEALTHY, "--require-traffic", "1"]);
    assert_ne!(busy.status.code(), Some(6), "{}", err(&busy));
    let zero = run_dnsdoc(&["doctor", "--snapshot", HEALTHY, "--require-traffic", "0"]);
    assert_eq!(zero.status.code(), Some(64), "N must be at least 1");
}

#[test]
fn watch_require_traffic_on_a_silent_cgroup_exits_6() {
    if !require_bpf("watch_require_traffic_on_a_silent_cgroup_exits_6") {
        return;
    }
    let cg = TestCgroup::new("quiet");
    let port = free_port();
    let out = run_dnsdoc(&[
        "watch",
        "--duration",
        "500ms",
        "--no-progress",
        "--port",
        &port.to_string(),
        "--cgroup",
        cg.path.to_str().unwrap(),
        "--require-traffic",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", err(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("capture:"),
        "the summary is printed first"
    );
}

#[test]
fn explain_prints_a_rule_offline_and_findings_point_there() {
    let o = run_dnsdoc(&["explain", "dns_timeouts"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let rule = builtin_rule("dns_timeouts");
    assert!(
        text.starts_with(&format!("dns_timeouts: {}", rule.title)),
        "{text}"
    );
    assert!(text.contains("thresholds"), "{text}");
    assert!(text.contains("What to do"), "{text}");
    // A typo gets one line with the near miss, exit 64.
    let o = run_dnsdoc(&["explain", "dns_timeout"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(
        err(&o).contains("did you mean dns_timeouts?"),
        "{}",
        err(&o)
    );
    assert_eq!(err(&o).lines().count(), 1);
    // A node has no docs/RULES.md: the report says how to read the rule there.
    let o = run_dnsdoc(&[
        "doctor",
        "--snapshot",
        "tests/fixtures/snapshots/incident.json",
    ]);
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(report.contains("more: dnsdoc explain dns_"), "{report}");
    assert!(!report.contains("docs/RULES.md"), "{report}");
}

#[test]
fn version_is_dash_v_plus_the_commit_and_kernel_facts() {
    let v = run_dnsdoc(&["-V"]);
    assert_eq!(v.status.code(), Some(0));
    let dash_v = String::from_utf8_lossy(&v.stdout).trim().to_string();
    assert!(dash_v.starts_with("dnsdoc 0."), "{dash_v}");
    assert!(dash_v.contains("(commit "), "{dash_v}");
    let o = run_dnsdoc(&["version"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().next().unwrap(), dash_v, "the first line is -V");
    assert!(text.contains("kernel "), "{text}");
    assert!(
        text.contains("BPF"),
        "BPF feature facts (or why not probed): {text}"
    );
    let j = run_dnsdoc(&["version", "--format", "json"]);
    let j: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    let commit = j["git_commit"].as_str().unwrap();
    assert!(dash_v.contains(commit), "{commit} in {dash_v}");
    // Built from this checkout: the commit is one of its own (HEAD when nothing was
    // committed since the build; a commit made while the tests ran is newer).
    if let Ok(out) = Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{}^{{commit}}", commit.trim_end_matches("-dirty")),
        ])
        .output()
    {
        if Command::new("git")
            .args(["rev-parse", "--git-dir"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                out.status.success(),
                "{commit} is not a commit of this checkout"
            );
        }
    }
}

#[test]
fn watch_tables_group_short_lived_processes_and_say_what_they_cut() {
    if !require_bpf("watch_tables_group_short_lived_processes_and_say_what_they_cut") {
        return;
    }
    let cg = TestCgroup::new("top");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    // The window ends after the digs (Ctrl-C), not at a fixed time: under an emulated
    // CPU twelve digs take longer than a short window.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnsdoc"));
    cmd.args(["watch", "--duration", "120s", "--no-progress", "--top", "2"])
        .args(["--port", &port.to_string(), "--cgroup"])
        .arg(&cg.path)
        .env("NO_COLOR", "1");
    let watch = spawn_attached(cmd);
    // Twelve short-lived digs, each asking a name that does not exist.
    for i in 0..12 {
        let (_, out) = cg.run(
            "dig",
            &[
                "@127.0.0.1",
                "-p",
                &port.to_string(),
                &format!("missing{i}.test"),
                "+tries=1",
            ],
        );
        assert_eq!(dig_status(&out).as_deref(), Some("NXDOMAIN"));
    }
    let (code, text, stderr) = watch.interrupt();
    assert_eq!(code, Some(0), "{stderr:?}");
    assert!(
        text.contains("12 pids"),
        "one row for the twelve digs: {text}"
    );
    assert!(
        text.contains("... and 10 more (--top N"),
        "12 failing names, 2 shown: {text}"
    );
    assert!(
        text.contains("Client latency (12 samples"),
        "the latency chart: {text}"
    );
    assert!(text.contains('█'), "{text}");
}

#[test]
fn rule_file_slips_get_one_plain_line() {
    let dir = TempDir::new("oncall-rules");
    let rule_file = dir.write(
        "site.toml",
        "[[rule]]\nid = \"dns_high_latency\"\nwarning = 150.0\n",
    );
    // `rules test` on a rule file says what it is.
    let o = run_dnsdoc(&["rules", "test", &rule_file]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        err(&o).contains("this is a rule file, not a rule test file"),
        "{}",
        err(&o)
    );
    // An empty rules.d is normal: doctor judges with the built-ins.
    let empty = dir.path().join("rules.d");
    std::fs::create_dir(&empty).unwrap();
    let o = run_dnsdoc(&[
        "doctor",
        "--snapshot",
        HEALTHY,
        "--rules",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

#[test]
fn a_snapshot_that_cannot_be_written_keeps_the_summary_and_a_fallback() {
    if !require_bpf("a_snapshot_that_cannot_be_written_keeps_the_summary_and_a_fallback") {
        return;
    }
    let cg = TestCgroup::new("fallback");
    // /proc passes the early check (a directory that exists) but refuses new files.
    let out = run_dnsdoc(&[
        "watch",
        "--duration",
        "300ms",
        "--no-progress",
        "--cgroup",
        cg.path.to_str().unwrap(),
        "-o",
        "/proc/dnsdoc-cannot-write.json",
    ]);
    let e = err(&out);
    assert_eq!(out.status.code(), Some(5), "{e}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("capture:"),
        "summary printed"
    );
    let fallback = e
        .split("saved to ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no fallback path: {e}"));
    let snap = dnsdoc::snapshot::Snapshot::read(std::path::Path::new(fallback)).unwrap();
    assert_eq!(snap.schema, dnsdoc::snapshot::SCHEMA);
    std::fs::remove_file(fallback).unwrap();
}
