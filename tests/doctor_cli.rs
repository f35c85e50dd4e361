//! `dnsdoc doctor` and `dnsdoc rules` as a user runs them: output (insta snapshots of
//! table, json and markdown on fixture snapshots), exit codes, and rule-file errors.
//! No BPF needed: every doctor run here judges a saved snapshot.
//!
//! Counts that follow the rules (how many rules, findings, checks, fixture cases) come
//! from the library and the fixture files, so adding a rule or a fixture breaks nothing
//! here; the insta snapshots are the place where output changes are reviewed.

mod common;

use std::path::Path;
use std::process::Command;

mod doctor_cli {
    pub mod fixtures;
    pub mod run;
}
use common::{builtin_rule, require_root, rule_fixture_files, rule_test_cases, TempDir};
use dnsdoc::rules::CheckStatus;
use doctor_cli::fixtures::*;
use doctor_cli::run::dnsdoc;

#[test]
fn table_on_a_healthy_node_is_a_one_line_all_clear() {
    let r = dnsdoc(&["doctor", "--snapshot", HEALTHY]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stdout.contains('\x1b'),
        "no colour when stdout is not a TTY"
    );
    assert!(r.stdout.contains("\nOK: no problems found"), "{}", r.stdout);
    insta::assert_snapshot!("table_healthy", r.stdout);
}

#[test]
fn table_json_and_markdown_on_an_incident() {
    let t = dnsdoc(&["doctor", "--snapshot", INCIDENT]);
    assert_eq!(t.code, 2, "CRITICAL findings exit 2: {}", t.stderr);
    assert!(!t.stdout.contains('\x1b'));
    insta::assert_snapshot!("table_incident", t.stdout);

    let j = dnsdoc(&["doctor", "--snapshot", INCIDENT, "--format", "json"]);
    assert_eq!(j.code, 2);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).expect("json report");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["status"], "CRITICAL");
    assert_eq!(v["exit_code"], 2);
    let expected = evaluate_builtin(INCIDENT);
    assert!(!expected.findings.is_empty());
    assert_eq!(
        v["findings"].as_array().unwrap().len(),
        expected.findings.len()
    );
    assert_eq!(v["checks"].as_array().unwrap().len(), builtin_rules());
    insta::assert_snapshot!("json_incident", j.stdout);

    let m = dnsdoc(&["doctor", "--snapshot", INCIDENT, "--format", "markdown"]);
    assert_eq!(m.code, 2);
    assert!(m.stdout.starts_with("## dnsdoc doctor: CRITICAL"));
    insta::assert_snapshot!("markdown_incident", m.stdout);
}

#[test]
fn silence_is_a_notice_not_an_all_clear() {
    let r = dnsdoc(&["doctor", "--snapshot", EMPTY]);
    assert_eq!(r.code, 0);
    assert!(!r.stdout.contains("OK: no problems"), "{}", r.stdout);
    assert!(r.stdout.contains("INFO"), "{}", r.stdout);
    insta::assert_snapshot!("table_empty", r.stdout);
    let m = dnsdoc(&["doctor", "--snapshot", EMPTY, "--format", "markdown"]);
    insta::assert_snapshot!("markdown_empty", m.stdout);
}

#[test]
fn low_traffic_says_how_much_could_not_be_judged() {
    let r = dnsdoc(&["doctor", "--snapshot", LOW, "--format", "json"]);
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
    let thin = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "insufficient_data")
        .count();
    let expected = evaluate_builtin(LOW)
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::InsufficientData)
        .count();
    assert!(
        expected > 1,
        "the low-traffic fixture is below most rules' minimum"
    );
    assert_eq!(thin, expected, "{}", r.stdout);
    let t = dnsdoc(&["doctor", "--snapshot", LOW]);
    assert!(
        t.stdout
            .contains(&format!("{thin} rules had too little data to judge")),
        "{}",
        t.stdout
    );
}

#[test]
fn exit_codes_follow_fail_on() {
    let tmp = TempDir::new("failon");
    let warn = warnings_only(&tmp);
    assert_eq!(
        dnsdoc(&["doctor", "--snapshot", &warn]).code,
        0,
        "warnings pass by default"
    );
    let r = dnsdoc(&["doctor", "--snapshot", &warn, "--fail-on", "warning"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("dns_servfail"));
    let r = dnsdoc(&["doctor", "--snapshot", INCIDENT, "--fail-on", "warning"]);
    assert_eq!(r.code, 2, "CRITICAL wins over --fail-on warning");
    assert_eq!(
        dnsdoc(&["doctor", "--snapshot", HEALTHY, "--fail-on", "warning"]).code,
        0
    );
    assert_eq!(
        dnsdoc(&["doctor", "--snapshot", EMPTY, "--fail-on", "warning"]).code,
        0
    );
}

#[test]
fn disable_and_overrides_change_the_verdict() {
    let tmp = TempDir::new("override");
    let warn = warnings_only(&tmp);
    let r = dnsdoc(&[
        "doctor",
        "--snapshot",
        &warn,
        "--fail-on",
        "warning",
        "--disable",
        "dns_servfail",
        "--disable",
        "dns_failure_rate",
    ]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("disabled: dns_failure_rate, dns_servfail"),
        "{}",
        r.stdout
    );

    // Raise the SERVFAIL thresholds by id (WARNING to the built-in CRITICAL, which the
    // snapshot is below), disable failure rate from TOML.
    let raised = builtin_rule("dns_servfail").critical.unwrap();
    let dir = tmp.path().join("rules.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.toml"),
        format!(
            "id = \"dns_servfail\"\nwarning = {raised:?}\ncritical = {:?}\n",
            2.0 * raised
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("b.toml"),
        "id = \"dns_failure_rate\"\nenabled = false\n",
    )
    .unwrap();
    std::fs::write(dir.join("ignored.test.toml"), "this is not read as rules").unwrap();
    let d = dir.display().to_string();
    let r = dnsdoc(&[
        "doctor",
        "--snapshot",
        &warn,
        "--fail-on",
        "warning",
        "--rules",
        &d,
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let l = dnsdoc(&["doctor", "--list-rules", "--rules", &d, "--format", "json"]);
    let rules: serde_json::Value = serde_json::from_str(&l.stdout).unwrap();
    let servfail = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "dns_servfail")
        .unwrap();
    assert_eq!(servfail["warning"], raised);
    assert!(servfail["source"]
        .as_str()
        .unwrap()
        .contains("overridden by"));

    // A new rule of one's own fires next to the built-ins.
    let mine = tmp.write(
        "mine.toml",
        r#"
id = "site_any_servfail"
title = "Any SERVFAIL at all"
description = "This site wants to hear about every SERVFAIL."
scope = "node"
metric = "rcodes.SERVFAIL"
critical = 0
min_samples = 1
summary = "{value} SERVFAIL answers"
remediation = ["Page the DNS team."]
"#,
    );
    let r = dnsdoc(&[
        "doctor",
        "--snapshot",
        HEALTHY,
        "--rules",
        &mine,
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["findings"][0]["rule"], "site_any_servfail");
    assert_eq!(v["findings"][0]["summary"], "1 SERVFAIL answers");
}

#[test]
fn list_rules_needs_no_snapshot_and_no_privileges() {
    let r = dnsdoc(&["doctor", "--list-rules"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("list_rules", r.stdout);
    let m = dnsdoc(&["doctor", "--list-rules", "--format", "markdown"]);
    assert_eq!(m.stdout.lines().count(), 2 + builtin_rules());
}

#[test]
fn bad_input_exits_4_and_bad_usage_64() {
    let tmp = TempDir::new("input");
    let r = dnsdoc(&["doctor", "--snapshot", "/nonexistent/dns.json"]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr
            .starts_with("dnsdoc: error: cannot read snapshot /nonexistent/dns.json"),
        "{}",
        r.stderr
    );
    let corrupt = tmp.write("corrupt.json", "{\"schema\": 1");
    let r = dnsdoc(&["doctor", "--snapshot", &corrupt]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("not a dnsdoc snapshot"), "{}", r.stderr);
    assert_eq!(
        dnsdoc(&["doctor", "--rules", "/nonexistent.toml", "--list-rules"]).code,
        4
    );

    for args in [
        &["doctor", "--snapshot", HEALTHY, "--duration", "5s"][..],
        &["doctor", "--snapshot", HEALTHY, "-o", "x.json"],
        &["doctor", "--format", "yaml"],
        &["doctor", "--fail-on", "info"],
        &["rules"],
        &["rules", "check"],
    ] {
        let r = dnsdoc(args);
        assert_eq!(r.code, 64, "{args:?}: {}", r.stderr);
    }
    let r = dnsdoc(&[
        "doctor",
        "--snapshot",
        HEALTHY,
        "--disable",
        "dns_servfails",
    ]);
    assert_eq!(r.code, 64);
    assert_eq!(
        r.stderr,
        "dnsdoc: error: --disable dns_servfails: no rule with this id (did you mean \"dns_servfail\"?); `dnsdoc doctor --list-rules` shows them\n"
    );
}

/// Each bad rule file: the documented message (docs/RULES.md, "Errors"), from both
/// `rules check` (exit 4, every problem) and `doctor --rules` (exit 4, one line).
#[test]
fn bad_rule_files_give_file_line_column_and_exit_4() {
    let b = "tests/fixtures/bad_rules";
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "syntax_error.toml",
            vec![format!("{b}/syntax_error.toml:4:9: invalid TOML: unquoted value `node`; expected a quoted string (\"node\"), a number, true or false")],
        ),
        (
            "unknown_metric.toml",
            vec![format!("{b}/unknown_metric.toml:6:10: unknown metric \"latency.p98_ms\" for scope \"node\"; did you mean \"latency.p90_ms\"? expected a metric name such as \"failure_ratio\" (`dnsdoc rules metrics --scope node` lists them all)")],
        ),
        (
            "unknown_scope.toml",
            vec![format!("{b}/unknown_scope.toml:5:9: unknown scope \"container\"; expected one of: node, process, server, qtype, name, listener, pod, lookup, local_server, coredns_zone, domain, suffix")],
        ),
        (
            "warning_above_critical.toml",
            vec![format!("{b}/warning_above_critical.toml:7:11: warning threshold 800 is above the critical threshold 500: with direction = \"above\", WARNING must be lower than CRITICAL")],
        ),
        (
            "duplicate_id.toml",
            vec![format!("{b}/duplicate_id.toml:14:6: duplicate rule id \"site_slow\": already defined at {b}/duplicate_id.toml:2:6; within one file or directory each id appears once")],
        ),
        (
            "missing_field.toml",
            vec![format!("{b}/missing_field.toml:1:1: rule \"site_slow\": missing required field `metric`")],
        ),
        (
            "percent_not_fraction.toml",
            vec![
                format!("{b}/percent_not_fraction.toml:6:11: warning = 5 is out of range for metric \"failure_ratio\" (a ratio from 0 to 1: write 5% as 0.05)"),
                format!("{b}/percent_not_fraction.toml:7:12: critical = 20 is out of range for metric \"failure_ratio\" (a ratio from 0 to 1: write 5% as 0.05)"),
            ],
        ),
        (
            "bad_placeholder.toml",
            vec![format!("{b}/bad_placeholder.toml:9:31: summary: unknown placeholder {{vaule}}; did you mean {{value}}? expected {{value}}, {{threshold}}, {{samples}}, {{subject}}, another of the documented placeholders, or a metric of scope \"node\"")],
        ),
    ];
    for (file, want) in cases {
        let path = format!("{b}/{file}");
        let c = dnsdoc(&["rules", "check", &path]);
        assert_eq!(c.code, 4, "{file}: {}", c.stderr);
        let mut expected: String = want
            .iter()
            .map(|w| format!("dnsdoc: error: {w}\n"))
            .collect();
        expected.push_str(&match want.len() {
            1 => "dnsdoc: 1 problem found\n".to_string(),
            n => format!("dnsdoc: {n} problems found\n"),
        });
        assert_eq!(c.stderr, expected, "{file}");
        // doctor stops at the first problem, in one line, before judging anything.
        let d = dnsdoc(&["doctor", "--snapshot", HEALTHY, "--rules", &path]);
        assert_eq!(d.code, 4, "{file}");
        let first = match want.len() {
            1 => want[0].clone(),
            n => format!(
                "{} (and {} more problem{}; `dnsdoc rules check` lists them all)",
                want[0],
                n - 1,
                if n == 2 { "" } else { "s" }
            ),
        };
        assert_eq!(d.stderr, format!("dnsdoc: error: {first}\n"), "{file}");
        assert!(d.stdout.is_empty(), "no verdict from invalid rules");
    }
}

#[test]
fn rules_check_accepts_good_files_and_reports_every_problem() {
    let r = dnsdoc(&[
        "rules",
        "check",
        "rules/",
        "tests/fixtures/rules/dns_high_latency.test.toml",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let n = builtin_rules();
    let cases = rule_test_cases(Path::new("tests/fixtures/rules/dns_high_latency.test.toml"));
    assert_eq!(
        r.stdout,
        format!("ok: rules/: {n} rules (0 new, {n} overriding built-in or earlier rules)\nok: tests/fixtures/rules/dns_high_latency.test.toml: {cases} test cases\n")
    );
    let r = dnsdoc(&["rules", "check", "tests/fixtures/bad_rules/"]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("syntax_error.toml:4:9"), "{}", r.stderr);
    let tmp = TempDir::new("many");
    let f = tmp.write(
        "many.toml",
        "id = \"x\"\ntitle = \"t\"\ndescription = \"d\"\nscope = \"node\"\nmetric = \"nope\"\nwarning = 2\ncritical = 1\nmin_samples = -1\nsummary = \"{value\"\nremediation = []\n",
    );
    let r = dnsdoc(&["rules", "check", &f]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.ends_with("dnsdoc: 5 problems found\n"),
        "{}",
        r.stderr
    );
    for needle in [
        ":5:10: unknown metric \"nope\"",
        ":8:15: min_samples must be 0 or more",
        ":9:12: summary: unclosed `{`",
        ":6:11: warning threshold 2 is above the critical threshold 1",
        ":10:15: remediation: list at least one step",
    ] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
}

#[test]
fn rules_test_runs_fixtures_and_reports_differences() {
    let r = dnsdoc(&["rules", "test", "tests/fixtures/rules"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let files = rule_fixture_files();
    let cases: usize = files.iter().map(|f| rule_test_cases(f)).sum();
    assert!(
        r.stdout.ends_with(&format!(
            "{cases} passed, 0 failed ({} files)\n",
            files.len()
        )),
        "{}",
        r.stdout
    );

    let tmp = TempDir::new("ruletest");
    let snap = std::fs::canonicalize(INCIDENT)
        .unwrap()
        .display()
        .to_string();
    let wrong = tmp.write(
        "wrong.test.toml",
        &format!(
            "[[test]]\nname = \"expects the wrong level\"\nsnapshot = \"{snap}\"\nrules = [\"dns_high_latency\", \"dns_servfail\"]\nfindings = [{{ rule = \"dns_high_latency\", severity = \"WARNING\" }}]\n"
        ),
    );
    let r = dnsdoc(&["rules", "test", &wrong]);
    assert_eq!(r.code, 1, "a failing case exits 1: {}", r.stdout);
    assert!(r.stdout.contains("FAIL "), "{}", r.stdout);
    assert!(
        r.stdout.contains("missing:    dns_high_latency WARNING\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("unexpected: dns_high_latency CRITICAL on node: p99 DNS latency is 1200 ms"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("unexpected: dns_servfail WARNING on node"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.ends_with("0 passed, 1 failed (1 file)\n"),
        "{}",
        r.stdout
    );

    let invalid = tmp.write(
        "invalid.test.toml",
        &format!("[[test]]\nname = \"x\"\nsnapshot = \"{snap}\"\npatch = {{ \"latency.p98_ms\" = 1 }}\nfindings = [{{ rule = \"dns_hgh_latency\", severity = \"WARN\" }}]\n"),
    );
    let r = dnsdoc(&["rules", "test", &invalid]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("invalid.test.toml:5:22: no rule with id \"dns_hgh_latency\""),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("invalid.test.toml:5:52: unknown severity \"WARN\""),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("invalid.test.toml:4:9: patch: the snapshot has no field `latency.p98_ms`"),
        "{}",
        r.stderr
    );
}

#[test]
fn colour_only_on_a_terminal_and_never_under_no_color() {
    // `script` gives dnsdoc a pseudo-terminal as stdout.
    let run = |no_color: bool| {
        let mut c = Command::new("script");
        c.args(["-qec"])
            .arg(format!(
                "{} doctor --snapshot {INCIDENT}",
                env!("CARGO_BIN_EXE_dnsdoc")
            ))
            .arg("/dev/null")
            // A terminal that says it has colours (TERM=dumb or none: no colour).
            .env("TERM", "xterm-256color")
            .env_remove("FORCE_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        let out = c.output().expect("script (util-linux)");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, tty) = run(false);
    assert_eq!(code, Some(2));
    assert!(
        tty.contains("\x1b[1m\x1b[31mCRITICAL"),
        "severity in red on a TTY: {tty:?}"
    );
    let (_, plain) = run(true);
    assert!(
        plain.contains("CRITICAL") && !plain.contains('\x1b'),
        "{plain:?}"
    );
}

#[test]
fn snapshot_mode_needs_no_privileges_and_live_mode_says_why_it_cannot_collect() {
    let as_nobody = |args: &[&str]| {
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ])
            .arg(env!("CARGO_BIN_EXE_dnsdoc"))
            .args(args)
            .output()
            .expect("setpriv (util-linux)");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // Becoming nobody takes root.
    if !require_root("snapshot_mode_needs_no_privileges_and_live_mode_says_why_it_cannot_collect") {
        return;
    }
    let abs = std::fs::canonicalize(HEALTHY)
        .unwrap()
        .display()
        .to_string();
    let (code, err) = as_nobody(&["doctor", "--snapshot", &abs]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = as_nobody(&["doctor", "--list-rules"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = as_nobody(&["doctor", "--duration", "1s"]);
    assert_eq!(code, Some(3), "could not collect: {err}");
    assert!(err.contains("insufficient privileges"), "{err}");
}

#[test]
fn rules_metrics_lists_every_metric_and_the_docs_do_too() {
    let r = dnsdoc(&["rules", "metrics", "--format", "markdown"]);
    assert_eq!(r.code, 0);
    let docs = std::fs::read_to_string("docs/RULES.md").expect("docs/RULES.md");
    for m in dnsdoc::rules::metrics::registry().all() {
        assert!(
            r.stdout.contains(&format!("| `{}` |", m.name)),
            "{}",
            m.name
        );
        assert!(
            docs.contains(&format!("`{}`", m.name)),
            "docs/RULES.md does not document {}",
            m.name
        );
    }
    for rule in dnsdoc::rules::RuleSet::builtin().unwrap().rules() {
        assert!(
            docs.contains(&format!("### {}", rule.id)),
            "docs/RULES.md has no section for {}",
            rule.id
        );
    }
    let j = dnsdoc(&["rules", "metrics", "--scope", "process", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let p99 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "latency.p99_vs_peers")
        .expect("a process metric");
    assert_eq!(p99["unit"], "factor");
    assert_eq!(p99["samples"], "latency.samples");
    let node = dnsdoc(&["rules", "metrics", "--scope", "name"]);
    assert!(
        !node.stdout.contains("latency.p99_ms"),
        "names have no latency"
    );
}
