//! The whole analysis pipeline's oracle: an analyzer run checked step by step
//! (accounting, decoding, bounds, timing), and the aggregator's tables adding up.

use std::collections::HashMap;

use dnsdoc::analysis::aggregate::{Aggregator, MAX_NAMES};
use dnsdoc::analysis::matcher::{Outcome, Role};
use dnsdoc::analysis::tcp::StreamReassembler;
use dnsdoc::analysis::{AnalysisConfig, Analyzer, Attributed};
use dnsdoc::capture::event::{TCP_FIN, TCP_RST};
use dnsdoc::capture::{Direction, PacketEvent, Protocol};

/// One step of an analyzer run.
#[derive(Debug, Clone)]
pub enum Step {
    Event(PacketEvent),
    /// `Analyzer::tick` at this time.
    Tick(u64),
}

/// What an analyzer run produced, for further checks by the caller.
#[derive(Debug)]
pub struct RunResult {
    pub out: Vec<Attributed>,
    pub stats: dnsdoc::analysis::DecodeStats,
    pub matcher: dnsdoc::analysis::matcher::MatcherStats,
}

/// Runs `steps` through a fresh [`Analyzer`], then `finish(finish_at)`, checking after
/// every step what can be stated from matcher.rs and mod.rs:
///
/// - accounting: every DNS message parsed is a query or a response; every query is in
///   flight, a retransmission, evicted, or exactly one transaction; every response
///   answered one of them or is unmatched. So at all times
///   `messages == in_flight + retransmissions + evicted + transactions + answered +
///   unmatched`, and after `finish` nothing is in flight;
/// - decoding: `messages + parse_errors` equals the payloads that reached the parser
///   plus the streams closed inside a message (a shadow reassembler per socket and
///   direction, closed on FIN/RST, says how many), and the desync count agrees with it;
/// - bounds: in flight never exceeds `max_pending`;
/// - when time never goes backwards (`monotonic`): an answer's latency is exactly
///   response time minus query time and below the timeout (an overdue query is expired
///   before a late answer is matched); a timeout is reported only once due; a query
///   reported pending at the end is younger than the timeout;
/// - the aggregator accepts every transaction and its totals add up.
pub fn check_analyzer(
    steps: &[Step],
    cfg: &AnalysisConfig,
    finish_at: u64,
    monotonic: bool,
) -> RunResult {
    let mut a = Analyzer::new(cfg);
    let mut out: Vec<Attributed> = Vec::new();
    let mut tgids = Vec::new();
    // Shadow TCP streams: (reassembler, last seen). Same lifecycle as the analyzer's:
    // FIN ends one direction, RST both, idle streams (2 x timeout) are swept whenever
    // the table has doubled since the last sweep (first at 1024 streams).
    let mut shadow: HashMap<(u64, Direction), (StreamReassembler, u64)> = HashMap::new();
    let mut next_sweep = 1024usize;
    let idle = cfg.timeout_ns.saturating_mul(2);
    let mut closed_desyncs = 0u64;
    let (mut payloads, mut events) = (0u64, 0u64);
    for step in steps {
        let before = out.len();
        let now = match step {
            Step::Event(ev) => {
                events += 1;
                match ev.protocol {
                    Protocol::Udp => payloads += 1,
                    Protocol::Tcp => {
                        let key = (ev.cookie, ev.direction);
                        let mut msgs = Vec::new();
                        let entry = shadow
                            .entry(key)
                            .or_insert_with(|| (StreamReassembler::new(), ev.ts_ns));
                        entry.1 = ev.ts_ns;
                        entry
                            .0
                            .push(ev.tcp_seq, ev.payload_len, &ev.payload, &mut msgs);
                        payloads += msgs.len() as u64;
                        // Closing a stream: a message cut short is one parse error;
                        // segments stuck behind a gap are one more lost framing.
                        let mut close = |r: StreamReassembler| {
                            closed_desyncs += r.stats().desyncs + u64::from(r.has_gap());
                            payloads += u64::from(r.unfinished());
                        };
                        let ends: Vec<(u64, Direction)> = if ev.tcp_flags & TCP_RST != 0 {
                            vec![
                                (ev.cookie, Direction::Egress),
                                (ev.cookie, Direction::Ingress),
                            ]
                        } else if ev.tcp_flags & TCP_FIN != 0 {
                            vec![key]
                        } else {
                            Vec::new()
                        };
                        for k in ends {
                            if let Some((r, _)) = shadow.remove(&k) {
                                close(r);
                            }
                        }
                        if shadow.len() >= next_sweep {
                            let now = ev.ts_ns;
                            let stale: Vec<_> = shadow
                                .iter()
                                .filter(|(_, (_, seen))| now.saturating_sub(*seen) > idle)
                                .map(|(k, _)| *k)
                                .collect();
                            for k in stale {
                                let (r, _) = shadow.remove(&k).unwrap();
                                close(r);
                            }
                            next_sweep = (shadow.len() * 2).max(1024);
                        }
                    }
                }
                a.on_event(ev, &mut tgids, &mut out);
                ev.ts_ns
            }
            Step::Tick(t) => {
                a.tick(*t, &mut out);
                *t
            }
        };
        check_new_transactions(
            &out[before..],
            cfg,
            now,
            monotonic,
            Step::is_tick(step),
            step,
        );
        let s = a.decode_stats();
        assert_eq!(s.events, events);
        assert_eq!(s.messages + s.parse_errors, payloads, "payloads parsed");
        let open: u64 = shadow.values().map(|(r, _)| r.stats().desyncs).sum();
        assert_eq!(s.tcp_desyncs, closed_desyncs + open, "desyncs");
        check_accounting(&a, &out);
        assert!(
            a.in_flight() <= cfg.max_pending.max(1),
            "in flight {} > max",
            a.in_flight()
        );
        for t in &tgids {
            assert_ne!(*t, 0, "tgid 0 reported as a new owner");
        }
    }
    let before = out.len();
    a.finish(finish_at, &mut out);
    for tx in &out[before..] {
        match tx.tx.outcome {
            Outcome::Pending if monotonic => assert!(
                finish_at.saturating_sub(tx.tx.query_ts_ns) < cfg.timeout_ns,
                "pending at the end but overdue: {tx:?}"
            ),
            Outcome::Answered { .. } => panic!("finish answered a query: {tx:?}"),
            _ => {}
        }
    }
    assert_eq!(a.in_flight(), 0, "queries still in flight after finish");
    check_accounting(&a, &out);
    let after = out.len();
    a.finish(finish_at, &mut out);
    assert_eq!(out.len(), after, "a second finish reported more");
    for tx in &out {
        if let Some(o) = &tx.owner {
            assert_ne!(o.tgid, 0, "owner with tgid 0");
        }
    }
    check_aggregate(&out);
    RunResult {
        stats: a.decode_stats(),
        matcher: a.matcher_stats(),
        out,
    }
}

impl Step {
    fn is_tick(&self) -> bool {
        matches!(self, Step::Tick(_))
    }
}

fn check_accounting(a: &Analyzer, out: &[Attributed]) {
    let m = a.matcher_stats();
    let answered = out
        .iter()
        .filter(|t| matches!(t.tx.outcome, Outcome::Answered { .. }))
        .count() as u64;
    let accounted = a.in_flight() as u64
        + m.retransmissions
        + m.server_retransmissions
        + m.evicted
        + out.len() as u64
        + answered
        + m.unmatched_responses;
    assert_eq!(
        a.decode_stats().messages,
        accounted,
        "messages vs in flight {} + {m:?} + {} transactions + {answered} answered",
        a.in_flight(),
        out.len()
    );
}

fn check_new_transactions(
    new: &[Attributed],
    cfg: &AnalysisConfig,
    now: u64,
    monotonic: bool,
    tick: bool,
    step: &Step,
) {
    for t in new {
        match t.tx.outcome {
            Outcome::Answered { latency_ns, .. } => {
                assert!(!tick, "a tick answered a query");
                if monotonic {
                    assert_eq!(latency_ns, now - t.tx.query_ts_ns, "latency of {t:?}");
                    assert!(
                        latency_ns < cfg.timeout_ns,
                        "answered after the timeout: {t:?}"
                    );
                }
            }
            Outcome::TimedOut => {
                if monotonic {
                    assert!(
                        now - t.tx.query_ts_ns >= cfg.timeout_ns,
                        "timed out early: {t:?} at {now}"
                    );
                }
            }
            Outcome::Pending => panic!("pending before finish: {t:?} after {step:?}"),
        }
    }
}

/// Folds the transactions into an [`Aggregator`] and checks that its tables add up.
pub fn check_aggregate(out: &[Attributed]) {
    let mut agg = Aggregator::new();
    for t in out {
        agg.add(t);
    }
    let client: Vec<&Attributed> = out.iter().filter(|t| t.tx.role == Role::Client).collect();
    let count = |v: &[&Attributed], f: fn(&Outcome) -> bool| {
        v.iter().filter(|t| f(&t.tx.outcome)).count() as u64
    };
    let totals = agg.totals(10.0, 0);
    let c = &totals.counts;
    assert_eq!(c.queries, client.len() as u64);
    assert_eq!(
        c.responses,
        count(&client, |o| matches!(o, Outcome::Answered { .. }))
    );
    assert_eq!(
        c.timeouts,
        count(&client, |o| matches!(o, Outcome::TimedOut))
    );
    assert_eq!(totals.udp_queries + totals.tcp_queries, c.queries);
    assert_eq!(totals.ipv4_queries + totals.ipv6_queries, c.queries);
    assert!(totals.truncated_retried_tcp <= totals.truncated);
    for r in [c.failure_ratio, c.nxdomain_ratio] {
        assert!((0.0..=1.0).contains(&r), "ratio {r}");
    }
    let l = agg.latency();
    let qs = [l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms];
    assert_eq!(l.samples, c.responses);
    if l.samples > 0 {
        let qs: Vec<f64> = qs
            .iter()
            .map(|q| q.expect("quantile with samples"))
            .collect();
        assert!(
            qs.windows(2).all(|w| w[0] <= w[1]),
            "quantiles not ordered: {qs:?}"
        );
    }
    let procs = HashMap::new();
    let p: u64 = agg
        .processes(10.0, &procs)
        .iter()
        .map(|r| r.counts.queries)
        .sum();
    assert_eq!(p, c.queries, "per-process rows add up");
    let s: u64 = agg.servers(10.0).iter().map(|r| r.counts.queries).sum();
    assert_eq!(s, c.queries, "per-server rows add up");
    let with_q = client.iter().filter(|t| t.tx.question.is_some()).count() as u64;
    let q: u64 = agg.qtypes(10.0).iter().map(|r| r.counts.queries).sum();
    assert_eq!(q, with_q, "per-qtype rows add up");
    let names = agg.names(10.0);
    assert!(names.distinct <= MAX_NAMES as u64);
    let side = agg.server_side(10.0, &procs, 0);
    let servers = out.len() as u64 - c.queries;
    assert_eq!(side.counts.queries, servers);
    let l: u64 = side.listeners.iter().map(|r| r.counts.queries).sum();
    assert_eq!(l, servers, "listener rows add up");
}
