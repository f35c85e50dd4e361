//! Pairs DNS responses with their queries and turns them into [`Transaction`]s.
//!
//! A response matches a query only when the socket (cookie), the peer address, the DNS
//! id and the question are all equal -- never by a guess. Two roles, from the packet
//! direction: a query leaving a socket makes it a *client* (dig, glibc, a resolver
//! forwarding upstream); a query arriving at a socket makes it a *server* (dnsmasq,
//! CoreDNS). One query on loopback is thus one client and one server transaction, kept
//! apart so nothing is counted twice.

use crate::analysis::arrivals::{Arrivals, Ticket};

// foldhash: keys come from the network, so a seeded (flood-resistant) hasher, but far
// cheaper than SipHash, which took 12 % of dnsdoc's CPU at saturation.
use foldhash::{HashMap, HashMapExt};
use std::net::SocketAddr;

use smallvec::SmallVec;

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
    /// The message's length in bytes as captured (what an answer brought in).
    pub len: u32,
}

/// How a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered {
        rcode: u16,
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
    /// Length of the answer in bytes; 0 when unanswered.
    pub response_bytes: u32,
}

/// What the matcher counted besides transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatcherStats {
    /// Same query (socket, peer, id, question) sent again while pending, seen leaving a
    /// local client. On loopback the server's socket sees the same re-send arrive: that
    /// one is `server_retransmissions`, so client totals count each re-send once.
    pub retransmissions: u64,
    /// Re-sent queries arriving at a local server while the first is still unanswered.
    pub server_retransmissions: u64,
    pub unmatched_responses: u64,
    /// Pending queries dropped because the table was full, or because one socket, peer
    /// and id had more than `MAX_PER_KEY` (32) questions in flight.
    pub evicted: u64,
}

/// Most queries in flight under one key (socket, peer, id), each with its own question.
/// Beyond this the key's oldest query is evicted (counted), so that matching stays
/// O(1) per message whatever a peer sends.
const MAX_PER_KEY: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    role: Role,
    cookie: u64,
    peer: SocketAddr,
    id: u16,
}

/// Three integer writes instead of the derived field-by-field hash (the address enum,
/// its octets, flow info and scope id one by one): keys are hashed three times per
/// transaction. Equal keys hash equally; the rest only needs to spread well.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let ip = match self.peer.ip() {
            std::net::IpAddr::V4(a) => u128::from(a.to_bits()),
            std::net::IpAddr::V6(a) => a.to_bits() ^ (1 << 127),
        };
        state.write_u64(self.cookie);
        state.write_u128(ip);
        let role = u64::from(self.role == Role::Server);
        state.write_u64((role << 32) | (u64::from(self.peer.port()) << 16) | u64::from(self.id));
    }
}

#[derive(Debug, Clone)]
struct Pending {
    ts_ns: u64,
    /// Its place in `order`.
    ticket: Ticket,
    question: Option<Question>,
    protocol: Protocol,
    local: SocketAddr,
}

/// Tracks queries in flight. Memory is bounded by `capacity` pending queries.
#[derive(Debug)]
pub struct Matcher {
    timeout_ns: u64,
    capacity: usize,
    /// Usually one entry per key (kept inline: no allocation per query); several when
    /// one socket reuses an id for other names.
    pending: HashMap<Key, SmallVec<[Pending; 1]>>,
    len: usize,
    /// The same queries in the order they were sent, for expiry and eviction. Memory
    /// follows the in-flight count, not the query rate.
    order: Arrivals<Key>,
    stats: MatcherStats,
}

impl Matcher {
    pub fn new(timeout_ns: u64, capacity: usize) -> Self {
        Matcher {
            timeout_ns,
            capacity: capacity.max(1),
            pending: HashMap::new(),
            len: 0,
            order: Arrivals::default(),
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
            match key.role {
                Role::Client => self.stats.retransmissions += 1,
                Role::Server => self.stats.server_retransmissions += 1,
            }
            return;
        }
        if entries.len() >= MAX_PER_KEY {
            // Every lookup scans the key's entries, so an unbounded list made each query
            // cost O(pending): a flood of unanswered queries from one peer with one id
            // and random names (spoofable over UDP) took 219 us per query at 80 000
            // pending, blinding dnsdoc (found by tests/fuzz.rs). Real clients never
            // have more than a few questions in flight under one id: drop the oldest.
            let oldest = entries
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| (p.ts_ns, p.ticket.seq))
                .map(|(i, _)| i)
                .expect("entries is full, so not empty");
            let p = entries.swap_remove(oldest);
            self.order.release(p.ticket);
            self.len -= 1;
            self.stats.evicted += 1;
        }
        let ticket = self.order.push(m.ts_ns, key);
        entries.push(Pending {
            ts_ns: m.ts_ns,
            ticket,
            question: m.dns.question,
            protocol: m.protocol,
            local: m.local,
        });
        self.len += 1;
        while self.len > self.capacity && self.evict_oldest() {}
    }

    fn on_response(&mut self, key: Key, m: Message, out: &mut Vec<Transaction>) {
        // One hash lookup for both the match and the removal.
        let std::collections::hash_map::Entry::Occupied(mut slot) = self.pending.entry(key) else {
            self.stats.unmatched_responses += 1;
            return;
        };
        let entries = slot.get_mut();
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
            slot.remove();
        }
        self.len -= 1;
        self.order.release(p.ticket);
        let outcome = Outcome::Answered {
            rcode: m.dns.rcode,
            truncated: m.dns.truncated,
            latency_ns: m.ts_ns.saturating_sub(p.ts_ns),
        };
        out.push(transaction(key, p, outcome, m.len));
    }

    /// Turns every query older than the timeout at `now_ns` into a timeout.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<Transaction>) {
        let timeout_ns = self.timeout_ns;
        while let Some((ticket, key)) = self
            .order
            .pop_due(|ts| now_ns.saturating_sub(ts) >= timeout_ns)
        {
            if let Some(p) = self.take(key, ticket) {
                out.push(transaction(key, p, Outcome::TimedOut, 0));
            }
        }
    }

    /// Ends the window: expires what is due, then reports the rest as pending.
    pub fn finish(&mut self, now_ns: u64, out: &mut Vec<Transaction>) {
        self.expire(now_ns, out);
        while let Some((ticket, key)) = self.order.pop_oldest() {
            if let Some(p) = self.take(key, ticket) {
                out.push(transaction(key, p, Outcome::Pending, 0));
            }
        }
    }

    /// Removes pending query `ticket` of `key` (already taken out of `order`).
    fn take(&mut self, key: Key, ticket: Ticket) -> Option<Pending> {
        let entries = self.pending.get_mut(&key)?;
        let idx = entries.iter().position(|p| p.ticket == ticket)?;
        let p = entries.swap_remove(idx);
        if entries.is_empty() {
            self.pending.remove(&key);
        }
        self.len -= 1;
        Some(p)
    }

    fn evict_oldest(&mut self) -> bool {
        let Some((ticket, key)) = self.order.pop_oldest() else {
            return false;
        };
        if self.take(key, ticket).is_some() {
            self.stats.evicted += 1;
        }
        true
    }
}

fn transaction(key: Key, p: Pending, outcome: Outcome, response_bytes: u32) -> Transaction {
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
        response_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn q(name: &str) -> Option<Question> {
        Some(Question {
            name: name.into(),
            qtype: 1,
            qclass: 1,
        })
    }

    fn msg(
        ts_ms: u64,
        cookie: u64,
        dir: Direction,
        response: bool,
        id: u16,
        name: &str,
    ) -> Message {
        let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let (local, peer) = match (dir, response) {
            // client socket: egress query, ingress response
            (Direction::Egress, false) | (Direction::Ingress, true) => (client, server),
            _ => (server, client),
        };
        Message {
            ts_ns: ts_ms * MS,
            cookie,
            protocol: Protocol::Udp,
            direction: dir,
            local,
            peer,
            dns: DnsMessage {
                id,
                is_response: response,
                opcode: 0,
                rcode: if response { 3 } else { 0 },
                truncated: false,
                question: q(name),
                answer_count: 0,
            },
            len: 0,
        }
    }

    #[test]
    fn matches_by_socket_id_and_question() {
        let mut m = Matcher::new(5_000 * MS, 100);
        let mut out = Vec::new();
        m.on_message(msg(0, 1, Direction::Egress, false, 7, "a.test."), &mut out);
        // Same id on another socket, and another question with the same id: no match.
        m.on_message(msg(1, 2, Direction::Ingress, true, 7, "a.test."), &mut out);
        m.on_message(msg(2, 1, Direction::Ingress, true, 7, "b.test."), &mut out);
        assert!(out.is_empty());
        assert_eq!(m.stats().unmatched_responses, 2);
        m.on_message(msg(12, 1, Direction::Ingress, true, 7, "a.test."), &mut out);
        assert_eq!(out.len(), 1);
        let t = &out[0];
        assert_eq!(t.role, Role::Client);
        assert_eq!(t.server, "127.0.0.1:53".parse().unwrap());
        assert_eq!(
            t.outcome,
            Outcome::Answered {
                rcode: 3,
                truncated: false,
                latency_ns: 12 * MS
            }
        );
        assert_eq!(m.in_flight(), 0);
    }

    #[test]
    fn both_ends_on_loopback_are_two_roles() {
        let mut m = Matcher::new(5_000 * MS, 100);
        let mut out = Vec::new();
        m.on_message(msg(0, 1, Direction::Egress, false, 9, "x.test."), &mut out); // client sends
        m.on_message(msg(1, 2, Direction::Ingress, false, 9, "x.test."), &mut out); // server gets
        m.on_message(msg(3, 2, Direction::Egress, true, 9, "x.test."), &mut out); // server answers
        m.on_message(msg(4, 1, Direction::Ingress, true, 9, "x.test."), &mut out); // client gets
        assert_eq!(out.len(), 2);
        let server = out.iter().find(|t| t.role == Role::Server).unwrap();
        let client = out.iter().find(|t| t.role == Role::Client).unwrap();
        assert!(
            matches!(server.outcome, Outcome::Answered { latency_ns, .. } if latency_ns == 2 * MS)
        );
        assert!(
            matches!(client.outcome, Outcome::Answered { latency_ns, .. } if latency_ns == 4 * MS)
        );
        assert_eq!(server.server, client.server);
    }

    #[test]
    fn unanswered_queries_time_out_and_the_rest_are_pending() {
        let mut m = Matcher::new(1_000 * MS, 100);
        let mut out = Vec::new();
        m.on_message(
            msg(0, 1, Direction::Egress, false, 1, "slow.test."),
            &mut out,
        );
        m.on_message(
            msg(900, 1, Direction::Egress, false, 2, "late.test."),
            &mut out,
        );
        m.expire(999 * MS, &mut out);
        assert!(out.is_empty(), "not yet due");
        m.expire(1_000 * MS, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, Outcome::TimedOut);
        assert_eq!(out[0].question, q("slow.test."));
        // A response after the timeout is unmatched, not a second outcome.
        m.on_message(
            msg(1_200, 1, Direction::Ingress, true, 1, "slow.test."),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(m.stats().unmatched_responses, 1);
        m.finish(1_500 * MS, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].outcome, Outcome::Pending);
        assert_eq!(m.in_flight(), 0);
    }

    #[test]
    fn retransmission_is_counted_once_and_timed_from_the_first_send() {
        let mut m = Matcher::new(5_000 * MS, 100);
        let mut out = Vec::new();
        m.on_message(msg(0, 1, Direction::Egress, false, 5, "r.test."), &mut out);
        m.on_message(
            msg(1_000, 1, Direction::Egress, false, 5, "r.test."),
            &mut out,
        );
        m.on_message(
            msg(1_010, 1, Direction::Ingress, true, 5, "r.test."),
            &mut out,
        );
        assert_eq!(m.stats().retransmissions, 1);
        assert_eq!(m.stats().server_retransmissions, 0);
        assert_eq!(out.len(), 1);
        assert!(
            matches!(out[0].outcome, Outcome::Answered { latency_ns, .. } if latency_ns == 1_010 * MS)
        );
    }

    #[test]
    fn a_resend_seen_at_both_local_ends_is_one_client_retransmission() {
        // Client socket 1 sends twice; server socket 2 on the same host sees both arrive.
        let mut m = Matcher::new(5_000 * MS, 100);
        let mut out = Vec::new();
        for ts in [0, 1_000] {
            m.on_message(msg(ts, 1, Direction::Egress, false, 5, "r.test."), &mut out);
            m.on_message(
                msg(ts, 2, Direction::Ingress, false, 5, "r.test."),
                &mut out,
            );
        }
        assert_eq!(m.stats().retransmissions, 1);
        assert_eq!(m.stats().server_retransmissions, 1);
    }

    #[test]
    fn responses_without_question_match_only_when_unambiguous() {
        let mut m = Matcher::new(5_000 * MS, 100);
        let mut out = Vec::new();
        m.on_message(
            msg(0, 1, Direction::Egress, false, 3, "one.test."),
            &mut out,
        );
        let mut formerr = msg(1, 1, Direction::Ingress, true, 3, "one.test.");
        formerr.dns.question = None;
        formerr.dns.rcode = 1;
        m.on_message(formerr.clone(), &mut out);
        assert_eq!(out.len(), 1);
        // Two candidates with the same id: ambiguous, so unmatched.
        m.on_message(msg(2, 1, Direction::Egress, false, 4, "p.test."), &mut out);
        m.on_message(msg(2, 1, Direction::Egress, false, 4, "q.test."), &mut out);
        formerr.dns.id = 4;
        m.on_message(formerr, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(m.stats().unmatched_responses, 1);
    }

    #[test]
    fn memory_follows_in_flight_queries_not_throughput() {
        let mut m = Matcher::new(5_000 * MS, 100);
        let mut out = Vec::new();
        for i in 0..10_000u64 {
            let id = (i % 60_000) as u16;
            m.on_message(msg(i, 1, Direction::Egress, false, id, "t.test."), &mut out);
            m.on_message(msg(i, 1, Direction::Ingress, true, id, "t.test."), &mut out);
        }
        assert_eq!(out.len(), 10_000);
        assert_eq!((m.in_flight(), m.order.held(), m.pending.len()), (0, 0, 0));
    }

    /// Regression (tests/fuzz.rs): one peer flooding one id with distinct names made
    /// every query scan all of them (quadratic). Entries per key are now bounded, the
    /// oldest go first, and the newest still match.
    #[test]
    fn one_key_with_many_questions_stays_bounded() {
        let mut m = Matcher::new(5_000 * MS, 200_000);
        let mut out = Vec::new();
        let n = MAX_PER_KEY as u64 * 3;
        for i in 0..n {
            let name = format!("r{i}.test.");
            m.on_message(msg(i, 1, Direction::Ingress, false, 7, &name), &mut out);
            assert!(m.pending.values().all(|v| v.len() <= MAX_PER_KEY));
        }
        assert_eq!(m.in_flight(), MAX_PER_KEY);
        assert_eq!(m.order.held(), MAX_PER_KEY);
        assert_eq!(m.stats().evicted, n - MAX_PER_KEY as u64);
        // The oldest was evicted, so its answer is unmatched; the newest is answered.
        m.on_message(msg(n, 1, Direction::Egress, true, 7, "r0.test."), &mut out);
        let newest = format!("r{}.test.", n - 1);
        m.on_message(msg(n, 1, Direction::Egress, true, 7, &newest), &mut out);
        assert_eq!(m.stats().unmatched_responses, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].role, Role::Server);
        // Expiry still finds every remaining entry.
        m.finish(n + 10_000, &mut out);
        assert_eq!(out.len(), MAX_PER_KEY);
        assert_eq!((m.in_flight(), m.pending.len()), (0, 0));
    }

    #[test]
    fn capacity_evicts_oldest_and_counts_it() {
        let mut m = Matcher::new(5_000 * MS, 3);
        let mut out = Vec::new();
        for id in 0..5u16 {
            m.on_message(
                msg(id as u64, 1, Direction::Egress, false, id, "e.test."),
                &mut out,
            );
        }
        assert_eq!(m.in_flight(), 3);
        assert_eq!(m.stats().evicted, 2);
        // The evicted ids (0, 1) no longer match; 4 still does.
        m.on_message(msg(10, 1, Direction::Ingress, true, 0, "e.test."), &mut out);
        m.on_message(msg(10, 1, Direction::Ingress, true, 4, "e.test."), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(m.stats().unmatched_responses, 1);
    }
}
