//! The two views of a chaos run side by side: the lookups the scenario's clients made
//! and the queries dnsdoc captured on the wire, counted over the same interval, with
//! each difference named (re-sends with new ids, TCP after truncation, A/AAAA pairs);
//! client-perceived latency against wire latency, with why they differ; and, for a
//! paired rule that did not fire, why not (the value it saw, the threshold, the
//! samples, and whether the target held or the rule could not see the fault).

use std::fmt::Write;

use serde::Serialize;

use super::load::RESEND_AFTER;
use super::report::LoadReport;
use crate::render::style::ms;
use crate::rules::{self, CheckStatus, Direction, NearMiss};
use crate::snapshot::{Latency, Snapshot};

/// Client lookups against wire queries, over the load's sending interval.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciliation {
    /// Seconds from the first to the last send: both rates are over this interval
    /// (the capture window is longer, to see the last answers and timeouts).
    pub interval_s: f64,
    pub lookups: u64,
    pub lookups_per_s: f64,
    /// Re-sends of an unanswered lookup, each with a new DNS id: a new query on the wire.
    pub resends: u64,
    /// Queries asked again over TCP after a truncated UDP answer.
    pub tcp_after_truncation: u64,
    /// Extra queries from A/AAAA pairs: 0 for the lean client (one type per lookup),
    /// one per name tried for glibc clients (getaddrinfo asks both together).
    pub aaaa_pairs: u64,
    /// Extra names tried by glibc clients' search-list walk (ndots), beyond one per
    /// lookup; 0 for the lean client (fully qualified names).
    pub search_expansions: u64,
    /// Re-sends that kept their DNS id (glibc): dnsdoc folds them into the query they
    /// repeat, so they are not expected among `captured`.
    pub same_id_resends: u64,
    /// Whether the clients were real glibc (`getent`) behind dnsdoc's relay.
    pub glibc: bool,
    /// lookups + resends + tcp_after_truncation + aaaa_pairs + search_expansions.
    pub queries_sent: u64,
    pub queries_sent_per_s: f64,
    /// Client queries dnsdoc captured (its `totals.queries`), and the same-id re-sends
    /// it folded into them (`totals.retransmissions`).
    pub captured: u64,
    pub captured_per_s: f64,
    pub captured_same_id_resends: u64,
    /// Lookups the clients gave up on.
    pub lookup_timeouts: u64,
    /// Sends the clients never got an answer to (an unanswered first send of a lookup
    /// a re-send then rescued is one of them).
    pub unanswered_sends: u64,
    /// Queries dnsdoc counted as timed out.
    pub wire_timeouts: u64,
    /// Queries the target's own socket received (server side), when it is local and
    /// in the watched cgroup.
    pub target_received: Option<u64>,
    /// The capture window's length: dnsdoc's own tables average over it.
    pub window_s: f64,
    pub latency: LatencyViews,
}

/// The same lookups timed at four points.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyViews {
    /// First send to the answer, in the client: what an application waits.
    pub client_lookup: Latency,
    /// The answered send to its answer, in the client's event loop.
    pub client_round_trip: Latency,
    /// Query leaving the client socket to the answer reaching it, in the kernel.
    pub wire: Latency,
    /// Query reaching the target's socket to the answer leaving it (local target only).
    pub server_processing: Option<Latency>,
}

impl Reconciliation {
    pub fn new(load: &LoadReport, snap: &Snapshot) -> Reconciliation {
        let w = &load.wire;
        let interval_s = load.send_interval_s.max(1e-3);
        let rate = |n: u64| (n as f64 / interval_s * 10.0).round() / 10.0;
        let queries_sent =
            load.sent + w.resends + w.tcp_queries + w.pair_siblings + w.search_expansions;
        let captured = snap.totals.counts.queries;
        let server = &snap.server_side;
        let local = server.counts.queries > 0;
        Reconciliation {
            interval_s: (interval_s * 1e3).round() / 1e3,
            lookups: load.sent,
            lookups_per_s: rate(load.sent),
            resends: w.resends,
            tcp_after_truncation: w.tcp_queries,
            aaaa_pairs: w.pair_siblings,
            search_expansions: w.search_expansions,
            same_id_resends: w.same_id_resends,
            glibc: w.pair_siblings + w.search_expansions + w.same_id_resends > 0,
            queries_sent,
            queries_sent_per_s: rate(queries_sent),
            captured,
            captured_per_s: rate(captured),
            captured_same_id_resends: snap.totals.retransmissions,
            lookup_timeouts: load.timeouts,
            unanswered_sends: w.queries().saturating_sub(w.responses + w.stale_answers),
            wire_timeouts: snap.totals.counts.timeouts,
            target_received: local.then_some(server.counts.queries),
            window_s: snap.window.duration_s,
            latency: LatencyViews {
                client_lookup: load.latency.clone(),
                client_round_trip: load.round_trip.clone(),
                wire: snap.latency.clone(),
                server_processing: local.then(|| server.latency.clone()),
            },
        }
    }

    /// The text section of the summary.
    pub fn render(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "\nClient lookups vs wire queries (both over the {:.1}s from the first send to the \
             last re-send; dnsdoc's tables below average over its {:.1}s window)",
            self.interval_s, self.window_s
        );
        let row = |o: &mut String, label: &str, n: u64, why: &str| {
            let _ = writeln!(o, "  {label:<22}{n:>9}  {why}");
        };
        row(
            o,
            "lookups",
            self.lookups,
            &format!(
                "{}/s, {}",
                rate_text(self.lookups_per_s),
                if self.glibc {
                    "getaddrinfo calls (getent)"
                } else {
                    "one question each"
                }
            ),
        );
        if self.glibc {
            row(
                o,
                "+ search expansions",
                self.search_expansions,
                "names tried before the last one: glibc walks the search list (ndots)",
            );
        }
        let resend_why = if self.glibc {
            format!(
                "after its timeout glibc sends the pair again, the answered query too; {} \
                 re-sent a lost query with its id, which dnsdoc folds into that query",
                self.same_id_resends
            )
        } else {
            format!(
                "a lookup unanswered after {} ms is sent again with a new DNS id: a new query",
                RESEND_AFTER.as_millis()
            )
        };
        row(o, "+ re-sends", self.resends, &resend_why);
        row(
            o,
            "+ TCP after TC",
            self.tcp_after_truncation,
            "a truncated UDP answer is asked again over TCP",
        );
        row(
            o,
            "+ A/AAAA pairs",
            self.aaaa_pairs,
            if self.glibc {
                "getaddrinfo asks A and AAAA together, for every name it tries"
            } else {
                "each lookup asks A or AAAA, not both (glibc's getaddrinfo sends both)"
            },
        );
        row(
            o,
            "= queries sent",
            self.queries_sent,
            &format!("{}/s", rate_text(self.queries_sent_per_s)),
        );
        // Same-id re-sends are folded into the query they repeat.
        let expected = self.queries_sent - self.same_id_resends.min(self.queries_sent);
        let diff = self.captured as i64 - expected as i64;
        let agree = if diff == 0 {
            "the same count".to_string()
        } else {
            format!(
                "{} {} than sent: {}",
                diff.unsigned_abs(),
                if diff > 0 { "more" } else { "fewer" },
                if diff > 0 {
                    "other processes of this one (or a previous run's late sends) in the window"
                } else {
                    "queries lost before the socket boundary or to a full ring (see capture health)"
                }
            )
        };
        row(
            o,
            "dnsdoc saw",
            self.captured,
            &format!(
                "{}/s client queries ({agree}); {} same-id re-sends folded in",
                rate_text(self.captured_per_s),
                self.captured_same_id_resends
            ),
        );
        if let Some(n) = self.target_received {
            row(
                o,
                "target received",
                n,
                "queries reaching the target's own socket (server side)",
            );
        }
        let _ = writeln!(
            o,
            "  timeouts: {} lookups gave up (client, {}); {} sends were never answered, \
             dnsdoc counted {} queries timed out: every unanswered send is a timeout on the wire, \
             even when a re-send rescued its lookup",
            self.lookup_timeouts,
            if self.glibc {
                "after glibc's attempts".to_string()
            } else {
                format!("after {} sends", super::load::SENDS_PER_LOOKUP)
            },
            self.unanswered_sends,
            self.wire_timeouts
        );
        let l = &self.latency;
        let _ = writeln!(o, "\nLatency, the same lookups timed four ways (p50 / p99)");
        let line = |o: &mut String, label: &str, lat: &Latency, why: &str| {
            let _ = writeln!(
                o,
                "  {label:<22}{:>9} / {:<9} ms  {why}",
                ms(lat.p50_ms),
                ms(lat.p99_ms)
            );
        };
        line(
            o,
            "client lookup",
            &l.client_lookup,
            "first send to answer: adds the waits before re-sends and the TCP retry",
        );
        line(
            o,
            "client round trip",
            &l.client_round_trip,
            "answered send to its answer: adds the client's own scheduling to the wire",
        );
        line(
            o,
            "wire (dnsdoc)",
            &l.wire,
            "query leaving the client socket to the answer reaching it, timed in the kernel",
        );
        if let Some(s) = &l.server_processing {
            line(
                o,
                "target processing",
                s,
                "query reaching the target's socket to the answer leaving it",
            );
        }
    }
}

fn rate_text(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.1}K", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

/// What the clients saw of a rule's metric, for a node-scope rule, or `None` when the
/// clients cannot measure it.
fn client_value(metric: &str, load: &LoadReport) -> Option<f64> {
    let completed = (load.answered + load.timeouts) as f64;
    let ratio = |n: u64| (completed > 0.0).then(|| n as f64 / completed);
    match metric {
        "latency.p50_ms" => load.latency.p50_ms,
        "latency.p90_ms" => load.latency.p90_ms,
        "latency.p95_ms" => load.latency.p95_ms,
        "latency.p99_ms" => load.latency.p99_ms,
        "latency.max_ms" => load.latency.max_ms,
        "failure_ratio" => ratio(load.timeouts + load.errors + load.rcodes.failed()),
        "timeout_ratio" => ratio(load.timeouts),
        "servfail_ratio" => ratio(load.rcodes.SERVFAIL),
        "nxdomain_ratio" => {
            (load.answered > 0).then(|| load.rcodes.NXDOMAIN as f64 / load.answered as f64)
        }
        "truncation_ratio" => (load.wire.responses > 0)
            .then(|| load.wire.truncated as f64 / load.wire.responses as f64),
        _ => None,
    }
}

/// Why a paired rule did not fire, in one line a facilitator can act on.
pub fn why_not_fired(verdict: &rules::Check, load: &LoadReport, r: &Reconciliation) -> String {
    match verdict.status {
        CheckStatus::Disabled => return "did not fire: disabled by a rule file".into(),
        CheckStatus::NoData => {
            return "did not fire: rule blind, no data to judge (the capture saw none of what \
                    it measures)"
                .into()
        }
        CheckStatus::InsufficientData => {
            return format!(
                "did not fire: rule blind, at most {} samples (it needs more): lengthen \
                 --duration or raise --qps",
                verdict.most_samples
            )
        }
        _ => {}
    }
    let Some(n) = &verdict.nearest else {
        return "did not fire".into();
    };
    let stayed = stayed_text(n);
    let rate = format!("{} q/s", rate_text(r.captured_per_s));
    if !n.conditions_held {
        return format!(
            "did not fire: {stayed} over {} samples at {rate}, but its `when` condition did \
             not hold: rule blind to this run",
            n.samples
        );
    }
    let client = client_value(&n.metric, load).filter(|v| n.direction.crossed(*v, n.threshold));
    match client {
        Some(v) => format!(
            "did not fire: {stayed} over {} samples at {rate}, while the clients saw {}: rule \
             blind (the clients' figure counts whole lookups with their re-sends; the rule \
             judges each query on the wire)",
            n.samples,
            n.unit.format(v)
        ),
        None => format!(
            "did not fire: {stayed} over {} samples at {rate}: the target held; raise \
             --intensity or constrain the target (a CPU budget, see docs/CHAOS.md)",
            n.samples
        ),
    }
}

/// "p99 4.80 ms stayed below 100 ms (WARNING)" for the near miss.
fn stayed_text(n: &NearMiss) -> String {
    let what = n
        .metric
        .strip_prefix("latency.")
        .map(|m| m.trim_end_matches("_ms").to_string())
        .unwrap_or_else(|| n.metric.replace('_', " "));
    let side = match n.direction {
        Direction::Above => "below",
        Direction::Below => "above",
    };
    let subject = if n.subject == "node" {
        String::new()
    } else {
        format!(" ({})", n.subject)
    };
    // Past the threshold, a `when` condition is what held the rule back.
    let stayed = if n.direction.crossed(n.value, n.threshold) {
        "was past".to_string()
    } else {
        format!("stayed {side}")
    };
    format!(
        "{what}{subject} {} {stayed} {} ({})",
        n.unit.format(n.value),
        n.unit.format(n.threshold),
        n.threshold_severity.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::load::WireStats;
    use crate::rules::{Severity, Unit};

    fn load(p99: f64, timeouts: u64) -> LoadReport {
        LoadReport {
            qps_limit: 1000,
            concurrency: 8,
            names: "n".into(),
            elapsed_s: 10.0,
            send_interval_s: 10.0,
            sent: 1000,
            achieved_qps: 100.0,
            answered: 1000 - timeouts,
            rcodes: Default::default(),
            timeouts,
            errors: 0,
            cancelled: 0,
            first_error: None,
            latency: Latency {
                samples: 1000,
                p50_ms: Some(0.2),
                p99_ms: Some(p99),
                ..Default::default()
            },
            round_trip: Latency::default(),
            wire: WireStats {
                udp_queries: 1100,
                resends: 100,
                responses: 1000,
                ..Default::default()
            },
        }
    }

    fn verdict(value: f64) -> rules::Check {
        rules::Check {
            rule: "dns_high_latency".into(),
            status: CheckStatus::Pass,
            severity: None,
            judged: 1,
            below_min_samples: 0,
            allowed: 0,
            findings: 0,
            nearest: Some(NearMiss {
                subject: "node".into(),
                metric: "latency.p99_ms".into(),
                unit: Unit::Ms,
                value,
                threshold: 100.0,
                threshold_severity: Severity::Warning,
                direction: Direction::Above,
                samples: 1100,
                conditions_held: true,
            }),
            most_samples: 1100,
        }
    }

    #[test]
    fn counts_are_reconciled_over_the_sending_interval() {
        let mut snap = Snapshot::default();
        snap.totals.counts.queries = 1100;
        snap.totals.counts.timeouts = 100;
        let r = Reconciliation::new(&load(3.0, 0), &snap);
        assert_eq!(r.queries_sent, 1100, "lookups plus re-sends");
        assert_eq!(r.captured_per_s, 110.0, "over the 10 s of sending");
        assert_eq!(r.unanswered_sends, 100);
        assert_eq!(r.target_received, None, "no server side: not local");
        let mut text = String::new();
        r.render(&mut text);
        assert!(text.contains("the same count"), "{text}");
        snap.totals.counts.queries = 1000;
        let mut text = String::new();
        Reconciliation::new(&load(3.0, 0), &snap).render(&mut text);
        assert!(text.contains("100 fewer than sent"), "{text}");
    }

    #[test]
    fn a_quiet_rule_says_whether_the_target_held_or_the_rule_was_blind() {
        let snap = Snapshot::default();
        let held = load(3.0, 0);
        let r = Reconciliation::new(&held, &snap);
        let text = why_not_fired(&verdict(4.8), &held, &r);
        assert!(
            text.contains("p99 4.80 ms stayed below 100 ms (WARNING)"),
            "{text}"
        );
        assert!(text.contains("1100 samples"), "{text}");
        assert!(text.contains("the target held"), "{text}");
        // The clients waited past the threshold (re-sends), the wire did not: blind.
        let slow = load(700.0, 0);
        let text = why_not_fired(&verdict(4.8), &slow, &r);
        assert!(text.contains("rule blind"), "{text}");
        assert!(text.contains("700 ms"), "{text}");
        let mut v = verdict(4.8);
        v.status = CheckStatus::InsufficientData;
        v.most_samples = 7;
        assert!(why_not_fired(&v, &held, &r).contains("at most 7 samples"));
    }
}
