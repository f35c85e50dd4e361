//! Unit tests of rule loading: parsing, overrides, validation messages and their
//! positions, and all-or-nothing layers.

use super::compile::parse_guard;
use super::*;
use crate::rules::Op;

const GOOD: &str = r#"
id = "my_rule"
title = "Too many timeouts"
description = "Timeouts stall clients."
scope = "node"
metric = "timeouts"
warning = 5
critical = 50
min_samples = 10
summary = "{value} timeouts"
remediation = ["look at the servers"]
"#;

fn errors(text: &str) -> Vec<String> {
    let mut set = RuleSet::builtin().unwrap();
    set.load_str("t.toml", text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn builtins_load_and_are_enabled() {
    let set = RuleSet::builtin().unwrap();
    assert!(!set.rules().is_empty());
    assert!(set
        .rules()
        .iter()
        .all(|r| r.enabled && r.source.starts_with("builtin:rules/")));
    // Levels are ordered (whatever values they are tuned to).
    for r in set.rules() {
        let levels: Vec<f64> = [r.info, r.warning, r.critical]
            .into_iter()
            .flatten()
            .collect();
        let ordered = levels.windows(2).all(|w| match r.direction {
            crate::rules::Direction::Above => w[0] < w[1],
            crate::rules::Direction::Below => w[0] > w[1],
        });
        assert!(ordered, "{}: {levels:?}", r.id);
    }
    assert_eq!(
        set.get("dns_high_latency").unwrap().samples,
        "latency.samples"
    );
}

#[test]
fn a_new_rule_is_added_and_an_override_changes_one_field() {
    let mut set = RuleSet::builtin().unwrap();
    let n = set.rules().len();
    let shipped_critical = set.get("dns_high_latency").unwrap().critical;
    let st = set.load_str("t.toml", GOOD).unwrap();
    assert_eq!(st.added, ["my_rule"]);
    assert_eq!(set.rules().len(), n + 1);
    let st = set
        .load_str("o.toml", "id = \"dns_high_latency\"\nwarning = 200.0\n")
        .unwrap();
    assert_eq!(st.overridden, ["dns_high_latency"]);
    let r = set.get("dns_high_latency").unwrap();
    assert_eq!((r.warning, r.critical), (Some(200.0), shipped_critical));
    assert!(r.source.ends_with("overridden by o.toml"), "{}", r.source);
    set.load_str("d.toml", "id = \"my_rule\"\nenabled = false\n")
        .unwrap();
    assert!(!set.get("my_rule").unwrap().enabled);
    set.load_str("n.toml", "id = \"dns_high_latency\"\ncritical = \"none\"\n")
        .unwrap();
    assert_eq!(set.get("dns_high_latency").unwrap().critical, None);
}

#[test]
fn many_rules_in_one_file() {
    let text = format!(
        "[[rule]]\n{GOOD}\n[[rule]]\n{}",
        GOOD.replace("my_rule", "my_other")
    );
    let mut set = RuleSet::empty();
    let st = set.load_str("m.toml", &text).unwrap();
    assert_eq!(st.added, ["my_rule", "my_other"]);
}

#[test]
fn syntax_error_names_line_and_column() {
    let e = errors("id = \"x\"\ntitle = \"unterminated\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("t.toml:2:"), "{e:?}");
    assert!(e[0].contains("invalid TOML"), "{e:?}");
}

#[test]
fn unknown_metric_and_scope_are_errors_with_hints() {
    let e = errors(&GOOD.replace("metric = \"timeouts\"", "metric = \"timeout\""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("t.toml:6:10: unknown metric \"timeout\""),
        "{e:?}"
    );
    assert!(e[0].contains("did you mean \"timeouts\"?"), "{e:?}");
    let e = errors(&GOOD.replace("scope = \"node\"", "scope = \"host\""));
    assert!(
        e[0].starts_with("t.toml:5:9: unknown scope \"host\"; expected one of: node, process"),
        "{e:?}"
    );
    let e = errors(
        &GOOD
            .replace("scope = \"node\"", "scope = \"name\"")
            .replace("\"timeouts\"", "\"latency.p99_ms\""),
    );
    assert!(
        e[0].contains("is not available for scope \"name\""),
        "{e:?}"
    );
}

#[test]
fn warning_above_critical_is_an_error() {
    let e = errors(&GOOD.replace("warning = 5", "warning = 500"));
    assert_eq!(e, ["t.toml:7:11: warning threshold 500 is above the critical threshold 50: with direction = \"above\", WARNING must be lower than CRITICAL"]);
    let e = errors(&format!("{GOOD}direction = \"below\"\n"));
    assert!(e[0].contains("is below the critical threshold"), "{e:?}");
}

#[test]
fn ratios_must_be_fractions() {
    let e = errors(
        &GOOD
            .replace("\"timeouts\"", "\"failure_ratio\"")
            .replace("critical = 50", "critical = 0.5"),
    );
    assert!(
        e[0].contains(
            "warning = 5 is out of range for metric \"failure_ratio\" (a ratio from 0 to 1"
        ),
        "{e:?}"
    );
}

#[test]
fn duplicate_ids_in_one_layer_are_errors() {
    let text = format!("[[rule]]\n{GOOD}\n[[rule]]\n{GOOD}");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("duplicate rule id \"my_rule\": already defined at t.toml:3:6"),
        "{e:?}"
    );
}

#[test]
fn missing_fields_unknown_fields_and_bad_placeholders() {
    let e = errors("id = \"new_rule\"\ntitle = \"t\"\n");
    for f in [
        "description",
        "scope",
        "metric",
        "min_samples",
        "summary",
        "remediation",
    ] {
        assert!(
            e.iter()
                .any(|m| m.contains(&format!("missing required field `{f}`"))),
            "{f}: {e:?}"
        );
    }
    assert!(e.iter().any(|m| m.contains("no threshold")), "{e:?}");
    let e = errors(&format!("{GOOD}threshold = 3\n"));
    assert!(
        e[0].starts_with("t.toml:12:1: invalid TOML: unknown field `threshold`"),
        "{e:?}"
    );
    let e = errors(&GOOD.replace("{value} timeouts", "{vaule} timeouts"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "t.toml:10:12: summary: unknown placeholder {vaule}; did you mean {value}?"
        ),
        "{e:?}"
    );
    let e = errors(&format!(
        "{GOOD}when = [\"failures >> 3\", \"bogus > 1\"]\n"
    ));
    assert!(
        e[0].contains("when: cannot read condition \"failures >> 3\""),
        "{e:?}"
    );
    assert!(e[1].contains("when: unknown metric \"bogus\""), "{e:?}");
}

#[test]
fn a_failed_layer_changes_nothing_and_errors_map_to_exit_4() {
    let mut set = RuleSet::builtin().unwrap();
    let before = set.rules().to_vec();
    // A warning level above the shipped critical one, whatever that is tuned to.
    let warning = set.get("dns_high_latency").unwrap().critical.unwrap() * 2.0;
    let dir = std::env::temp_dir().join(format!("dnsdoc-rules-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.toml"), GOOD).unwrap();
    std::fs::write(
        dir.join("b.toml"),
        format!("id = \"dns_high_latency\"\nwarning = {warning:.1}\n"),
    )
    .unwrap();
    let err = set.load_path(&dir).unwrap_err();
    assert_eq!(crate::exit::code_for(&err), crate::exit::INPUT);
    assert!(
        err.to_string()
            .contains(&format!("b.toml:2:11: warning threshold {warning}")),
        "{err}"
    );
    assert_eq!(set.rules(), before.as_slice());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn disable_unknown_is_a_usage_error() {
    let mut set = RuleSet::builtin().unwrap();
    set.disable("dns_servfail").unwrap();
    assert!(!set.get("dns_servfail").unwrap().enabled);
    let err = set.disable("dns_servfails").unwrap_err();
    assert_eq!(crate::exit::code_for(&err), crate::exit::USAGE);
    assert!(
        err.to_string().contains("did you mean \"dns_servfail\""),
        "{err}"
    );
}

#[test]
fn guards_parse() {
    assert_eq!(
        parse_guard("failures >= 3").unwrap(),
        ("failures".into(), Op::Ge, 3.0)
    );
    assert_eq!(
        parse_guard("latency.p99_vs_peers>4").unwrap(),
        ("latency.p99_vs_peers".into(), Op::Gt, 4.0)
    );
    assert!(parse_guard("failures 3").is_err());
    assert!(parse_guard(">= 3").is_err());
}

#[test]
fn override_problems_are_reported_in_the_users_file_once() {
    // Only `critical`, below the built-in warning: the user's file is to blame.
    let builtin = RuleSet::builtin().unwrap();
    let warning = builtin.get("dns_high_latency").unwrap().warning.unwrap();
    let e = errors(&format!(
        "[[rule]]\nid = \"dns_high_latency\"\ncritical = {:.1}\n",
        warning / 2.0
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("t.toml:1:"), "{e:?}");
    assert!(
        e[0].contains("overrides builtin:rules/dns_high_latency.toml"),
        "{e:?}"
    );
    // A misspelt id: one line naming the id meant, not a line per missing field.
    let e = errors("[[rule]]\nid = \"dns_high_latncy\"\ncritical = 900.0\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("no built-in rule \"dns_high_latncy\""),
        "{e:?}"
    );
    assert!(e[0].contains("did you mean \"dns_high_latency\"?"), "{e:?}");
}

#[test]
fn type_errors_name_the_field_in_plain_words() {
    let e = errors("id = \"dns_high_latency\"\nmin_samples = \"many\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("min_samples: expected a whole number"),
        "{e:?}"
    );
    assert!(!e[0].contains("i64"), "{e:?}");
    let e = errors("id = \"dns_high_latency\"\nenabled = \"no\"\n");
    assert!(e[0].contains("enabled: expected true or false"), "{e:?}");
}

#[test]
fn an_empty_rules_directory_adds_nothing_and_is_no_error() {
    let dir = std::env::temp_dir().join(format!("dnsdoc-empty-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut set = RuleSet::builtin().unwrap();
    let before = set.rules().len();
    set.load_path(&dir).unwrap();
    assert_eq!(set.rules().len(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}
