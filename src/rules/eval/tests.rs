//! Unit tests of `eval`.

use super::*;
use crate::snapshot::*;

fn counts(queries: u64, failures_timeouts: u64, servfail: u64) -> Counts {
    let responses = queries - failures_timeouts;
    let mut rcodes = Rcodes {
        NOERROR: responses - servfail,
        SERVFAIL: servfail,
        ..Rcodes::default()
    };
    rcodes.other = 0;
    let failures = failures_timeouts + servfail;
    Counts {
        queries,
        queries_per_s: queries as f64 / 10.0,
        responses,
        timeouts: failures_timeouts,
        rcodes,
        failures,
        failure_ratio: failures as f64 / queries.max(1) as f64,
        nxdomain_ratio: 0.0,
        active_s: 10.0,
        queries_per_active_s: queries as f64 / 10.0,
    }
}

fn latency(samples: u64, p99: f64) -> Latency {
    Latency {
        samples,
        p50_ms: Some(p99 / 10.0),
        p90_ms: Some(p99 / 2.0),
        p95_ms: Some(p99 / 1.5),
        p99_ms: Some(p99),
        p999_ms: Some(p99),
        max_ms: Some(p99),
        mean_ms: Some(p99 / 8.0),
    }
}

fn snap(total: Counts, lat: Latency) -> Snapshot {
    Snapshot {
        schema: SCHEMA,
        dnsdoc_version: "test".into(),
        window: Window {
            start: "a".into(),
            end: "b".into(),
            duration_s: 10.0,
        },
        host: Host {
            hostname: "h".into(),
            kernel: "k".into(),
        },
        capture: CaptureHealth::default(),
        totals: Totals {
            counts: total,
            ..Totals::default()
        },
        latency: lat,
        processes: vec![],
        servers: vec![],
        qtypes: vec![],
        names: Names::default(),
        server_side: ServerSide::default(),
        ..Snapshot::default()
    }
}

/// The engine's tests carry their own rules (shipped thresholds are tuned freely).
const LATENCY_RULE: &str = r#"
id = "t_latency"
title = "t"
description = "t"
scope = "node"
metric = "latency.p99_ms"
warning = 100.0
critical = 500.0
min_samples = 20
summary = "p99 {value}"
remediation = ["r"]
"#;
const FAILURE_RULES: &str = r#"
[[rule]]
id = "t_failure_rate"
title = "t"
description = "t"
scope = "node"
metric = "failure_ratio"
warning = 0.01
critical = 0.05
min_samples = 20
when = ["failures >= 3"]
summary = "{value}"
remediation = ["r"]

[[rule]]
id = "t_servfail"
title = "t"
description = "t"
scope = "node"
metric = "servfail_ratio"
warning = 0.01
critical = 0.05
min_samples = 20
when = ["rcodes.SERVFAIL >= 3"]
summary = "{value}"
remediation = ["r"]
"#;
const OUTLIER_RULE: &str = r#"
id = "t_outlier"
title = "t"
description = "t"
scope = "process"
metric = "latency.p99_ms"
warning = 100.0
critical = 500.0
min_samples = 20
when = ["latency.p99_vs_peers > 4"]
summary = "{subject} {value}"
remediation = ["r"]
"#;

fn inline(texts: &[&str]) -> RuleSet {
    let mut set = RuleSet::empty();
    for (i, t) in texts.iter().enumerate() {
        set.load_str(&format!("t{i}.toml"), t).unwrap();
    }
    set
}

#[test]
fn latency_levels_and_min_samples() {
    let rules = inline(&[LATENCY_RULE]);
    let fire =
        |samples, p99| evaluate_all(&snap(counts(samples, 0, 0), latency(samples, p99)), &rules);
    let e = fire(100, 250.0);
    assert_eq!(e.findings.len(), 1);
    let f = &e.findings[0];
    assert_eq!(
        (f.severity, f.threshold, f.samples),
        (Severity::Warning, 100.0, 100)
    );
    assert!((f.excess - 1.5).abs() < 1e-9);
    assert!(f.summary.contains("250 ms"), "{}", f.summary);
    assert_eq!(fire(100, 900.0).findings[0].severity, Severity::Critical);
    assert_eq!(fire(100, 100.0).findings.len(), 0, "strictly above");
    let low = fire(3, 5000.0);
    assert!(
        low.findings.is_empty(),
        "three queries never raise an alarm"
    );
    let check = low.checks.iter().find(|c| c.rule == "t_latency").unwrap();
    assert_eq!(check.status, CheckStatus::InsufficientData);
}

#[test]
fn guards_and_ranking() {
    let rules = inline(&[LATENCY_RULE, FAILURE_RULES]);
    // 1000 queries, 3% failures (SERVFAIL): failure rate WARNING, servfail WARNING.
    let e = evaluate_all(&snap(counts(1000, 0, 30), latency(1000, 900.0)), &rules);
    let ids: Vec<(&str, Severity)> = e
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f.severity))
        .collect();
    assert_eq!(ids[0], ("t_latency", Severity::Critical), "{ids:?}");
    assert!(
        ids.contains(&("t_failure_rate", Severity::Warning)),
        "{ids:?}"
    );
    assert!(ids.contains(&("t_servfail", Severity::Warning)), "{ids:?}");
    // Ranked: critical first, then warnings by excess (servfail 3% vs 1%: 2.0;
    // failure rate 3% vs 1%: 2.0, tie broken by id).
    let warn: Vec<&str> = e.findings[1..].iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(warn, ["t_failure_rate", "t_servfail"]);
    // Two failures: below the `failures >= 3` guard.
    let e = evaluate(&snap(counts(20, 0, 2), latency(20, 1.0)), &rules);
    assert!(e.is_empty(), "{e:?}");
}

fn process(pid: u32, samples: u64, p99: f64) -> ProcessStats {
    ProcessStats {
        pid,
        comm: format!("p{pid}"),
        cgroup: None,
        pod: None,
        counts: counts(samples, 0, 0),
        latency: latency(samples, p99),
        lookups: LookupStats::default(),
    }
}

#[test]
fn peer_medians_match_the_naive_definition() {
    use crate::rules::metrics::{registry, View};
    let mut s = snap(counts(1000, 0, 0), latency(1000, 5.0));
    // Duplicates, a row below min_samples and one without latency samples.
    let p99s = [4.0, 9.0, 4.0, 1.0, 30.0, 7.0, 7.0];
    s.processes = p99s
        .iter()
        .enumerate()
        .map(|(i, &p)| process(i as u32 + 1, 50, p))
        .collect();
    s.processes.push(process(99, 5, 500.0));
    let mut empty = process(100, 0, 0.0);
    empty.latency = Latency::default();
    s.processes.push(empty);
    let view = View::new(&s, Scope::Process);
    let peers = registry()
        .find(Scope::Process, "peers.latency.p99_ms")
        .unwrap();
    for i in 0..view.rows.len() {
        let mut others: Vec<f64> = p99s
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, v)| *v)
            .collect();
        others.sort_by(f64::total_cmp);
        let n = others.len();
        let naive = if n % 2 == 1 {
            others[n / 2]
        } else {
            (others[n / 2 - 1] + others[n / 2]) / 2.0
        };
        assert_eq!(view.value(peers, i, 20), Some(naive), "row {i}");
    }
}

#[test]
fn one_slow_process_among_thousands_is_found_once() {
    let rules = inline(&[OUTLIER_RULE]);
    let mut s = snap(counts(100_000, 0, 0), latency(100_000, 5.0));
    s.processes = (0..5000)
        .map(|i| process(i + 1, 20, 3.0 + (i % 7) as f64))
        .collect();
    s.processes[4321].latency.p99_ms = Some(800.0);
    let started = std::time::Instant::now();
    let f = evaluate(&s, &rules);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].subject, "process p4322 (pid 4322)");
    assert_eq!(f[0].severity, Severity::Critical);
    // O(n log n), not O(n^2): well under a second even unoptimized.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn disabled_rules_report_disabled() {
    let mut rules = RuleSet::builtin().unwrap();
    rules.disable("dns_no_traffic").unwrap();
    let e = evaluate_all(&snap(Counts::default(), Latency::default()), &rules);
    assert!(e.findings.is_empty());
    let c = e
        .checks
        .iter()
        .find(|c| c.rule == "dns_no_traffic")
        .unwrap();
    assert_eq!(c.status, CheckStatus::Disabled);
}
