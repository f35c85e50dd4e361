//! The rule loader's oracle: rule text loads or fails with diagnostics, all or nothing,
//! and what loads evaluates sanely.

/// Rule text (an operator's file): loading never panics, an error is a non-empty list
/// of diagnostics that format, a layer applies all or nothing (a rejected override
/// leaves the built-ins exactly as they were), and whatever loads evaluates against
/// real snapshots without panicking, each finding crossing a threshold of its rule.
pub fn check_rules(
    text: &str,
    builtin: &dnsdoc::rules::RuleSet,
    snapshots: &[dnsdoc::snapshot::Snapshot],
) {
    use dnsdoc::rules::{load::summarize, RuleSet};
    let mut fresh = RuleSet::empty();
    match fresh.load_str("fuzz.toml", text) {
        Ok(stats) => {
            assert_eq!(stats.added.len(), fresh.rules().len());
            for rule in fresh.rules() {
                assert!(!rule.id.is_empty(), "a rule without an id loaded");
            }
            check_evaluation(&fresh, snapshots);
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "an error without a diagnostic");
            assert!(fresh.rules().is_empty(), "a failed layer left rules behind");
            for d in &diags {
                assert!(!d.to_string().is_empty());
            }
            assert!(!summarize(&diags).is_empty());
        }
    }
    let mut set = builtin.clone();
    match set.load_str("override.toml", text) {
        Ok(_) => check_evaluation(&set, snapshots),
        Err(_) => assert_eq!(
            set.rules(),
            builtin.rules(),
            "a rejected layer changed the rules"
        ),
    }
}

fn check_evaluation(rules: &dnsdoc::rules::RuleSet, snapshots: &[dnsdoc::snapshot::Snapshot]) {
    for snapshot in snapshots {
        let e = dnsdoc::rules::evaluate_all(snapshot, rules);
        assert_eq!(e.checks.len(), rules.rules().len(), "one check per rule");
        for f in &e.findings {
            let rule = rules.get(&f.rule).expect("a finding names a loaded rule");
            assert!(rule.enabled, "finding from disabled rule {}", f.rule);
            assert!(
                rule.thresholds()
                    .iter()
                    .any(|(s, t)| *s == f.severity && t.to_bits() == f.threshold.to_bits()),
                "finding {f:?} crosses no threshold of its rule"
            );
        }
    }
}
