//! The result of a chaos run: what the load saw, what the fault did and, with --verify,
//! which paired rules fired. Rendered as text for people or as JSON (`--format json`).

use crate::analysis::aggregate::latency_summary;
use std::fmt::Write;

use owo_colors::OwoColorize;
use serde::Serialize;

use super::load::{LoadStats, WireStats};
use super::loss::LossCounters;
use super::reconcile::Reconciliation;
use super::scenario::{Fault, LoadShape, Scenario};
use crate::render::style::{ms, pct};
use crate::rules::{self, CheckStatus, Finding, Severity};
use crate::snapshot::{Latency, Rcodes, Snapshot};

/// Everything a run produced. The JSON form is documented in docs/CHAOS.md.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    pub scenario: String,
    /// True for the healthy twin (`--baseline`): paired rules must stay quiet.
    pub baseline: bool,
    pub target: String,
    pub intensity: String,
    /// Planned duration of the load.
    pub duration_s: f64,
    /// Ctrl-C or SIGTERM ended the run early.
    pub interrupted: bool,
    pub load: LoadReport,
    pub fault: Option<FaultReport>,
    pub verify: Option<VerifyReport>,
    /// With --verify: client lookups against the queries dnsdoc captured, and the
    /// latency of the same lookups timed in the client, the kernel and the target.
    pub reconciliation: Option<Reconciliation>,
}

/// Client-side view of the load, as the scenario's own resolvers saw it.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub qps_limit: u32,
    pub concurrency: u32,
    pub names: String,
    /// Seconds from the first lookup to the end of sending.
    pub elapsed_s: f64,
    /// Lookups started.
    pub sent: u64,
    /// sent / elapsed_s.
    pub achieved_qps: f64,
    /// Lookups that got a response (any RCODE).
    pub answered: u64,
    pub rcodes: Rcodes,
    /// Lookups the resolver gave up on.
    pub timeouts: u64,
    /// Client-side errors (socket, resolver busy).
    pub errors: u64,
    /// Lookups abandoned by Ctrl-C.
    pub cancelled: u64,
    pub first_error: Option<String>,
    /// Latency of answered lookups from their first send, including the client's own
    /// re-sends and TCP retries.
    pub latency: Latency,
    /// From the send that was answered to its answer, as the client's event loop saw it.
    pub round_trip: Latency,
    /// Seconds from the first send to the last one (re-sends included): the interval
    /// rates are compared over.
    pub send_interval_s: f64,
    /// Every message the clients put on the wire and got back.
    pub wire: WireStats,
}

impl LoadReport {
    pub fn new(shape: &LoadShape, stats: &LoadStats, elapsed_s: f64) -> LoadReport {
        LoadReport {
            qps_limit: shape.qps,
            concurrency: shape.concurrency,
            names: shape.names.describe(),
            elapsed_s: (elapsed_s * 1e3).round() / 1e3,
            sent: stats.sent,
            achieved_qps: if elapsed_s > 0.0 {
                (stats.sent as f64 / elapsed_s * 10.0).round() / 10.0
            } else {
                0.0
            },
            answered: stats.answered,
            rcodes: stats.rcodes.clone(),
            timeouts: stats.timeouts,
            errors: stats.errors,
            cancelled: stats.cancelled,
            first_error: stats.first_error.clone(),
            latency: latency_summary(&stats.latency),
            round_trip: latency_summary(&stats.round_trip),
            send_interval_s: match (stats.first_send_ns, stats.last_send_ns) {
                (Some(a), Some(b)) if b > a => ((b - a) as f64 / 1e6).round() / 1e3,
                _ => 0.0,
            },
            wire: stats.wire.clone(),
        }
    }
}

/// What the fault did.
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    #[serde(flatten)]
    pub fault: Fault,
    /// The address whose DNS packets were dropped (the target, or its upstream).
    pub address: String,
    /// The cgroup the fault was attached to.
    pub cgroup: String,
    #[serde(flatten)]
    pub counters: LossCounters,
    /// DNS packets to or from the target that the fault judged.
    pub matched: u64,
    pub dropped: u64,
}

/// Did a paired rule behave as the scenario expects?
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub rule: String,
    /// "fire" for a scenario, "quiet" for its baseline.
    pub expect: &'static str,
    /// A finding of this rule at WARNING or above exists.
    pub fired: bool,
    /// The highest severity it fired with.
    pub severity: Option<Severity>,
    /// The rules engine's verdict: fired, pass, insufficient_data (too few samples),
    /// no_data, disabled; `None`, printed "unknown", when no rule has this id.
    #[serde(serialize_with = "status_or_unknown")]
    pub status: Option<CheckStatus>,
    pub pass: bool,
    /// For a rule that did not fire: why (the value it saw, the threshold, the samples,
    /// and whether the target held or the rule could not see the fault).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The game-day self-check.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Every check passed, and the run was not cut short.
    pub passed: bool,
    /// Ctrl-C or SIGTERM ended the run early: the window is partial, so no check passes.
    #[serde(default)]
    pub cut_short: bool,
    pub checks: Vec<Check>,
    /// Every finding, paired or not.
    pub findings: Vec<Finding>,
    /// What the capture saw (the same format as `watch -o`).
    pub snapshot: Snapshot,
}

/// Checks each paired rule against the findings. A rule fired when a finding with its
/// id at WARNING or above exists; a scenario expects it to fire, a baseline not to.
/// `verdicts` is the engine's check per rule id, to explain a rule that did not fire.
pub fn checks(
    paired: &[&str],
    findings: &[Finding],
    verdicts: &[rules::Check],
    baseline: bool,
) -> Vec<Check> {
    paired
        .iter()
        .map(|rule| {
            let status = verdicts.iter().find(|c| c.rule == *rule).map(|c| c.status);
            let severity = findings
                .iter()
                .filter(|f| f.rule == *rule && f.severity >= Severity::Warning)
                .map(|f| f.severity)
                .max();
            let fired = severity.is_some();
            Check {
                rule: rule.to_string(),
                expect: if baseline { "quiet" } else { "fire" },
                fired,
                severity,
                // A paired rule that does not exist can never pass, baseline or not.
                pass: status.is_some() && fired != baseline,
                status,
                why: None,
            }
        })
        .collect()
}

/// A check's status as JSON spells it, "unknown" for a rule id with no rule.
fn status_or_unknown<S: serde::Serializer>(
    status: &Option<CheckStatus>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.map_or("unknown", CheckStatus::as_str))
}

/// The `--list` text.
pub fn render_list(scenarios: &[&dyn Scenario]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Scenarios (run one with: dnsdoc chaos --induce NAME --target ADDR:PORT [--verify])\n"
    );
    for s in scenarios {
        let _ = writeln!(o, "{}", s.name());
        let _ = writeln!(o, "  {}", s.description());
        let _ = writeln!(o, "  intensity:    {}", s.intensities());
        let _ = writeln!(o, "  paired rules: {}", s.paired_rules().join(", "));
        let _ = writeln!(o, "  why:          {}", s.rationale());
        let _ = writeln!(o);
    }
    o
}

/// `--list --format json`: one object per scenario.
#[derive(Debug, Serialize)]
pub struct ScenarioView {
    pub name: &'static str,
    pub description: &'static str,
    pub intensities: String,
    pub paired_rules: &'static [&'static str],
    pub rationale: &'static str,
}

pub fn list_json(scenarios: &[&dyn Scenario]) -> Vec<ScenarioView> {
    scenarios
        .iter()
        .map(|s| ScenarioView {
            name: s.name(),
            description: s.description(),
            intensities: s.intensities(),
            paired_rules: s.paired_rules(),
            rationale: s.rationale(),
        })
        .collect()
}

/// The text summary. `color` adds ANSI colours to PASS and FAIL.
pub fn render(r: &ChaosReport, color: bool) -> String {
    let mut o = String::new();
    let l = &r.load;
    let _ = writeln!(
        o,
        "chaos {}{} against {} for {:.0}s, intensity {} ({} qps cap, {} workers){}",
        r.scenario,
        if r.baseline { " (baseline)" } else { "" },
        r.target,
        r.duration_s,
        r.intensity,
        l.qps_limit,
        l.concurrency,
        if r.interrupted { ", INTERRUPTED" } else { "" }
    );
    let _ = writeln!(o, "names: {}", l.names);
    let _ = writeln!(
        o,
        "\nLoad (client side, as the scenario's resolvers saw it)"
    );
    let _ = writeln!(
        o,
        "  sent      {:>9}  ({:.0}/s while starting lookups for {:.1}s)",
        l.sent, l.achieved_qps, l.elapsed_s
    );
    let rc = &l.rcodes;
    let _ = writeln!(
        o,
        "  answered  {:>9}  NOERROR {}  NXDOMAIN {}  SERVFAIL {}  REFUSED {}  other {}",
        l.answered,
        rc.NOERROR,
        rc.NXDOMAIN,
        rc.SERVFAIL,
        rc.REFUSED,
        rc.FORMERR + rc.NOTIMP + rc.other
    );
    let _ = writeln!(o, "  timeouts  {:>9}", l.timeouts);
    if l.errors > 0 {
        let _ = writeln!(
            o,
            "  errors    {:>9}  (first: {})",
            l.errors,
            l.first_error.as_deref().unwrap_or("-")
        );
    }
    if l.cancelled > 0 {
        let _ = writeln!(o, "  cancelled {:>9}  (in flight at Ctrl-C)", l.cancelled);
    }
    let _ = writeln!(
        o,
        "  latency   p50 {} ms   p99 {} ms   max {} ms",
        ms(l.latency.p50_ms),
        ms(l.latency.p99_ms),
        ms(l.latency.max_ms)
    );
    if let Some(f) = &r.fault {
        let (what, fraction) = match f.fault {
            Fault::PacketLoss { fraction } => ("packet loss", fraction),
            Fault::SilentUpstream => ("silent upstream", 1.0),
        };
        let ratio = if f.matched > 0 {
            f.dropped as f64 / f.matched as f64
        } else {
            0.0
        };
        let _ = writeln!(
            o,
            "\nFault: {what} {} in cgroup {}\n  dropped   {:>9}  of {} DNS packets to or from {} ({})",
            pct(fraction),
            f.cgroup,
            f.dropped,
            f.matched,
            f.address,
            pct(ratio)
        );
    }
    if let Some(rec) = &r.reconciliation {
        rec.render(&mut o);
    }
    if let Some(v) = &r.verify {
        let _ = writeln!(o, "\nWhat dnsdoc saw (the scenario's own queries)");
        o.push_str(&crate::render::summary::render(&v.snapshot));
        let _ = writeln!(o, "\nFindings");
        if v.findings.is_empty() {
            let _ = writeln!(o, "  none");
        }
        for f in &v.findings {
            let _ = writeln!(
                o,
                "  {:<9} {:<28} {}: {}",
                f.severity.as_str(),
                f.rule,
                f.subject,
                f.summary
            );
        }
        let _ = writeln!(
            o,
            "\nVerification ({})",
            if r.baseline {
                "baseline: no paired rule may fire"
            } else {
                "every paired rule must fire at WARNING or above"
            }
        );
        for c in &v.checks {
            let verdict = if c.pass { "PASS" } else { "FAIL" };
            let verdict = match (color, c.pass) {
                (false, _) => verdict.to_string(),
                (true, true) => verdict.green().bold().to_string(),
                (true, false) => verdict.red().bold().to_string(),
            };
            let what = match (c.severity, c.status) {
                (Some(s), _) => format!("fired ({s})"),
                (_, _) if c.why.is_some() => c.why.clone().unwrap_or_default(),
                (_, Some(CheckStatus::InsufficientData)) => {
                    "did not fire: too few samples to judge".into()
                }
                (_, Some(CheckStatus::NoData)) => "did not fire: no data to judge".into(),
                (_, Some(CheckStatus::Disabled)) => "did not fire: disabled by a rule file".into(),
                (_, None) => "did not fire: no rule has this id".into(),
                _ => "did not fire".to_string(),
            };
            let _ = writeln!(o, "  {verdict}  {:<28} {what}", c.rule);
        }
        let passed = v.checks.iter().filter(|c| c.pass).count();
        if v.cut_short {
            let _ = writeln!(
                o,
                "Result: INTERRUPTED (cut short after {:.1}s of {:.0}s: a partial window proves \
                 nothing, so no check passes)",
                l.elapsed_s, r.duration_s
            );
        } else {
            let _ = writeln!(
                o,
                "Result: {} ({passed} of {} checks passed)",
                if v.passed { "PASS" } else { "FAIL" },
                v.checks.len()
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &str, severity: Severity) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            title: "t".into(),
            summary: "s".into(),
            scope: rules::Scope::Node,
            subject: "node".into(),
            metric: "latency.p99_ms".into(),
            unit: rules::Unit::Ms,
            value: 1.0,
            threshold: 1.0,
            direction: rules::Direction::Above,
            samples: 1,
            excess: 0.0,
            evidence: Vec::new(),
            remediation: Vec::new(),
            docs: None,
        }
    }

    #[test]
    fn a_paired_rule_passes_when_it_fires_at_warning_or_above() {
        let findings = vec![
            finding("dns_high_latency", Severity::Warning),
            finding("dns_high_latency", Severity::Critical),
            finding("dns_timeouts", Severity::Info),
        ];
        let verdict = |rule: &str, status| rules::Check {
            rule: rule.into(),
            status,
            severity: None,
            judged: 1,
            below_min_samples: 0,
            allowed: 0,
            findings: 0,
            nearest: None,
            most_samples: 1,
        };
        let statuses = vec![
            verdict("dns_high_latency", CheckStatus::Fired),
            verdict("dns_timeouts", CheckStatus::Fired),
            verdict("dns_failure_rate", CheckStatus::InsufficientData),
        ];
        let c = checks(
            &["dns_high_latency", "dns_timeouts", "dns_failure_rate"],
            &findings,
            &statuses,
            false,
        );
        assert!(c[0].pass && c[0].fired);
        assert_eq!(c[0].severity, Some(Severity::Critical));
        assert!(!c[1].pass && !c[1].fired, "INFO does not count");
        assert!(!c[2].pass);
        assert_eq!(c[2].status, Some(CheckStatus::InsufficientData));
        // The baseline inverts the expectation.
        let b = checks(
            &["dns_high_latency", "dns_failure_rate", "dns_nope"],
            &findings,
            &statuses,
            true,
        );
        assert_eq!(b[2].status, None);
        assert_eq!(serde_json::to_value(&b[2]).unwrap()["status"], "unknown");
        assert!(!b[2].pass, "a missing rule fails even a baseline");
        assert!(!b[0].pass);
        assert!(b[1].pass);
        assert_eq!(b[1].expect, "quiet");
    }
}
