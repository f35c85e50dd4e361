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
    /// Subjects skipped because the rule's allow list names their domain.
    #[serde(skip_serializing_if = "is_zero")]
    pub allowed: u64,
    pub findings: u64,
    /// When it did not fire: the judged subject that came closest to the lowest
    /// threshold, so a report can say how far it stayed from firing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nearest: Option<NearMiss>,
    /// The most samples any subject had (says how far from `min_samples` a rule
    /// with insufficient data was).
    pub most_samples: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
                allowed: 0,
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
    let mut allowed = 0u64;
    for i in 0..view.rows.len() {
        if view.rows[i].allow_key.is_some_and(|k| rule.allows(k)) {
            allowed += 1;
            continue;
        }
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
        allowed,
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
            "coredns_period" => match &view.snapshot.coredns {
                Some(c) if c.mode == "delta" => format!(
                    "in the {} between two scrapes",
                    Unit::Seconds.format(c.span_s)
                ),
                Some(_) => "since CoreDNS started (one scrape)".to_string(),
                None => "n/a".to_string(),
            },
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
mod tests;
