//! The built-in rules against their fixtures (tests/fixtures/rules/*.test.toml): every
//! rule fires at each of its levels, stays silent on healthy traffic, and stays silent
//! below its minimum sample size. Runs the fixtures through the library and through
//! `dnsdoc rules test`, and checks that the fixtures themselves cover every rule.

mod common;

use std::path::Path;
use std::process::Command;

use common::rule_fixture_files;
use dnsdoc::rules::testing::{load_test_file, run_case, test_files, TestFile};
use dnsdoc::rules::{evaluate_all, CheckStatus, RuleSet, Severity};

fn fixtures() -> Vec<TestFile> {
    test_files(Path::new("tests/fixtures/rules"))
        .expect("fixture directory")
        .iter()
        .map(|p| load_test_file(p).unwrap_or_else(|d| panic!("{}: {d:?}", p.display())))
        .collect()
}

#[test]
fn every_fixture_case_passes() {
    let mut n = 0;
    for file in fixtures() {
        for case in &file.cases {
            let r = run_case(&file.rules, case);
            assert!(
                r.passed(),
                "{} {}: missing {:?}, unexpected {:?}",
                r.location,
                r.name,
                r.missing,
                r.unexpected
            );
            n += 1;
        }
    }
    // At least three per rule: fired at a level, silent on healthy traffic, silent below
    // the minimum sample size.
    let rules = RuleSet::builtin().unwrap().rules().len();
    assert!(n >= rules * 3, "only {n} cases for {rules} rules");
}

#[test]
fn every_builtin_rule_fires_at_each_level_and_has_silent_cases() {
    let builtin = RuleSet::builtin().unwrap();
    let files = fixtures();
    let cases: Vec<_> = files.iter().flat_map(|f| f.cases.iter()).collect();
    for rule in builtin.rules() {
        for (severity, _) in rule.thresholds() {
            assert!(
                cases.iter().any(|c| c
                    .expect
                    .iter()
                    .any(|e| e.rule == rule.id && e.severity == severity)),
                "{}: no fixture fires it at {severity}",
                rule.id
            );
        }
        // Silent cases: the rule is compared (no filter, or named) and not expected.
        let silent: Vec<_> = cases
            .iter()
            .filter(|c| c.only.as_ref().is_none_or(|ids| ids.contains(&rule.id)))
            .filter(|c| c.expect.iter().all(|e| e.rule != rule.id))
            .collect();
        assert!(!silent.is_empty(), "{}: no must-not-fire fixture", rule.id);
        // At least one silent case is low traffic: for rules with a minimum sample
        // size, the rule really was skipped for lack of samples (not just passed).
        let low = silent.iter().any(|c| {
            let check = evaluate_all(&c.snapshot, &builtin)
                .checks
                .into_iter()
                .find(|k| k.rule == rule.id)
                .unwrap();
            if rule.min_samples > 0 {
                check.status == CheckStatus::InsufficientData
            } else {
                c.snapshot.totals.counts.queries < 20 && check.status != CheckStatus::Fired
            }
        });
        assert!(low, "{}: no low-traffic fixture below min_samples", rule.id);
    }
}

#[test]
fn no_critical_level_only_where_documented() {
    // Capture loss and silence are not outages: WARNING and INFO only. Every other
    // built-in has both WARNING and CRITICAL.
    for rule in RuleSet::builtin().unwrap().rules() {
        let levels: Vec<Severity> = rule.thresholds().into_iter().map(|(s, _)| s).collect();
        match rule.id.as_str() {
            "dns_no_traffic" => assert_eq!(levels, [Severity::Info]),
            "dns_capture_degraded" => assert_eq!(levels, [Severity::Warning]),
            _ => assert_eq!(
                levels,
                [Severity::Warning, Severity::Critical],
                "{}",
                rule.id
            ),
        }
    }
}

#[test]
fn the_cli_runs_the_same_fixtures() {
    let out = Command::new(env!("CARGO_BIN_EXE_dnsdoc"))
        .args(["rules", "test", "tests/fixtures/rules"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let cases: usize = fixtures().iter().map(|f| f.cases.len()).sum();
    assert!(
        stdout.ends_with(&format!(
            "{cases} passed, 0 failed ({} files)\n",
            rule_fixture_files().len()
        )),
        "{stdout}"
    );
    assert!(!stdout.lines().any(|l| l.starts_with("FAIL ")), "{stdout}");
}
