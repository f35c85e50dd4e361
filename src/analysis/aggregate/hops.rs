//! The hops of the node's own DNS servers: a process that answers queries (server side)
//! and sends its own (client side) is a forwarder or a recursor; its two views are the
//! client-facing hop and the upstream hop. Also the signs of a forwarding loop: upstream
//! queries aimed at its own listening address, and forwarded queries that come back.

use foldhash::{HashMap, HashSet};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use super::{process_name, Aggregator, Group};
use crate::analysis::dns::Question;
use crate::analysis::matcher::{Outcome, Role, Transaction};
use crate::capture::Protocol;
use crate::host::ProcessInfo;
use crate::snapshot::{LocalServer, LoopStats, UpstreamHop};

/// Queries remembered per window and direction for loop detection; beyond this, later
/// ones are not examined (a loop shows in its first queries). Reserved exactly when the
/// first one comes: grown by doubling, the two tables held 5 MiB at saturation (20 000
/// each, rounded up to 32 768), a quarter of dnsdoc's peak RSS.
const MAX_RECORDS: usize = 5_000;
/// Queries of processes not (yet) seen answering, remembered last-in: a forwarder's first
/// upstream query completes before its first answer names it a server, while a busy
/// client (never a server) would otherwise fill the table.
const MAX_UNSORTED: usize = 512;
/// Upstream addresses tracked per process.
const MAX_TARGETS: usize = 64;
/// Upstream addresses reported per local server.
const REPORTED_TARGETS: usize = 8;

/// A query a local process sent, and while it was in flight.
#[derive(Debug, Clone)]
struct Sent {
    tgid: u32,
    question: Question,
    start_ns: u64,
    /// Its answer's arrival; `u64::MAX` when it timed out or is pending.
    end_ns: u64,
}

/// A query a local server received, and from where.
#[derive(Debug, Clone)]
struct Received {
    tgid: u32,
    peer: SocketAddr,
    question: Question,
    ts_ns: u64,
}

/// What the hops need from a window's transactions.
#[derive(Debug, Clone, Default)]
pub(super) struct Hops {
    /// Queries sent by processes that answered queries in this window (the first ones).
    sent: Vec<(SocketAddr, Sent)>,
    /// The latest queries sent by processes that had not answered any yet.
    unsorted: VecDeque<(SocketAddr, Sent)>,
    /// Processes seen answering queries.
    servers: HashSet<u32>,
    received: Vec<Received>,
    /// Per process: upstream address -> queries sent to it.
    targets: HashMap<u32, HashMap<SocketAddr, u64>>,
}

impl Hops {
    pub(super) fn add(&mut self, tx: &Transaction, tgid: u32) {
        if tgid == 0 {
            return;
        }
        match tx.role {
            Role::Client => {
                let t = self.targets.entry(tgid).or_default();
                if let Some(n) = t.get_mut(&tx.server) {
                    *n += 1;
                } else if t.len() < MAX_TARGETS {
                    t.insert(tx.server, 1);
                }
                let Some(q) = &tx.question else { return };
                let server = self.servers.contains(&tgid);
                if server && self.sent.len() >= MAX_RECORDS {
                    return;
                }
                let end_ns = match tx.outcome {
                    Outcome::Answered { latency_ns, .. } => {
                        tx.query_ts_ns.saturating_add(latency_ns)
                    }
                    Outcome::TimedOut | Outcome::Pending => u64::MAX,
                };
                let sent = Sent {
                    tgid,
                    question: q.clone(),
                    start_ns: tx.query_ts_ns,
                    end_ns,
                };
                if server {
                    push_bounded(&mut self.sent, (tx.client, sent));
                } else {
                    if self.unsorted.len() == MAX_UNSORTED {
                        self.unsorted.pop_front();
                    }
                    self.unsorted.push_back((tx.client, sent));
                }
            }
            Role::Server => {
                self.servers.insert(tgid);
                if let (Some(q), true) = (&tx.question, self.received.len() < MAX_RECORDS) {
                    push_bounded(
                        &mut self.received,
                        Received {
                            tgid,
                            peer: tx.client,
                            question: q.clone(),
                            ts_ns: tx.query_ts_ns,
                        },
                    );
                }
            }
        }
    }

    /// Queries the local servers sent, wherever they were remembered.
    fn sent_by<'a>(
        &'a self,
        servers: &'a HashSet<u32>,
    ) -> impl Iterator<Item = &'a (SocketAddr, Sent)> {
        self.sent
            .iter()
            .chain(&self.unsorted)
            .filter(move |(_, s)| servers.contains(&s.tgid))
    }
}

/// Pushes onto a table of at most MAX_RECORDS, reserving all of it at the first push.
fn push_bounded<T>(table: &mut Vec<T>, item: T) {
    if table.capacity() == 0 {
        table.reserve_exact(MAX_RECORDS);
    }
    table.push(item);
}

/// What a server process is, from its name or its executable's.
pub fn server_kind(comm: &str, exe: Option<&str>) -> &'static str {
    for name in std::iter::once(comm).chain(exe) {
        match name {
            "coredns" => return "coredns",
            "node-cache" => return "node-cache",
            // comm is cut at 15 bytes.
            "systemd-resolve" | "systemd-resolved" => return "systemd-resolved",
            "dnsmasq" => return "dnsmasq",
            "unbound" => return "unbound",
            _ => {}
        }
    }
    "other"
}

impl Aggregator {
    /// Every local process that answered queries, with its client-facing hop (its
    /// listeners merged), its upstream hop (its own client-side queries) and loop signs.
    pub fn local_servers<S: std::hash::BuildHasher>(
        &self,
        duration_s: f64,
        procs: &std::collections::HashMap<u32, ProcessInfo, S>,
    ) -> Vec<LocalServer> {
        type Server = (Group, Vec<(SocketAddr, Protocol)>, String);
        let mut servers: BTreeMap<u32, Server> = BTreeMap::new();
        for ((addr, proto, pid), (g, thread_comm)) in self.merged_listeners() {
            if pid == 0 {
                continue;
            }
            let s = servers
                .entry(pid)
                .or_insert_with(|| (Group::default(), Vec::new(), thread_comm.clone()));
            s.0.merge(&g);
            s.1.push((addr, proto));
        }
        let returned = self.returned_queries(&servers.keys().copied().collect());
        let mut rows: Vec<LocalServer> = servers
            .into_iter()
            .map(|(pid, (g, mut listens, thread_comm))| {
                listens.sort();
                let info = procs.get(&pid);
                let comm = process_name(pid, info, &thread_comm);
                let targets = self.hops.targets.get(&pid);
                let self_queries = targets.map_or(0, |t| {
                    t.iter()
                        .filter(|(a, _)| listens.iter().any(|(l, _)| l == *a))
                        .map(|(_, n)| n)
                        .sum()
                });
                let mut busiest: Vec<(&SocketAddr, &u64)> =
                    targets.map(|t| t.iter().collect()).unwrap_or_default();
                busiest.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let upstream = match self.processes.get(&pid) {
                    Some((u, _)) => UpstreamHop {
                        counts: u.counts(duration_s),
                        latency: u.latency(),
                        servers: busiest
                            .iter()
                            .take(REPORTED_TARGETS)
                            .map(|(a, _)| a.to_string())
                            .collect(),
                    },
                    None => UpstreamHop::default(),
                };
                LocalServer {
                    pid,
                    kind: server_kind(&comm, info.and_then(|i| i.exe.as_deref())).to_string(),
                    comm,
                    listens: listens
                        .iter()
                        .map(|(a, p)| format!("{a}/{}", p.as_str()))
                        .collect(),
                    counts: g.counts(duration_s),
                    latency: g.latency(),
                    upstream,
                    loops: LoopStats {
                        self_queries,
                        returned: returned.get(&pid).copied().unwrap_or(0),
                    },
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

    /// Per server: queries it received from a local server's upstream socket while its
    /// own upstream query for the same question was in flight. A client re-sending its
    /// question does not count (it is no server's upstream socket), nor does the next
    /// server of a healthy chain (it receives the question before it forwards it).
    fn returned_queries(&self, servers: &HashSet<u32>) -> HashMap<u32, u64> {
        let upstream_sockets: HashSet<SocketAddr> = self
            .hops
            .sent_by(servers)
            .map(|(local, _)| *local)
            .collect();
        let mut in_flight: HashMap<(u32, &Question), Vec<(u64, u64)>> = HashMap::default();
        for (_, s) in self.hops.sent_by(servers) {
            in_flight
                .entry((s.tgid, &s.question))
                .or_default()
                .push((s.start_ns, s.end_ns));
        }
        let mut out: HashMap<u32, u64> = HashMap::default();
        for r in &self.hops.received {
            if !upstream_sockets.contains(&r.peer) {
                continue;
            }
            let forwarded = in_flight
                .get(&(r.tgid, &r.question))
                .is_some_and(|v| v.iter().any(|&(s, e)| s <= r.ts_ns && r.ts_ns <= e));
            if forwarded {
                *out.entry(r.tgid).or_default() += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
