//! Cumulative counters for `dnsdoc serve` and `watch --textfile`: what Prometheus
//! scrapes. Windows (snapshots) reset every interval; these never reset, so that
//! Prometheus's `rate()` and `increase()` work across scrapes and restarts.
//!
//! Memory is bounded whatever the traffic: every label has a cap on its distinct
//! values ([`Limits`]); values past the cap are counted under [`OTHER`] and the fold
//! itself is counted (`dnsdoc_series_folded_total{label}`), so a scan of random
//! servers or a fork bomb of short-lived processes cannot grow the exposition.

pub mod expose;
pub mod textfile;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::net::SocketAddr;

use crate::analysis::matcher::{Outcome, Role};
use crate::analysis::Attributed;
use crate::capture::Protocol;
use crate::host::ProcessInfo;
use crate::pipeline::SourceHealth;
use crate::snapshot::Snapshot;

/// The label value that stands for every value past a label's cap.
pub const OTHER: &str = "~other";

/// Upper bounds of `dnsdoc_query_duration_seconds`, in seconds: 0.5 ms to 10 s.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Caps on distinct label values, per label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Distinct values of each label (`server`, `qtype`, `rcode`, `process`) before the
    /// rest fold into `~other`.
    pub max_label_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_label_values: 64,
        }
    }
}

/// A set of label values that stops growing at its cap: `None` is `~other`.
#[derive(Debug, Clone)]
struct Capped<T: Hash + Eq> {
    seen: HashSet<T>,
    cap: usize,
}

impl<T: Hash + Eq + Copy> Capped<T> {
    fn new(cap: usize) -> Self {
        Capped {
            seen: HashSet::new(),
            cap,
        }
    }

    /// The value itself when it is (or can become) one of the tracked values.
    fn admit(&mut self, v: T) -> Option<T> {
        if self.seen.contains(&v) {
            return Some(v);
        }
        if self.seen.len() < self.cap {
            self.seen.insert(v);
            return Some(v);
        }
        None
    }
}

/// Latency histogram with Prometheus's cumulative-on-export buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is above 10 s.
    pub counts: [u64; DURATION_BUCKETS.len() + 1],
    pub sum_s: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        let i = DURATION_BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.counts[i] += 1;
        self.sum_s += seconds;
        self.count += 1;
    }

    /// What was observed since `earlier` (a previous copy of this histogram).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let mut d = self.clone();
        for (c, e) in d.counts.iter_mut().zip(earlier.counts) {
            *c = c.saturating_sub(e);
        }
        d.sum_s -= earlier.sum_s;
        d.count = d.count.saturating_sub(earlier.count);
        d
    }
}

/// Per-process counters (by process name, so restarts keep one series).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessCounters {
    pub queries: u64,
    pub failures: u64,
}

/// Key of `dnsdoc_queries_total`: server (None = `~other`), protocol, qtype.
pub type QueryKey = (Option<SocketAddr>, Protocol, Option<u16>);

/// Counts only a closed window knows, summed over the windows: a lookup is counted when
/// its chain of search-list tries has finished, a TCP retry when it was paired with
/// the truncated UDP answer before it, the node's counters when they were read at the
/// window's ends. Taken from each window's snapshot, so the exported alerts and
/// `doctor` count the same things the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowSums {
    /// Client answers with the TC bit (`totals.truncated`).
    pub truncated: u64,
    /// Of those, the ones the same process asked again over TCP.
    pub truncated_retried_tcp: u64,
    /// Finished lookups (`lookups.lookups`) and what they cost.
    pub lookups: u64,
    pub lookup_queries: u64,
    pub lookup_resends: u64,
    pub lookup_expansion_nxdomain: u64,
    pub lookup_race_suspects: u64,
    /// Time lost on names before the one each lookup ended on, summed, seconds.
    pub lookup_time_lost_s: f64,
    /// The node's UDP receive-buffer drops; None until a window could read them (never
    /// for a capture file, whose windows are not this node now).
    pub node_udp_rcvbuf_errors: Option<u64>,
    /// conntrack's failed inserts; None without conntrack.
    pub node_conntrack_insert_failed: Option<u64>,
}

impl WindowSums {
    /// Adds one closed window.
    pub fn add(&mut self, snap: &Snapshot) {
        self.truncated += snap.totals.truncated;
        self.truncated_retried_tcp += snap.totals.truncated_retried_tcp;
        let l = &snap.lookups.stats;
        self.lookups += l.lookups;
        self.lookup_queries += l.queries;
        self.lookup_resends += l.resends;
        self.lookup_expansion_nxdomain += l.expansion_nxdomain;
        self.lookup_race_suspects += l.race_suspects;
        self.lookup_time_lost_s += l.time_lost_ms / 1000.0;
        if let Some(n) = &snap.node_counters {
            *self.node_udp_rcvbuf_errors.get_or_insert(0) += n.udp_rcvbuf_errors;
            if let Some(c) = n.conntrack_insert_failed {
                *self.node_conntrack_insert_failed.get_or_insert(0) += c;
            }
        }
    }
}

/// Every cumulative counter dnsdoc exports.
#[derive(Debug, Clone)]
pub struct Series {
    servers: Capped<SocketAddr>,
    qtypes: Capped<u16>,
    rcodes: Capped<u16>,
    pub queries: HashMap<QueryKey, u64>,
    /// Answers by RCODE (None = `~other`).
    pub responses: HashMap<Option<u16>, u64>,
    pub timeouts: u64,
    /// Queries local DNS servers received that completed (answered or timed out).
    pub server_queries: u64,
    /// Of those, the ones they never answered (timed out).
    pub server_timeouts: u64,
    /// Client-side latency of answered queries.
    pub duration: Histogram,
    /// Per process name (`~other` past the cap).
    pub processes: BTreeMap<String, ProcessCounters>,
    max_processes: usize,
    /// Kernel and user-space losses by reason, as the source counted them.
    pub dropped: BTreeMap<&'static str, u64>,
    /// DNS packets the source saw.
    pub packets: u64,
    /// Observations whose label value was folded into `~other`, by label.
    pub folded: BTreeMap<&'static str, u64>,
    /// Entries dropped from bounded tables, by table.
    pub evictions: BTreeMap<&'static str, u64>,
    /// Windows closed so far.
    pub windows: u64,
    /// What the closed windows counted that single transactions cannot say.
    pub from_windows: WindowSums,
}

impl Series {
    pub fn new(limits: Limits) -> Self {
        let cap = limits.max_label_values.max(1);
        Series {
            servers: Capped::new(cap),
            qtypes: Capped::new(cap),
            rcodes: Capped::new(cap),
            queries: HashMap::new(),
            responses: HashMap::new(),
            timeouts: 0,
            server_queries: 0,
            server_timeouts: 0,
            duration: Histogram::default(),
            processes: BTreeMap::new(),
            max_processes: cap,
            dropped: BTreeMap::new(),
            packets: 0,
            folded: BTreeMap::new(),
            evictions: BTreeMap::new(),
            windows: 0,
            from_windows: WindowSums::default(),
        }
    }

    fn fold(&mut self, label: &'static str) {
        *self.folded.entry(label).or_default() += 1;
    }

    /// Counts one completed transaction: a client's in full, a local server's only in
    /// `server_queries` (its details are the snapshot's `server_side`). Pending queries
    /// are counted when they complete.
    pub fn add<S: std::hash::BuildHasher>(
        &mut self,
        a: &Attributed,
        procs: &std::collections::HashMap<u32, ProcessInfo, S>,
    ) {
        let tx = &a.tx;
        if tx.outcome == Outcome::Pending {
            return;
        }
        if tx.role == Role::Server {
            self.server_queries += 1;
            if tx.outcome == Outcome::TimedOut {
                self.server_timeouts += 1;
            }
            return;
        }
        let server = self.servers.admit(tx.server);
        if server.is_none() {
            self.fold("server");
        }
        let qtype = tx.question.as_ref().map(|q| q.qtype);
        let qtype = match qtype {
            Some(q) => {
                let kept = self.qtypes.admit(q);
                if kept.is_none() {
                    self.fold("qtype");
                }
                kept
            }
            None => None,
        };
        *self
            .queries
            .entry((server, tx.protocol, qtype))
            .or_default() += 1;
        let failed = match tx.outcome {
            Outcome::Answered {
                rcode, latency_ns, ..
            } => {
                let kept = self.rcodes.admit(rcode);
                if kept.is_none() {
                    self.fold("rcode");
                }
                *self.responses.entry(kept).or_default() += 1;
                self.duration.observe(latency_ns as f64 / 1e9);
                !matches!(rcode, 0 | 3)
            }
            Outcome::TimedOut => {
                self.timeouts += 1;
                true
            }
            Outcome::Pending => unreachable!("pending returned above"),
        };
        let tgid = a.owner.as_ref().map_or(0, |o| o.tgid);
        let name = match procs.get(&tgid) {
            Some(p) => p.comm.as_str(),
            None => a.owner.as_ref().map_or("(unknown)", |o| &o.thread_comm),
        };
        let key = if self.processes.contains_key(name) || self.processes.len() < self.max_processes
        {
            name
        } else {
            self.fold("process");
            OTHER
        };
        let counters = match self.processes.get_mut(key) {
            Some(c) => c,
            None => self.processes.entry(key.to_string()).or_default(),
        };
        counters.queries += 1;
        if failed {
            counters.failures += 1;
        }
    }

    /// Takes the source's cumulative capture counters and the matcher's evictions.
    pub fn set_capture(&mut self, health: &SourceHealth, pending_evicted: u64) {
        self.packets = health.packets;
        for (reason, n) in [
            ("ringbuf_full", health.ringbuf_full),
            ("load_error", health.load_error),
            ("decode_error", health.decode_error),
            ("pending_evicted", pending_evicted),
        ] {
            self.dropped.insert(reason, n);
        }
    }

    /// Adds what a closed window counted beyond its transactions (see [`WindowSums`]).
    pub fn add_window(&mut self, snap: &Snapshot) {
        self.from_windows.add(snap);
    }

    /// Counts entries dropped from a bounded table.
    pub fn evicted(&mut self, table: &'static str, n: u64) {
        *self.evictions.entry(table).or_default() += n;
    }

    /// How many distinct series the exposition holds (bounded by the caps).
    pub fn cardinality(&self) -> usize {
        self.queries.len() + self.responses.len() + self.processes.len() * 2
    }
}

/// The label value of a server, `~other` for the folded ones.
pub fn server_label(s: Option<SocketAddr>) -> String {
    s.map_or_else(|| OTHER.to_string(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::dns::Question;
    use crate::analysis::matcher::Transaction;
    use std::rc::Rc;

    fn tx(server_port: u16, qtype: u16, outcome: Outcome, tgid: u32) -> Attributed {
        Attributed {
            tx: Transaction {
                role: Role::Client,
                cookie: 1,
                protocol: Protocol::Udp,
                server: SocketAddr::from(([127, 0, 0, 1], server_port)),
                client: SocketAddr::from(([127, 0, 0, 1], 40000)),
                question: Some(Question {
                    name: "example.com".into(),
                    qtype,
                    qclass: 1,
                }),
                query_ts_ns: 0,
                outcome,
                response_bytes: 0,
            },
            owner: Some(crate::analysis::owners::Owner {
                tgid,
                thread_comm: Rc::from(format!("p{tgid}").as_str()),
            }),
        }
    }

    fn answered(rcode: u16, ms: u64) -> Outcome {
        Outcome::Answered {
            rcode,
            truncated: false,
            latency_ns: ms * 1_000_000,
        }
    }

    #[test]
    fn labels_past_the_cap_fold_into_other_and_are_counted() {
        let mut s = Series::new(Limits {
            max_label_values: 3,
        });
        let procs = std::collections::HashMap::new();
        for i in 0..100u16 {
            s.add(
                &tx(1000 + i, 1 + i, answered(i % 10, 1), u32::from(i)),
                &procs,
            );
        }
        let servers: HashSet<_> = s.queries.keys().map(|k| k.0).collect();
        assert_eq!(servers.len(), 4, "3 servers and ~other: {servers:?}");
        assert!(servers.contains(&None));
        assert_eq!(
            s.queries.values().sum::<u64>(),
            100,
            "nothing lost by folding"
        );
        assert_eq!(s.folded["server"], 97);
        assert_eq!(s.processes.len(), 4);
        assert_eq!(s.processes[OTHER].queries, 97);
        assert!(s.responses.len() <= 4);
        assert_eq!(s.responses.values().sum::<u64>(), 100);
    }

    #[test]
    fn outcomes_fill_responses_timeouts_and_the_histogram() {
        let mut s = Series::new(Limits::default());
        let procs = std::collections::HashMap::new();
        s.add(&tx(53, 1, answered(0, 2), 7), &procs);
        s.add(&tx(53, 1, answered(3, 20_000), 7), &procs);
        s.add(&tx(53, 1, Outcome::TimedOut, 7), &procs);
        s.add(&tx(53, 1, Outcome::Pending, 7), &procs);
        assert_eq!(
            s.queries.values().sum::<u64>(),
            3,
            "pending is not counted yet"
        );
        assert_eq!(s.timeouts, 1);
        assert_eq!(s.responses[&Some(3)], 1);
        assert_eq!(s.duration.count, 2);
        assert_eq!(s.duration.counts[2], 1, "2 ms lands in the 2.5 ms bucket");
        assert_eq!(
            s.duration.counts[DURATION_BUCKETS.len()],
            1,
            "20 s is above 10 s"
        );
        assert_eq!(
            s.processes["p7"].failures, 1,
            "a timeout fails, NXDOMAIN does not"
        );
        let before = s.duration.clone();
        s.add(&tx(53, 1, answered(0, 2), 7), &procs);
        assert_eq!(s.duration.since(&before).count, 1);
    }

    #[test]
    fn a_local_servers_unanswered_queries_count_as_its_timeouts() {
        let mut s = Series::new(Limits::default());
        let procs = std::collections::HashMap::new();
        for outcome in [answered(0, 1), Outcome::TimedOut, Outcome::Pending] {
            let mut t = tx(53, 1, outcome, 9);
            t.tx.role = Role::Server;
            s.add(&t, &procs);
        }
        assert_eq!((s.server_queries, s.server_timeouts), (2, 1));
        assert_eq!(s.timeouts, 0, "the client side is apart");
    }

    #[test]
    fn windows_add_up_and_node_counters_stay_absent_until_read() {
        let mut s = Series::new(Limits::default());
        let mut w = Snapshot::default();
        w.totals.truncated = 3;
        w.totals.truncated_retried_tcp = 2;
        w.lookups.stats.lookups = 4;
        w.lookups.stats.queries = 9;
        w.lookups.stats.resends = 1;
        w.lookups.stats.race_suspects = 1;
        w.lookups.stats.time_lost_ms = 250.0;
        // A capture file's window: no node counters.
        s.add_window(&w);
        assert_eq!(s.from_windows.node_udp_rcvbuf_errors, None);
        w.node_counters = Some(crate::snapshot::NodeCounters {
            udp_rcvbuf_errors: 5,
            ..Default::default()
        });
        s.add_window(&w);
        let f = &s.from_windows;
        assert_eq!((f.truncated, f.truncated_retried_tcp), (6, 4));
        assert_eq!((f.lookups, f.lookup_queries, f.lookup_resends), (8, 18, 2));
        assert_eq!(f.lookup_race_suspects, 2);
        assert!((f.lookup_time_lost_s - 0.5).abs() < 1e-9, "{f:?}");
        assert_eq!(f.node_udp_rcvbuf_errors, Some(5));
        assert_eq!(f.node_conntrack_insert_failed, None, "no conntrack");
    }
}
