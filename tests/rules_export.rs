//! `dnsdoc rules export --format prometheus`, checked by Prometheus's own tools:
//! `promtool check rules` on the file, and `promtool test rules` evaluating the alerts
//! over series shaped like `dnsdoc serve`'s. Traffic is generated from the built-in
//! rules' thresholds (not repeated here), and the expected summaries are the rules' own
//! templates filled with the numbers Prometheus must compute.

use std::collections::BTreeMap;
use std::process::{Command, Output};

mod common;
mod rules_export {
    pub mod traffic;
}
use common::*;
use dnsdoc::rules::{Rule, RuleSet, Scope, Unit};
use rules_export::traffic::{formatted, Traffic, INSTANCE};

fn export(dir: &TempDir, extra: &[&str]) -> (String, Output) {
    let path = dir.path().join("dnsdoc.yml");
    let mut args = vec!["rules", "export", "--format", "prometheus", "-o"];
    let p = path.to_str().unwrap().to_string();
    args.push(&p);
    args.extend_from_slice(extra);
    let out = run_dnsdoc(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (p, out)
}

fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool (apt-get install prometheus)")
}

/// The rule's summary as Prometheus must render it for `traffic` at `severity`.
fn expected_summary(
    rule: &Rule,
    severity: dnsdoc::rules::Severity,
    threshold: f64,
    m: &BTreeMap<&str, f64>,
) -> String {
    let reg = dnsdoc::rules::metrics::registry();
    let unit = |name: &str| reg.find(Scope::Node, name).map_or(Unit::Count, |x| x.unit);
    rule.summary.render(&|var| match var {
        "value" => formatted(rule.unit(), m[rule.metric.as_str()]),
        "samples" => formatted(Unit::Count, m[rule.samples.as_str()]),
        "threshold" => rule.unit().format(threshold),
        "severity" => severity.as_str().to_string(),
        "window" => "5m".to_string(),
        "subject" => INSTANCE.to_string(),
        other => formatted(
            unit(other),
            *m.get(other).unwrap_or_else(|| panic!("{other}?")),
        ),
    })
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// One promtool test group: `traffic`, and the alerts `firing` (rule ids) expected to
/// fire at 10m with every severity whose threshold their value crosses.
fn group(name: &str, traffic: &Traffic, checked: &[&Rule], firing: &[&str]) -> String {
    let m = traffic.metrics();
    let mut g = format!(
        "  - name: {}\n    interval: 1m\n    input_series:\n{}    alert_rule_test:\n",
        q(name),
        traffic.series()
    );
    for rule in checked {
        let mut alerts = String::new();
        if firing.contains(&rule.id.as_str()) {
            let value = m[rule.metric.as_str()];
            for (severity, threshold) in rule.thresholds() {
                if !rule.direction.crossed(value, threshold) {
                    continue;
                }
                alerts.push_str(&format!(
                    "          - exp_labels: {{severity: {}, rule: {}, instance: {}}}\n            exp_annotations:\n              summary: {}\n              description: {}\n",
                    q(&severity.as_str().to_ascii_lowercase()),
                    q(&rule.id),
                    q(INSTANCE),
                    q(&expected_summary(rule, severity, threshold, &m)),
                    q(&rule.title),
                ));
                if let Some(d) = &rule.docs {
                    alerts.push_str(&format!("              docs: {}\n", q(d)));
                }
            }
            assert!(
                !alerts.is_empty(),
                "{name}: {} would not fire: {value}",
                rule.id
            );
        }
        let alertname: String = rule
            .id
            .split('_')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        if alerts.is_empty() {
            g.push_str(&format!(
                "      - eval_time: 10m\n        alertname: {alertname}\n        exp_alerts: []\n"
            ));
        } else {
            g.push_str(&format!("      - eval_time: 10m\n        alertname: {alertname}\n        exp_alerts:\n{alerts}"));
        }
    }
    g
}

/// Per minute, `n` queries of which a share `r` (0..1) is `bad`, the rest NOERROR.
fn with_share(r: f64) -> (u64, u64) {
    let bad = (r * 1000.0).round() as u64;
    (1000 - bad, bad)
}

#[test]
fn exported_rules_pass_promtool_check_and_list_what_they_skip() {
    let dir = TempDir::new("export");
    let (path, out) = export(&dir, &[]);
    let check = promtool(&["check", "rules", &path]);
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let yaml = std::fs::read_to_string(&path).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Every enabled rule is either an alert or skipped with a reason, in both places.
    for rule in RuleSet::builtin()
        .unwrap()
        .rules()
        .iter()
        .filter(|r| r.enabled)
    {
        let exported = yaml.contains(&format!("rule: \"{}\"", rule.id));
        let skipped = format!("skipped {}: ", rule.id);
        assert!(
            exported != (yaml.contains(&skipped) && stderr.contains(&skipped)),
            "{} is neither exported nor skipped (or both)\n{stderr}",
            rule.id
        );
        if rule.scope != Scope::Node {
            assert!(!exported, "{} is per subject", rule.id);
        }
    }
    assert!(yaml.contains("rule: \"dns_failure_rate\""));
}

#[test]
fn overrides_and_disabled_rules_are_what_is_exported() {
    let dir = TempDir::new("export-override");
    let rules = dir.write(
        "override.toml",
        "id = \"dns_failure_rate\"\nwarning = 0.3\ncritical = 0.6\n",
    );
    let (path, _) = export(
        &dir,
        &[
            "--rules",
            &rules,
            "--disable",
            "dns_timeouts",
            "--window",
            "10m",
            "--for",
            "30s",
        ],
    );
    let yaml = std::fs::read_to_string(&path).unwrap();
    assert!(yaml.contains(") > 0.3\\nand"), "{yaml}");
    assert!(yaml.contains(") > 0.6\\nand"), "{yaml}");
    assert!(!yaml.contains("rule: \"dns_timeouts\""), "disabled");
    assert!(yaml.contains("[10m]") && yaml.contains("for: \"30s\""));
    assert!(promtool(&["check", "rules", &path]).status.success());
}

#[test]
fn exported_alerts_fire_at_doctors_thresholds_in_promtool() {
    let dir = TempDir::new("export-test");
    let (path, _) = export(&dir, &[]);
    let yaml = std::fs::read_to_string(&path).unwrap();
    let set = RuleSet::builtin().unwrap();
    let exported: Vec<&Rule> = set
        .rules()
        .iter()
        .filter(|r| yaml.contains(&format!("rule: \"{}\"", r.id)))
        .collect();
    let rule = |id: &str| {
        *exported
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id} exported"))
    };
    let critical = |id: &str| rule(id).critical.unwrap();
    // Past the critical threshold, halfway to everything.
    let past = |c: f64| (c + 1.0) / 2.0;

    let healthy = healthy();
    let (ok, bad) = with_share(past(
        critical("dns_failure_rate").max(critical("dns_servfail")),
    ));
    let servfail = Traffic {
        noerror: ok,
        servfail: bad,
        ..healthy.clone()
    };
    let (ok, bad) = with_share(past(critical("dns_nxdomain_ratio")));
    let nxdomain = Traffic {
        noerror: ok,
        nxdomain: bad,
        ..healthy.clone()
    };
    // Every answer in the first bucket whose lower bound is past the critical p99.
    let crit_s = critical("dns_high_latency") / 1000.0;
    let b = dnsdoc::series::DURATION_BUCKETS;
    let bucket = (1..b.len())
        .find(|&i| b[i - 1] >= crit_s)
        .expect("a bucket past critical");
    let slow = Traffic {
        bucket,
        ..healthy.clone()
    };
    let silent = Traffic::default();

    let mut test = String::new();
    test.push_str(&group("healthy", &healthy, &exported, &[]));
    test.push_str(&group(
        "servfail",
        &servfail,
        &[
            rule("dns_failure_rate"),
            rule("dns_servfail"),
            rule("dns_nxdomain_ratio"),
        ],
        &["dns_failure_rate", "dns_servfail"],
    ));
    test.push_str(&group(
        "nxdomain",
        &nxdomain,
        &[rule("dns_nxdomain_ratio"), rule("dns_failure_rate")],
        &["dns_nxdomain_ratio"],
    ));
    test.push_str(&group(
        "slow",
        &slow,
        &[rule("dns_high_latency"), rule("dns_failure_rate")],
        &["dns_high_latency"],
    ));
    test.push_str(&group(
        "silent",
        &silent,
        &[rule("dns_no_traffic"), rule("dns_failure_rate")],
        &["dns_no_traffic"],
    ));
    promtool_test(&dir, &path, &test);
}

/// Healthy traffic: answers in the fastest bucket, lookups of 2 queries (A and AAAA).
fn healthy() -> Traffic {
    Traffic {
        noerror: 1000,
        bucket: 0,
        lookups: 500,
        lookup_queries: 1000,
        ..Traffic::default()
    }
}

/// Runs `promtool test rules` on the rules file `path` with the test `groups`.
fn promtool_test(dir: &TempDir, path: &str, groups: &str) {
    let test = format!(
        "rule_files: [{}]\nevaluation_interval: 1m\ntests:\n{groups}",
        q(path)
    );
    let test_path = dir.write("dnsdoc.test.yml", &test);
    let out = promtool(&["test", "rules", &test_path]);
    assert!(
        out.status.success(),
        "{}{}\n{test}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A per-minute count whose 5m window (5 minutes of it) is past `threshold`.
fn per_min_past(threshold: f64) -> u64 {
    (threshold / 5.0).floor() as u64 + 1
}

/// The node rules whose metrics only closed windows give (truncation, lookups, the
/// node's drops): each fires past its critical threshold, and stays quiet when its
/// guard (`min_samples`, `when`) is not met even though its value is.
#[test]
fn window_counter_alerts_fire_at_doctors_thresholds_in_promtool() {
    let dir = TempDir::new("export-windows");
    let (path, _) = export(&dir, &[]);
    let set = RuleSet::builtin().unwrap();
    let rule = |id: &str| set.get(id).unwrap_or_else(|| panic!("{id} built in"));
    let critical = |id: &str| rule(id).critical.unwrap();
    let healthy = healthy();

    let (_, truncated) = with_share((critical("dns_truncation_tcp_fallback") + 1.0) / 2.0);
    let truncation = Traffic {
        truncated,
        retried_tcp: truncated / 2,
        ..healthy.clone()
    };

    // Past the critical number of queries per lookup, some of them re-sends (not
    // amplification: the alert must not count them).
    let r = rule("dns_search_path_amplification");
    let lookups = ((r.min_samples as f64 / 5.0).ceil() as u64).max(100);
    let per_lookup = (critical(&r.id) + 1.0).ceil() as u64;
    let amplified = Traffic {
        lookups,
        lookup_queries: per_lookup * lookups + lookups / 10,
        lookup_resends: lookups / 10,
        expansion_nxdomain: (per_lookup - 2) * lookups,
        time_lost_ms: 12.25 * lookups as f64,
        ..healthy.clone()
    };
    // As amplified, over fewer lookups (in the window) than the rule judges.
    let few = r.min_samples.saturating_sub(1) / 5;
    let few_lookups = Traffic {
        lookups: few,
        lookup_queries: few * per_lookup,
        ..healthy.clone()
    };

    let races = per_min_past(critical("dns_conntrack_race"));
    let race = Traffic {
        race_suspects: races,
        conntrack_insert_failed: Some(races * 2),
        ..healthy.clone()
    };
    let race_without_conntrack = Traffic {
        conntrack_insert_failed: None,
        ..race.clone()
    };

    let drops = Traffic {
        rcvbuf_errors: per_min_past(critical("dns_node_udp_drops")),
        timeouts: 2,
        server_timeouts: 3,
        server: 1000,
        ..healthy.clone()
    };
    // The node dropped datagrams, but DNS lost nothing: not DNS's problem.
    let drops_no_timeouts = Traffic {
        timeouts: 0,
        server_timeouts: 0,
        ..drops.clone()
    };

    let new = [
        "dns_truncation_tcp_fallback",
        "dns_search_path_amplification",
        "dns_conntrack_race",
        "dns_node_udp_drops",
    ];
    let all: Vec<&Rule> = new.iter().map(|id| rule(id)).collect();
    let mut test = String::new();
    for (name, traffic, firing) in [
        ("truncation", &truncation, "dns_truncation_tcp_fallback"),
        ("amplified", &amplified, "dns_search_path_amplification"),
        ("race", &race, "dns_conntrack_race"),
        (
            "race, no conntrack",
            &race_without_conntrack,
            "dns_conntrack_race",
        ),
        ("udp drops", &drops, "dns_node_udp_drops"),
    ] {
        test.push_str(&group(name, traffic, &all, &[firing]));
    }
    if few > 0 {
        test.push_str(&group("few lookups", &few_lookups, &all, &[]));
    }
    test.push_str(&group("drops, no timeouts", &drops_no_timeouts, &all, &[]));
    promtool_test(&dir, &path, &test);
}
