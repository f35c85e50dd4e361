//! Pairs DNS responses with their queries and turns them into [`Transaction`]s.
//!
//! A response matches a query only when the socket (cookie), the peer address, the DNS
//! id and the question are all equal -- never by a guess. Two roles, from the packet
//! direction: a query leaving a socket makes it a *client* (dig, glibc, a resolver
//! forwarding upstream); a query arriving at a socket makes it a *server* (dnsmasq,
//! CoreDNS). One query on loopback is thus one client and one server transaction, kept
//! apart so nothing is counted twice.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use crate::analysis::dns::{DnsMessage, Question};
use crate::capture::{Direction, Protocol};

/// Which end of the conversation the local socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

/// One DNS message with the packet facts the matcher needs.
#[derive(Debug, Clone)]
pub struct Message {
    pub ts_ns: u64,
    pub cookie: u64,
    pub protocol: Protocol,
    pub direction: Direction,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub dns: DnsMessage,
}

/// How a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered {
        rcode: u8,
        truncated: bool,
        latency_ns: u64,
    },
    /// No answer within the timeout.
    TimedOut,
    /// Still waiting, younger than the timeout, when the window closed.
    Pending,
}

/// A query and how it ended, seen from one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub role: Role,
    pub cookie: u64,
    pub protocol: Protocol,
    /// The DNS server: the peer for a client, the local address for a server.
    pub server: SocketAddr,
    /// The DNS client: the local address for a client, the peer for a server.
    pub client: SocketAddr,
    pub question: Option<Question>,
    pub query_ts_ns: u64,
    pub outcome: Outcome,
}

/// What the matcher counted besides transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatcherStats {
    /// Same query (socket, peer, id, question) sent again while pending.
    pub retransmissions: u64,
    pub unmatched_responses: u64,
    /// Pending queries dropped because the table was full.
    pub evicted: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    role: Role,
    cookie: u64,
    peer: SocketAddr,
    id: u16,
}

#[derive(Debug, Clone)]
struct Pending {
    ts_ns: u64,
    question: Option<Question>,
    protocol: Protocol,
    local: SocketAddr,
}

/// Tracks queries in flight. Memory is bounded by `capacity` pending queries.
#[derive(Debug)]
pub struct Matcher {
    timeout_ns: u64,
    capacity: usize,
    /// Usually one entry per key; several when one socket reuses an id for other names.
    pending: HashMap<Key, Vec<Pending>>,
    len: usize,
    /// Queries in arrival order, for expiry; entries already answered are skipped.
    order: VecDeque<(u64, Key)>,
    stats: MatcherStats,
}

impl Matcher {
    pub fn new(timeout_ns: u64, capacity: usize) -> Self {
        Matcher {
            timeout_ns,
            capacity: capacity.max(1),
            pending: HashMap::new(),
            len: 0,
            order: VecDeque::new(),
            stats: MatcherStats::default(),
        }
    }

    pub fn stats(&self) -> MatcherStats {
        self.stats
    }

    /// Queries in flight right now.
    pub fn in_flight(&self) -> usize {
        self.len
    }

    /// Feeds one message; completed transactions are appended to `out`.
    pub fn on_message(&mut self, m: Message, out: &mut Vec<Transaction>) {
        self.expire(m.ts_ns, out);
        let role = match (m.direction, m.dns.is_response) {
            (Direction::Egress, false) | (Direction::Ingress, true) => Role::Client,
            (Direction::Ingress, false) | (Direction::Egress, true) => Role::Server,
        };
        let key = Key {
            role,
            cookie: m.cookie,
            peer: m.peer,
            id: m.dns.id,
        };
        if m.dns.is_response {
            self.on_response(key, m, out);
        } else {
            self.on_query(key, m);
        }
    }

    fn on_query(&mut self, key: Key, m: Message) {
        let entries = self.pending.entry(key).or_default();
        if entries.iter().any(|p| p.question == m.dns.question) {
            self.stats.retransmissions += 1;
            return;
        }
        entries.push(Pending {
            ts_ns: m.ts_ns,
            question: m.dns.question,
            protocol: m.protocol,
            local: m.local,
        });
        self.len += 1;
        self.order.push_back((m.ts_ns, key));
        while self.len > self.capacity && self.evict_oldest() {}
    }

    fn on_response(&mut self, key: Key, m: Message, out: &mut Vec<Transaction>) {
        let Some(entries) = self.pending.get_mut(&key) else {
            self.stats.unmatched_responses += 1;
            return;
        };
        // A response without a question (some FORMERR replies) matches only when the
        // socket, peer and id leave exactly one candidate.
        let idx = match &m.dns.question {
            Some(q) => entries.iter().position(|p| p.question.as_ref() == Some(q)),
            None if entries.len() == 1 => Some(0),
            None => None,
        };
        let Some(idx) = idx else {
            self.stats.unmatched_responses += 1;
            return;
        };
        let p = entries.swap_remove(idx);
        if entries.is_empty() {
            self.pending.remove(&key);
        }
        self.len -= 1;
        let outcome = Outcome::Answered {
            rcode: m.dns.rcode,
            truncated: m.dns.truncated,
            latency_ns: m.ts_ns.saturating_sub(p.ts_ns),
        };
        out.push(transaction(key, p, outcome));
    }

    /// Turns every query older than the timeout at `now_ns` into a timeout.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<Transaction>) {
        while let Some(&(ts, key)) = self.order.front() {
            if now_ns.saturating_sub(ts) < self.timeout_ns {
                break;
            }
            self.order.pop_front();
            if let Some(p) = self.take(key, ts) {
                out.push(transaction(key, p, Outcome::TimedOut));
            }
        }
    }

    /// Ends the window: expires what is due, then reports the rest as pending.
    pub fn finish(&mut self, now_ns: u64, out: &mut Vec<Transaction>) {
        self.expire(now_ns, out);
        while let Some((ts, key)) = self.order.pop_front() {
            if let Some(p) = self.take(key, ts) {
                out.push(transaction(key, p, Outcome::Pending));
            }
        }
    }

    /// Removes the pending query `key` sent at `ts`, if it is still pending.
    fn take(&mut self, key: Key, ts: u64) -> Option<Pending> {
        let entries = self.pending.get_mut(&key)?;
        let idx = entries.iter().position(|p| p.ts_ns == ts)?;
        let p = entries.swap_remove(idx);
        if entries.is_empty() {
            self.pending.remove(&key);
        }
        self.len -= 1;
        Some(p)
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some((ts, key)) = self.order.pop_front() {
            if self.take(key, ts).is_some() {
                self.stats.evicted += 1;
                return true;
            }
        }
        false
    }
}

fn transaction(key: Key, p: Pending, outcome: Outcome) -> Transaction {
    let (server, client) = match key.role {
        Role::Client => (key.peer, p.local),
        Role::Server => (p.local, key.peer),
    };
    Transaction {
        role: key.role,
        cookie: key.cookie,
        protocol: p.protocol,
        server,
        client,
        question: p.question,
        query_ts_ns: p.ts_ns,
        outcome,
    }
}
