//! Folds attributed transactions into the per-node, per-process, per-server, per-qtype
//! and per-name statistics of a [`Snapshot`](crate::snapshot::Snapshot).

// foldhash: keys come from the network, so a seeded (flood-resistant) hasher, but far
// cheaper than SipHash, which took 12 % of dnsdoc's CPU at saturation.
use foldhash::HashMap;
use std::net::SocketAddr;

use crate::analysis::dns::{qtype_name, Question};
use crate::analysis::domains::DomainTracker;
use crate::analysis::histogram::Histogram;
use crate::analysis::matcher::{Outcome, Role};
use crate::analysis::Attributed;
use crate::capture::Protocol;
use crate::host::ProcessInfo;
use crate::snapshot::{
    Counts, Latency, ListenerStats, NameStats, Names, ProcessStats, QtypeStats, Rcodes, ServerSide,
    ServerStats, Totals,
};
use crate::units::{rate, round3, round6};

/// Names tracked individually; queries for more names count only in the totals.
pub const MAX_NAMES: usize = 50_000;
/// Truncated answers remembered to notice a TCP retry.
const MAX_TRUNCATED: usize = 10_000;
/// Rows kept in each "top names" list.
pub const TOP_NAMES: usize = 20;

/// What happened to the queries of one group: names keep only this (they are many), and
/// so do the per-domain rows of `analysis::domains`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) queries: u64,
    responses: u64,
    timeouts: u64,
    rcodes: Rcodes,
    /// First and last query time (ns), for the rate while active.
    first_ns: Option<u64>,
    last_ns: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, outcome: &Outcome, ts_ns: u64) {
        self.queries += 1;
        let first = self.first_ns.get_or_insert(ts_ns);
        *first = (*first).min(ts_ns);
        self.last_ns = self.last_ns.max(ts_ns);
        match *outcome {
            Outcome::Answered { rcode, .. } => {
                self.responses += 1;
                self.rcodes.add(rcode);
            }
            Outcome::TimedOut => self.timeouts += 1,
            Outcome::Pending => {}
        }
    }

    pub(crate) fn counts(&self, duration_s: f64) -> Counts {
        let failures = self.timeouts + self.rcodes.failed();
        let completed = self.responses + self.timeouts;
        Counts {
            queries: self.queries,
            queries_per_s: round3(rate(self.queries, duration_s)),
            responses: self.responses,
            timeouts: self.timeouts,
            rcodes: self.rcodes.clone(),
            failures,
            failure_ratio: round6(ratio(failures, completed)),
            nxdomain_ratio: round6(ratio(self.rcodes.NXDOMAIN, self.responses)),
            active_s: round3(self.active_s(duration_s)),
            queries_per_active_s: round3(rate(self.queries, self.active_s(duration_s))),
        }
    }

    /// First to last query, at least 1 s (a lone query is no rate of thousands per
    /// second), at most the window.
    fn active_s(&self, duration_s: f64) -> f64 {
        let span = self
            .first_ns
            .map_or(0.0, |f| self.last_ns.saturating_sub(f) as f64 / 1e9);
        span.max(1.0).min(duration_s.max(span))
    }

    /// Adds `o`'s counts; the active span covers both.
    fn merge(&mut self, o: &Tally) {
        self.queries += o.queries;
        if let Some(f) = o.first_ns {
            self.first_ns = Some(self.first_ns.map_or(f, |x| x.min(f)));
        }
        self.last_ns = self.last_ns.max(o.last_ns);
        self.responses += o.responses;
        self.timeouts += o.timeouts;
        self.rcodes.merge(&o.rcodes);
    }

    /// What makes a name "failing" for the top list: NXDOMAIN counts here too.
    fn bad(&self) -> u64 {
        self.timeouts + self.rcodes.failed() + self.rcodes.NXDOMAIN
    }
}

/// A tally plus the latency of its answered queries.
#[derive(Debug, Clone, Default)]
struct Group {
    tally: Tally,
    latency: Histogram,
}

impl Group {
    fn add(&mut self, outcome: &Outcome, ts_ns: u64) {
        self.tally.add(outcome, ts_ns);
        if let Outcome::Answered { latency_ns, .. } = *outcome {
            self.latency.record(latency_ns);
        }
    }

    fn counts(&self, duration_s: f64) -> Counts {
        self.tally.counts(duration_s)
    }

    fn latency(&self) -> Latency {
        latency_summary(&self.latency)
    }

    fn merge(&mut self, o: &Group) {
        self.tally.merge(&o.tally);
        self.latency.merge(&o.latency);
    }
}

/// Accumulates transactions of one window.
#[derive(Debug, Default)]
pub struct Aggregator {
    client: Group,
    truncated: u64,
    truncated_retried_tcp: u64,
    udp: u64,
    tcp: u64,
    ipv4: u64,
    ipv6: u64,
    processes: HashMap<u32, (Group, String)>,
    servers: HashMap<(SocketAddr, Protocol), Group>,
    qtypes: HashMap<u16, Group>,
    names: HashMap<String, Tally>,
    untracked_name_queries: u64,
    /// Truncated UDP answers not yet retried over TCP, counted per (process, question):
    /// one process's workers may be truncated on the same question at once.
    truncated_pending: HashMap<(u32, Question), u32>,
    server_side: Group,
    listeners: HashMap<(SocketAddr, Protocol, u32), (Group, String)>,
    /// What the local servers' hops and loops need (`hops.rs`).
    hops: hops::Hops,
    /// The security features: per registered domain and suffix, per process.
    domains: DomainTracker,
}

impl Aggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// The aggregator of the next window (continuous runs): empty, except for the
    /// truncated answers not yet retried, whose TCP retry may come after this window
    /// closed and still counts as a retry in the next one.
    pub fn next_window(&mut self) -> Self {
        Aggregator {
            truncated_pending: std::mem::take(&mut self.truncated_pending),
            ..Self::default()
        }
    }

    pub fn add(&mut self, a: &Attributed) {
        let tx = &a.tx;
        let tgid = a.owner.as_ref().map_or(0, |o| o.tgid);
        let thread_comm = a.owner.as_ref().map_or("", |o| &*o.thread_comm);
        self.hops.add(tx, tgid);
        match tx.role {
            Role::Server => {
                self.server_side.add(&tx.outcome, tx.query_ts_ns);
                let (g, _) = self
                    .listeners
                    .entry((tx.server, tx.protocol, tgid))
                    .or_insert_with(|| (Group::default(), thread_comm.to_string()));
                g.add(&tx.outcome, tx.query_ts_ns);
            }
            Role::Client => {
                self.client.add(&tx.outcome, tx.query_ts_ns);
                match tx.protocol {
                    Protocol::Udp => self.udp += 1,
                    Protocol::Tcp => self.tcp += 1,
                }
                if tx.server.is_ipv4() {
                    self.ipv4 += 1;
                } else {
                    self.ipv6 += 1;
                }
                self.track_truncation(tgid, tx.protocol, &tx.question, &tx.outcome);
                let (g, _) = self
                    .processes
                    .entry(tgid)
                    .or_insert_with(|| (Group::default(), thread_comm.to_string()));
                g.add(&tx.outcome, tx.query_ts_ns);
                self.servers
                    .entry((tx.server, tx.protocol))
                    .or_default()
                    .add(&tx.outcome, tx.query_ts_ns);
                if let Some(q) = &tx.question {
                    self.qtypes
                        .entry(q.qtype)
                        .or_default()
                        .add(&tx.outcome, tx.query_ts_ns);
                    self.add_name(&q.name, &tx.outcome, tx.query_ts_ns);
                    self.domains.add(
                        tgid,
                        &q.name,
                        q.qtype,
                        &tx.outcome,
                        tx.query_ts_ns,
                        tx.response_bytes,
                    );
                }
            }
        }
    }

    fn track_truncation(
        &mut self,
        tgid: u32,
        protocol: Protocol,
        question: &Option<Question>,
        outcome: &Outcome,
    ) {
        let Some(q) = question else { return };
        if let Outcome::Answered {
            truncated: true, ..
        } = outcome
        {
            self.truncated += 1;
            if protocol == Protocol::Udp {
                let key = (tgid, q.clone());
                if let Some(n) = self.truncated_pending.get_mut(&key) {
                    *n += 1;
                } else if self.truncated_pending.len() < MAX_TRUNCATED {
                    self.truncated_pending.insert(key, 1);
                }
            }
        }
        if protocol == Protocol::Tcp {
            let key = (tgid, q.clone());
            if let Some(n) = self.truncated_pending.get_mut(&key) {
                self.truncated_retried_tcp += 1;
                *n -= 1;
                if *n == 0 {
                    self.truncated_pending.remove(&key);
                }
            }
        }
    }

    fn add_name(&mut self, name: &str, outcome: &Outcome, ts_ns: u64) {
        if let Some(g) = self.names.get_mut(name) {
            g.add(outcome, ts_ns);
        } else if self.names.len() < MAX_NAMES {
            self.names
                .entry(name.to_string())
                .or_default()
                .add(outcome, ts_ns);
        } else {
            self.untracked_name_queries += 1;
        }
    }

    /// Client-side totals; `retransmissions` comes from the matcher.
    pub fn totals(&self, duration_s: f64, retransmissions: u64) -> Totals {
        Totals {
            counts: self.client.counts(duration_s),
            truncated: self.truncated,
            truncated_retried_tcp: self.truncated_retried_tcp,
            retransmissions,
            udp_queries: self.udp,
            tcp_queries: self.tcp,
            ipv4_queries: self.ipv4,
            ipv6_queries: self.ipv6,
        }
    }

    pub fn latency(&self) -> Latency {
        self.client.latency()
    }

    /// Per-process rows, busiest first. `procs` holds names read from /proc.
    pub fn processes<S: std::hash::BuildHasher>(
        &self,
        duration_s: f64,
        procs: &std::collections::HashMap<u32, ProcessInfo, S>,
    ) -> Vec<ProcessStats> {
        let mut rows: Vec<ProcessStats> = self
            .processes
            .iter()
            .map(|(&pid, (g, thread_comm))| {
                let info = procs.get(&pid);
                ProcessStats {
                    pid,
                    comm: process_name(pid, info, thread_comm),
                    cgroup: info.and_then(|i| i.cgroup.clone()),
                    pod: None,
                    counts: g.counts(duration_s),
                    latency: g.latency(),
                    lookups: Default::default(),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.counts
                .queries
                .cmp(&a.counts.queries)
                .then(a.pid.cmp(&b.pid))
        });
        rows
    }

    /// Client-side counts and latency of groups of processes (a pod's), merged per
    /// `key(pid)`; processes without a key are left out. Also how many processes each
    /// group has. Unordered.
    pub fn process_groups<K: std::hash::Hash + Eq>(
        &self,
        duration_s: f64,
        key: impl Fn(u32) -> Option<K>,
    ) -> Vec<(K, Counts, Latency, u64)> {
        let mut groups: HashMap<K, (Group, u64)> = HashMap::default();
        for (&pid, (g, _)) in &self.processes {
            if let Some(k) = key(pid) {
                let (m, n) = groups.entry(k).or_default();
                m.merge(g);
                *n += 1;
            }
        }
        groups
            .into_iter()
            .map(|(k, (g, n))| (k, g.counts(duration_s), g.latency(), n))
            .collect()
    }

    pub fn servers(&self, duration_s: f64) -> Vec<ServerStats> {
        let mut rows: Vec<ServerStats> = self
            .servers
            .iter()
            .map(|((addr, proto), g)| ServerStats {
                server: addr.to_string(),
                protocol: proto.as_str().to_string(),
                counts: g.counts(duration_s),
                latency: g.latency(),
            })
            .collect();
        sort_busiest(&mut rows, |r| {
            (r.counts.queries, r.server.clone() + &r.protocol)
        });
        rows
    }

    pub fn qtypes(&self, duration_s: f64) -> Vec<QtypeStats> {
        let mut rows: Vec<QtypeStats> = self
            .qtypes
            .iter()
            .map(|(&t, g)| QtypeStats {
                qtype: qtype_name(t),
                counts: g.counts(duration_s),
                latency: g.latency(),
            })
            .collect();
        sort_busiest(&mut rows, |r| (r.counts.queries, r.qtype.clone()));
        rows
    }

    pub fn names(&self, duration_s: f64) -> Names {
        let row = |name: &String, g: &Tally| NameStats {
            name: name.clone(),
            counts: g.counts(duration_s),
        };
        let mut by_volume: Vec<(&String, &Tally)> = self.names.iter().collect();
        by_volume.sort_by(|a, b| b.1.queries.cmp(&a.1.queries).then(a.0.cmp(b.0)));
        let mut by_failures: Vec<(&String, &Tally)> =
            self.names.iter().filter(|(_, g)| g.bad() > 0).collect();
        by_failures.sort_by(|a, b| b.1.bad().cmp(&a.1.bad()).then(a.0.cmp(b.0)));
        Names {
            by_volume: by_volume
                .iter()
                .take(TOP_NAMES)
                .map(|(n, g)| row(n, g))
                .collect(),
            by_failures: by_failures
                .iter()
                .take(TOP_NAMES)
                .map(|(n, g)| row(n, g))
                .collect(),
            distinct: self.names.len() as u64,
            untracked_queries: self.untracked_name_queries,
        }
    }

    /// The security features; `process` names a pid: (command, `namespace/pod`).
    pub fn domains(
        &self,
        duration_s: f64,
        process: impl Fn(u32) -> (String, Option<String>),
    ) -> crate::snapshot::DomainSummary {
        self.domains.summary(duration_s, process)
    }

    /// Local servers' totals; `retransmissions` comes from the matcher.
    pub fn server_side<S: std::hash::BuildHasher>(
        &self,
        duration_s: f64,
        procs: &std::collections::HashMap<u32, ProcessInfo, S>,
        retransmissions: u64,
    ) -> ServerSide {
        let merged = self.merged_listeners();
        let mut listeners: Vec<ListenerStats> = merged
            .iter()
            .map(|((addr, proto, pid), (g, thread_comm))| ListenerStats {
                address: addr.to_string(),
                protocol: proto.as_str().to_string(),
                pid: *pid,
                comm: process_name(*pid, procs.get(pid), thread_comm),
                counts: g.counts(duration_s),
                latency: g.latency(),
            })
            .collect();
        sort_busiest(&mut listeners, |r| {
            (
                r.counts.queries,
                format!("{}{}{}", r.address, r.protocol, r.pid),
            )
        });
        ServerSide {
            counts: self.server_side.counts(duration_s),
            latency: self.server_side.latency(),
            retransmissions,
            listeners,
        }
    }
}

impl Aggregator {
    /// The listeners, a socket's rows without a known owner merged into its owner's: a
    /// listening socket opened before dnsdoc started answers its first queries with no
    /// known owner (pid 0) until one is learned. One socket, one row.
    fn merged_listeners(&self) -> HashMap<(SocketAddr, Protocol, u32), (Group, String)> {
        let mut merged = self.listeners.clone();
        let unknown: Vec<_> = merged.keys().filter(|k| k.2 == 0).copied().collect();
        for key in unknown {
            let owners: Vec<_> = merged
                .keys()
                .filter(|k| k.0 == key.0 && k.1 == key.1 && k.2 != 0)
                .copied()
                .collect();
            if let [owner] = owners.as_slice() {
                let (g, _) = merged.remove(&key).expect("listed above");
                merged.get_mut(owner).expect("listed above").0.merge(&g);
            }
        }
        merged
    }
}

fn process_name(pid: u32, info: Option<&ProcessInfo>, thread_comm: &str) -> String {
    match info {
        Some(i) if !i.comm.is_empty() => i.comm.clone(),
        _ if pid == 0 => "(unknown)".to_string(),
        _ if thread_comm.is_empty() => "(exited)".to_string(),
        _ => thread_comm.to_string(),
    }
}

/// Sorts by descending volume, then by a stable tie-breaker.
fn sort_busiest<T, K: Ord>(rows: &mut [T], key: impl Fn(&T) -> (u64, K)) {
    rows.sort_by(|a, b| {
        let (qa, ka) = key(a);
        let (qb, kb) = key(b);
        qb.cmp(&qa).then(ka.cmp(&kb))
    });
}

/// Summarises a histogram in milliseconds.
pub fn latency_summary(h: &Histogram) -> Latency {
    let ms = |ns: Option<u64>| ns.map(|v| round6(v as f64 / 1e6));
    Latency {
        samples: h.count(),
        p50_ms: ms(h.quantile(0.50)),
        p90_ms: ms(h.quantile(0.90)),
        p95_ms: ms(h.quantile(0.95)),
        p99_ms: ms(h.quantile(0.99)),
        p999_ms: ms(h.quantile(0.999)),
        max_ms: ms(h.max()),
        mean_ms: h.mean().map(|v| round6(v / 1e6)),
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

mod hops;
pub use hops::server_kind;

#[cfg(test)]
mod tests;
