//! `dnsdoc chaos` command line: the scenario list, and every refusal happens before a
//! single packet is sent (no root needed: nothing here loads BPF or sends DNS).

use std::process::{Command, Output};

fn chaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dnsdoc"))
        .arg("chaos")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run dnsdoc")
}

/// Exit code 64 and exactly one line on stderr that contains `needle`.
fn assert_usage_error(args: &[&str], needle: &str) {
    let out = chaos(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("dnsdoc: error: "), "{err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected '{needle}' in: {err}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn list_names_every_scenario_with_its_paired_rules() {
    let out = chaos(&["--list"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for (name, rules) in [
        ("dns-flood", "dns_high_latency, dns_failure_rate"),
        ("nxdomain-storm", "dns_nxdomain_ratio"),
        ("dns-loss", "dns_failure_rate, dns_timeouts"),
    ] {
        let at = text
            .find(&format!("\n{name}\n"))
            .unwrap_or_else(|| panic!("{name} in:\n{text}"));
        let section = &text[at..];
        let paired = section
            .lines()
            .find_map(|l| l.trim().strip_prefix("paired rules:"))
            .unwrap();
        assert_eq!(paired.trim(), rules, "{name}");
        assert!(section.contains("why:"), "{name} says why");
    }
    assert!(!text.contains('\x1b'), "no colour when piped");
}

#[test]
fn list_as_json_matches_the_text() {
    let out = chaos(&["--list", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "dns-flood",
            "nxdomain-storm",
            "dns-loss",
            "truncation",
            "upstream-timeout",
            "tunnel",
            "dga",
            "search-path",
            "conntrack-race",
        ]
    );
    // docs/CHAOS.md lists every scenario in its table of scenarios and of intensities.
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CHAOS.md")).unwrap();
    for n in &names {
        let rows = doc.matches(&format!("\n| `{n}` |")).count();
        assert_eq!(rows, 2, "{n}: {rows} table rows in docs/CHAOS.md");
    }
    // --help offers exactly the registry's scenarios.
    let help = chaos(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for n in &names {
        assert!(help.contains(n), "{n} missing from chaos --help:\n{help}");
    }
    for s in v.as_array().unwrap() {
        assert!(!s["paired_rules"].as_array().unwrap().is_empty());
        assert!(s["intensities"].as_str().unwrap().contains("high"));
    }
}

#[test]
fn help_has_examples_and_explains_safety() {
    let out = chaos(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Examples:"), "{text}");
    assert!(text.contains("--allow-remote"));
    assert!(text.contains("kill -9"));
    let short = String::from_utf8(chaos(&["-h"]).stdout).unwrap();
    assert!(short.contains("Examples:"));
}

#[test]
fn the_target_is_required_and_never_guessed() {
    assert_usage_error(&["--induce", "dns-flood", "--yes"], "--target");
    assert_usage_error(
        &["--induce", "dns-flood", "--target", "localhost:53", "--yes"],
        "not resolved",
    );
    assert_usage_error(
        &["--induce", "dns-flood", "--target", "127.0.0.1", "--yes"],
        "port",
    );
}

#[test]
fn a_remote_target_needs_allow_remote_and_gets_lower_limits() {
    assert_usage_error(
        &["--induce", "dns-flood", "--target", "192.0.2.1:53", "--yes"],
        "--allow-remote",
    );
    assert_usage_error(
        &[
            "--induce",
            "dns-flood",
            "--target",
            "192.0.2.1:53",
            "--allow-remote",
            "--qps",
            "5000",
            "--yes",
        ],
        "between 1 and 1000",
    );
    assert_usage_error(
        &[
            "--induce",
            "dns-flood",
            "--target",
            "192.0.2.1:53",
            "--allow-remote",
            "--duration",
            "6m",
            "--yes",
        ],
        "at most 5m",
    );
}

#[test]
fn unknown_scenarios_list_the_valid_ones() {
    assert_usage_error(
        &["--induce", "dns-storm", "--target", "127.0.0.1:53"],
        "possible values: dns-flood, nxdomain-storm, dns-loss",
    );
    assert_usage_error(&[], "--list");
}

#[test]
fn rates_and_durations_are_bounded() {
    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let base = ["--induce", "dns-flood", "--target", "127.0.0.1:5353"];
        [&base[..], extra, &["--yes"]].concat()
    }
    assert_usage_error(&with(&["--duration", "11m"]), "at most 10m");
    assert_usage_error(&with(&["--qps", "100001"]), "--qps");
    assert_usage_error(&with(&["--qps", "0"]), "--qps");
    assert_usage_error(&with(&["--concurrency", "5000"]), "--concurrency");
    assert_usage_error(&with(&["--loss", "0.5"]), "only applies to dns-loss");
}

#[test]
fn rules_and_output_need_verify() {
    let out = chaos(&[
        "--induce",
        "dns-flood",
        "--target",
        "127.0.0.1:5353",
        "--rules",
        "x.toml",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--verify"));
    let out = chaos(&[
        "--induce",
        "dns-loss",
        "--target",
        "127.0.0.1:5353",
        "--loss",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(64), "loss above 100%");
}
