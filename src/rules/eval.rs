//! Evaluation: every enabled rule against every subject of its scope, then ranking.
//!
//! A subject is judged only with at least `min_samples` samples (three queries never
//! raise an alarm), and only when its `when` conditions hold. Each rule also gets a
//! check status (PASS, fired, not enough data...) so "no finding" is never confused
//! with "nothing was judged".

use std::collections::HashMap;

use serde::Serialize;

use super::metrics::{registry, Scope, Unit, View};
use super::{Direction, Rule, RuleSet, Severity, TOP_EVIDENCE};
use crate::snapshot::Snapshot;

/// One line of evidence under a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// For people: "process java (pid 4242): latency.p99_ms 2100 ms (300 queries)".
    pub text: String,
    /// For breakdowns, the scope and subject listed ("process java (pid 4242)"); absent
    /// for the finding's own subject's metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub metric: String,
    pub value: Option<f64>,
}

/// Something wrong (or notable) that a rule found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Rule id.
    pub rule: String,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    pub scope: Scope,
    /// Who: "node", "process dig (pid 42)", "server 10.0.0.2:53/udp".
    pub subject: String,
    pub metric: String,
    pub unit: Unit,
    pub value: f64,
    /// The threshold crossed (of `severity`).
    pub threshold: f64,
    pub direction: Direction,
    /// The value of the rule's sample-count metric for this subject.
    pub samples: u64,
    /// How far past the threshold, relative to it: 0.5 = 50% past. Ranks findings.
    pub excess: f64,
    pub evidence: Vec<Evidence>,
    pub remediation: Vec<String>,
    pub docs: Option<String>,
}

/// The outcome of one rule over the whole snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// At least one subject was judged and none crossed a threshold.
    Pass,
    /// At least one finding.
    Fired,
    /// Subjects exist but none had `min_samples` samples.
    InsufficientData,
    /// No subject, or the metric had no value (e.g. no latency samples, no peers).
    NoData,
    Disabled,
}

impl CheckStatus {
    /// The name JSON uses (snake_case).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fired => "fired",
            CheckStatus::InsufficientData => "insufficient_data",
            CheckStatus::NoData => "no_data",
            CheckStatus::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub rule: String,
    pub status: CheckStatus,
    /// Worst severity found, when fired.
    pub severity: Option<Severity>,
    /// Subjects judged (enough samples and a value).
    pub judged: u64,
    /// Subjects skipped for fewer than `min_samples` samples.
    pub below_min_samples: u64,
    pub findings: u64,
    /// When it did not fire: the judged subject that came closest to the lowest
    /// threshold, so a report can say how far it stayed from firing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nearest: Option<NearMiss>,
    /// The most samples any subject had (says how far from `min_samples` a rule
    /// with insufficient data was).
    pub most_samples: u64,
}

/// The subject that came closest to firing a rule that did not fire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearMiss {
    pub subject: String,
    pub metric: String,
    pub unit: Unit,
    pub value: f64,
    /// The lowest threshold the rule has (INFO, else WARNING, else CRITICAL).
    pub threshold: f64,
    pub threshold_severity: Severity,
    pub direction: Direction,
    pub samples: u64,
    /// False when the value alone would have fired but a `when` condition did not hold.
    pub conditions_held: bool,
}

/// Findings (ranked worst first) and the status of every rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    pub checks: Vec<Check>,
}

/// Evaluates every enabled rule; findings ranked worst first.
pub fn evaluate(snapshot: &Snapshot, rules: &RuleSet) -> Vec<Finding> {
    evaluate_all(snapshot, rules).findings
}

/// Like [`evaluate`], with a status per rule.
pub fn evaluate_all(snapshot: &Snapshot, rules: &RuleSet) -> Evaluation {
    let mut views: HashMap<Scope, View> = HashMap::new();
    let mut findings = Vec::new();
    let mut checks = Vec::new();
    for rule in rules.rules() {
        if !rule.enabled {
            checks.push(Check {
                rule: rule.id.clone(),
                status: CheckStatus::Disabled,
                severity: None,
                judged: 0,
                below_min_samples: 0,
                findings: 0,
                nearest: None,
                most_samples: 0,
            });
            continue;
        }
        let view = views
            .entry(rule.scope)
            .or_insert_with(|| View::new(snapshot, rule.scope));
        let (found, check) = evaluate_rule(rule, view);
        findings.extend(found);
        checks.push(check);
    }
    rank(&mut findings);
    Evaluation { findings, checks }
}

/// Severity first, then how far past the threshold, then stable by rule and subject.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.excess.total_cmp(&a.excess))
            .then(a.rule.cmp(&b.rule))
            .then(a.subject.cmp(&b.subject))
    });
}

fn evaluate_rule(rule: &Rule, view: &View) -> (Vec<Finding>, Check) {
    let reg = registry();
    let metric = reg
        .find(rule.scope, &rule.metric)
        .expect("validated metric");
    let samples_metric = reg
        .find(rule.scope, &rule.samples)
        .expect("validated samples");
    let mut out = Vec::new();
    let (mut judged, mut below) = (0, 0);
    let mut most_samples = 0u64;
    // (closeness to the lowest threshold, the near miss): the report's "why not".
    let mut nearest: Option<(f64, NearMiss)> = None;
    let lowest = rule.thresholds().into_iter().next();
    for i in 0..view.rows.len() {
        let samples = view
            .value(samples_metric, i, rule.min_samples)
            .unwrap_or(0.0);
        most_samples = most_samples.max(samples as u64);
        if samples < rule.min_samples as f64 {
            below += 1;
            continue;
        }
        let Some(value) = view.value(metric, i, rule.min_samples) else {
            continue;
        };
        judged += 1;
        let guards_hold = rule.when.iter().all(|g| {
            reg.find(rule.scope, &g.metric)
                .and_then(|m| view.value(m, i, rule.min_samples))
                .is_some_and(|v| g.op.holds(v, g.value))
        });
        if let Some((severity, threshold)) = lowest {
            let closeness = match rule.direction {
                Direction::Above => value - threshold,
                Direction::Below => threshold - value,
            } / threshold.abs().max(f64::MIN_POSITIVE);
            if nearest.as_ref().is_none_or(|(c, _)| closeness > *c) {
                let near = NearMiss {
                    subject: rule.scope.describe(&view.rows[i].label),
                    metric: rule.metric.clone(),
                    unit: rule.unit(),
                    value,
                    threshold,
                    threshold_severity: severity,
                    direction: rule.direction,
                    samples: samples as u64,
                    conditions_held: guards_hold,
                };
                nearest = Some((closeness, near));
            }
        }
        if !guards_hold {
            continue;
        }
        if let Some((severity, threshold)) = rule.classify(value) {
            out.push(finding(
                rule,
                view,
                i,
                value,
                samples as u64,
                severity,
                threshold,
            ));
        }
    }
    let status = if !out.is_empty() {
        CheckStatus::Fired
    } else if judged > 0 {
        CheckStatus::Pass
    } else if below > 0 {
        CheckStatus::InsufficientData
    } else {
        CheckStatus::NoData
    };
    let check = Check {
        rule: rule.id.clone(),
        status,
        severity: out.iter().map(|f| f.severity).max(),
        judged,
        below_min_samples: below,
        findings: out.len() as u64,
        nearest: if out.is_empty() {
            nearest.map(|(_, n)| n)
        } else {
            None
        },
        most_samples,
    };
    (out, check)
}

fn finding(
    rule: &Rule,
    view: &View,
    i: usize,
    value: f64,
    samples: u64,
    severity: Severity,
    threshold: f64,
) -> Finding {
    let reg = registry();
    let unit = rule.unit();
    let subject = rule.scope.describe(&view.rows[i].label);
    let level = |t: Option<f64>| t.map_or_else(|| "none".to_string(), |t| unit.format(t));
    let lookup = |var: &str| -> String {
        match var {
            "value" => unit.format(value),
            "threshold" => unit.format(threshold),
            "severity" => severity.as_str().to_string(),
            "info" => level(rule.info),
            "warning" => level(rule.warning),
            "critical" => level(rule.critical),
            "samples" => samples.to_string(),
            "min_samples" => rule.min_samples.to_string(),
            "subject" => subject.clone(),
            "metric" => rule.metric.clone(),
            "rule" => rule.id.clone(),
            "window" => Unit::Seconds.format(view.snapshot.window.duration_s),
            other => reg
                .find(rule.scope, other)
                .and_then(|m| view.value(m, i, rule.min_samples).map(|v| m.unit.format(v)))
                .unwrap_or_else(|| "n/a".to_string()),
        }
    };
    let excess = {
        let past = match rule.direction {
            Direction::Above => value - threshold,
            Direction::Below => threshold - value,
        };
        let e = if threshold != 0.0 {
            past / threshold.abs()
        } else {
            past
        };
        // Rounded so reports are stable across float noise (2.7499999999999996).
        (e * 1e6).round() / 1e6
    };
    Finding {
        rule: rule.id.clone(),
        severity,
        title: rule.title.clone(),
        summary: rule.summary.render(&lookup),
        scope: rule.scope,
        subject: subject.clone(),
        metric: rule.metric.clone(),
        unit,
        value,
        threshold,
        direction: rule.direction,
        samples,
        excess,
        evidence: evidence(rule, view, i),
        remediation: rule.remediation.iter().map(|t| t.render(&lookup)).collect(),
        docs: rule.docs.clone(),
    }
}

fn evidence(rule: &Rule, view: &View, i: usize) -> Vec<Evidence> {
    let reg = registry();
    let mut out = Vec::new();
    for name in &rule.evidence.metrics {
        let Some(m) = reg.find(rule.scope, name) else {
            continue;
        };
        let v = view.value(m, i, rule.min_samples);
        out.push(Evidence {
            text: format!(
                "{name}: {}",
                v.map_or_else(|| "n/a".to_string(), |v| m.unit.format(v))
            ),
            scope: None,
            subject: None,
            metric: name.clone(),
            value: v,
        });
    }
    for &scope in &rule.evidence.top {
        let Some(m) = reg.find(scope, &rule.evidence.top_by) else {
            continue;
        };
        let top_view = View::new(view.snapshot, scope);
        let mut rows: Vec<(f64, u64, &str)> = top_view
            .rows
            .iter()
            .enumerate()
            .filter_map(|(j, r)| {
                let v = top_view.value(m, j, rule.min_samples)?;
                (v > 0.0).then_some((v, r.counts.queries, r.label.as_str()))
            })
            .collect();
        rows.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
        for (v, queries, label) in rows.into_iter().take(TOP_EVIDENCE) {
            out.push(Evidence {
                text: format!(
                    "{}: {} {} ({queries} quer{})",
                    scope.describe(label),
                    m.name,
                    m.unit.format(v),
                    if queries == 1 { "y" } else { "ies" }
                ),
                scope: Some(scope),
                subject: Some(scope.describe(label)),
                metric: m.name.clone(),
                value: Some(v),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
        let fire = |samples, p99| {
            evaluate_all(&snap(counts(samples, 0, 0), latency(samples, p99)), &rules)
        };
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
}
