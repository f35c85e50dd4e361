//! Stage 2 and 3, analysis: packets -> DNS messages -> transactions -> aggregates.
//!
//! Pure logic, no I/O: everything here is testable without root or a kernel.

pub mod aggregate;
mod arrivals;
pub mod dns;
pub mod domains;
pub mod histogram;
pub mod lookup_stats;
pub mod lookups;
pub mod matcher;
pub mod owners;
pub mod streams;
pub mod tcp;
mod twins;

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::capture::{Direction, PacketEvent, Protocol};
use matcher::{Matcher, Message, Transaction};
use owners::Owners;
use streams::TcpStreams;
use tcp::TcpMessage;
use twins::Twins;

/// Settings of the analysis.
#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// A query without a response after this long is a timeout.
    pub timeout_ns: u64,
    /// Most queries tracked in flight at once; beyond, the oldest are evicted (counted).
    pub max_pending: usize,
}

/// A completed transaction with the process it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributed {
    pub tx: Transaction,
    /// The local process that owns the socket, when known.
    pub owner: Option<owners::Owner>,
}

/// Counters of the decoding steps (not transactions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub events: u64,
    pub messages: u64,
    /// DNS messages not captured whole (longer than capture takes, or a continuation
    /// record lost). One message seen leaving one watched socket and arriving at
    /// another counts once.
    pub payload_cut: u64,
    pub parse_errors: u64,
    pub tcp_desyncs: u64,
}

/// Turns packet events into attributed transactions.
#[derive(Debug)]
pub struct Analyzer {
    matcher: Matcher,
    owners: Owners,
    streams: TcpStreams,
    stats: DecodeStats,
    scratch: Vec<Transaction>,
    /// Reused buffer for the messages one TCP segment completes.
    tcp_messages: Vec<TcpMessage>,
    /// Names shared between messages (one allocation per distinct name).
    names: dns::NameCache,
    /// The last cut messages seen leaving a socket, so that the same message arriving
    /// at a watched socket is not counted again.
    recent_cuts: VecDeque<CutKey>,
    /// Parsed egress datagrams whose ingress copy is still to come (loopback).
    twins: Twins,
}

/// Identifies one message on the wire: both ends and the DNS id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CutKey {
    src: SocketAddr,
    dst: SocketAddr,
    id: u16,
}

/// Cut messages remembered for pairing egress with ingress (both happen within
/// microseconds on loopback, so a short memory suffices).
const RECENT_CUTS: usize = 256;

impl Analyzer {
    pub fn new(cfg: &AnalysisConfig) -> Self {
        Analyzer {
            matcher: Matcher::new(cfg.timeout_ns, cfg.max_pending),
            // A socket idle for twice the timeout has nothing pending any more.
            owners: Owners::new(cfg.timeout_ns.saturating_mul(2)),
            // A connection silent for twice the timeout has nothing left to match.
            streams: TcpStreams::new(cfg.timeout_ns.saturating_mul(2)),
            stats: DecodeStats::default(),
            scratch: Vec::new(),
            tcp_messages: Vec::new(),
            names: dns::NameCache::default(),
            recent_cuts: VecDeque::new(),
            twins: Twins::default(),
        }
    }

    /// Processes one packet. New owner tgids go to `new_tgids` (so the caller can look
    /// up process names while the process still exists); completed transactions to `out`.
    pub fn on_event(
        &mut self,
        ev: &PacketEvent,
        new_tgids: &mut Vec<u32>,
        out: &mut Vec<Attributed>,
    ) {
        self.stats.events += 1;
        if let Some(tgid) = self.owners.learn(ev) {
            new_tgids.push(tgid);
        }
        let local = SocketAddr::from(ev.local());
        let peer = SocketAddr::from(ev.peer());
        match ev.protocol {
            // One datagram, one message: parsed in place, nothing allocated.
            Protocol::Udp => {
                if ev.payload.len() < ev.payload_len as usize {
                    self.count_cut(ev, &ev.payload);
                }
                self.on_datagram(ev, local, peer);
            }
            Protocol::Tcp => {
                let mut messages = std::mem::take(&mut self.tcp_messages);
                self.streams.on_segment(ev, &mut messages);
                for m in messages.drain(..) {
                    if m.bytes.len() < usize::from(m.len) {
                        self.count_cut(ev, &m.bytes);
                    }
                    self.on_dns_bytes(&m.bytes, u32::from(m.len), ev, local, peer);
                }
                self.tcp_messages = messages;
            }
        }
        self.attribute(out);
    }

    /// One UDP datagram: its egress twin's parse when there is one (loopback), else
    /// parsed here (and remembered for its ingress twin).
    fn on_datagram(&mut self, ev: &PacketEvent, local: SocketAddr, peer: SocketAddr) {
        let (src, dst) = (
            SocketAddr::new(ev.src, ev.sport),
            SocketAddr::new(ev.dst, ev.dport),
        );
        // The whole datagram's length, even when the capture cut it.
        let len = ev.payload_len;
        if !twins::both_local(&src, &dst) {
            return self.on_dns_bytes(&ev.payload, len, ev, local, peer);
        }
        let dns = match ev.direction {
            Direction::Ingress => match self.twins.take(src, dst, &ev.payload) {
                Some(dns) => dns,
                None => return self.on_dns_bytes(&ev.payload, len, ev, local, peer),
            },
            Direction::Egress => match dns::parse_message_with(&ev.payload, &mut self.names) {
                Ok(dns) => {
                    self.twins.remember(src, dst, &ev.payload, &dns);
                    dns
                }
                Err(_) => return self.stats.parse_errors += 1,
            },
        };
        self.on_dns(dns, len, ev, local, peer);
    }

    /// Parses one DNS message of `ev`'s socket and hands it to the matcher.
    fn on_dns_bytes(
        &mut self,
        bytes: &[u8],
        len: u32,
        ev: &PacketEvent,
        local: SocketAddr,
        peer: SocketAddr,
    ) {
        match dns::parse_message_with(bytes, &mut self.names) {
            Ok(dns) => self.on_dns(dns, len, ev, local, peer),
            Err(_) => self.stats.parse_errors += 1,
        }
    }

    /// Hands one parsed message of `ev`'s socket (`len` bytes on the wire) to the matcher.
    fn on_dns(
        &mut self,
        dns: dns::DnsMessage,
        len: u32,
        ev: &PacketEvent,
        local: SocketAddr,
        peer: SocketAddr,
    ) {
        self.stats.messages += 1;
        let msg = Message {
            ts_ns: ev.ts_ns,
            cookie: ev.cookie,
            protocol: ev.protocol,
            direction: ev.direction,
            local,
            peer,
            dns,
            len,
        };
        self.matcher.on_message(msg, &mut self.scratch);
    }

    /// Counts a cut message once: on loopback the same packet is seen leaving the client
    /// (egress, first) and arriving at the server (ingress).
    fn count_cut(&mut self, ev: &PacketEvent, bytes: &[u8]) {
        let key = CutKey {
            src: SocketAddr::new(ev.src, ev.sport),
            dst: SocketAddr::new(ev.dst, ev.dport),
            id: bytes
                .get(..2)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]])),
        };
        if ev.direction == Direction::Ingress {
            if let Some(i) = self.recent_cuts.iter().position(|k| *k == key) {
                self.recent_cuts.remove(i);
                return;
            }
        } else {
            if self.recent_cuts.len() == RECENT_CUTS {
                self.recent_cuts.pop_front();
            }
            self.recent_cuts.push_back(key);
        }
        self.stats.payload_cut += 1;
    }

    /// Whether this event's socket has no known owner yet (see [`crate::sockets`]).
    pub fn owner_unknown(&self, ev: &PacketEvent) -> bool {
        self.owners.unknown(ev)
    }

    /// Records an owner found outside the events. Returns true when it was new.
    pub fn teach_owner(&mut self, cookie: u64, tgid: u32, now_ns: u64) -> bool {
        self.owners.teach(cookie, tgid, now_ns)
    }

    /// Advances the clock without an event (turns overdue queries into timeouts).
    pub fn tick(&mut self, now_ns: u64, out: &mut Vec<Attributed>) {
        self.matcher.expire(now_ns, &mut self.scratch);
        self.attribute(out);
    }

    /// Ends the window at `now_ns`: expires what is due and reports the rest as pending.
    pub fn finish(&mut self, now_ns: u64, out: &mut Vec<Attributed>) {
        self.matcher.finish(now_ns, &mut self.scratch);
        self.attribute(out);
    }

    fn attribute(&mut self, out: &mut Vec<Attributed>) {
        for tx in self.scratch.drain(..) {
            let owner = self.owners.get(tx.cookie).cloned();
            out.push(Attributed { tx, owner });
        }
    }

    /// Decoding counters. A TCP stream that ended inside a message (its length prefix
    /// lied) is a parse error.
    pub fn decode_stats(&self) -> DecodeStats {
        let tcp = self.streams.counts();
        DecodeStats {
            tcp_desyncs: tcp.desyncs,
            parse_errors: self.stats.parse_errors + tcp.unfinished,
            ..self.stats
        }
    }

    pub fn matcher_stats(&self) -> matcher::MatcherStats {
        self.matcher.stats()
    }

    pub fn in_flight(&self) -> usize {
        self.matcher.in_flight()
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Builders for DNS wire bytes and packet events, shared by the analysis tests.
    use crate::capture::{Direction, PacketEvent, Protocol};

    /// A DNS message with one question (QCLASS IN).
    pub fn wire(id: u16, response: bool, rcode: u8, tc: bool, name: &str, qtype: u16) -> Vec<u8> {
        let mut b = id.to_be_bytes().to_vec();
        let flags: u16 = (u16::from(response) << 15) | (u16::from(tc) << 9) | u16::from(rcode);
        b.extend_from_slice(&flags.to_be_bytes());
        b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.trim_end_matches('.').split('.') {
            b.push(label.len() as u8);
            b.extend_from_slice(label.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes());
        b
    }

    /// A packet on the socket `cookie`; client port 40000, server port 53.
    pub fn packet(
        ts_ms: u64,
        cookie: u64,
        dir: Direction,
        from_server: bool,
        payload: Vec<u8>,
    ) -> PacketEvent {
        let (sport, dport) = if from_server {
            (53, 40000)
        } else {
            (40000, 53)
        };
        PacketEvent {
            ts_ns: ts_ms * 1_000_000,
            cookie,
            cgroup_id: 0,
            owner_tgid: 0,
            task_tgid: 0,
            owner_comm: String::new(),
            src: "127.0.0.1".parse().unwrap(),
            dst: "127.0.0.1".parse().unwrap(),
            sport,
            dport,
            protocol: Protocol::Udp,
            direction: dir,
            tcp_flags: 0,
            tcp_seq: 0,
            payload_len: payload.len() as u32,
            payload,
        }
    }

    /// Prefixes a message with its 2-byte DNS-over-TCP length.
    pub fn framed(msg: &[u8]) -> Vec<u8> {
        let mut b = (msg.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(msg);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::analysis::matcher::{Outcome, Role};
    use crate::capture::event::TCP_FIN;
    use crate::capture::Direction;

    fn analyzer() -> Analyzer {
        Analyzer::new(&AnalysisConfig {
            timeout_ns: 5_000_000_000,
            max_pending: 1000,
        })
    }

    #[test]
    fn preexisting_server_socket_is_attributed_by_its_first_egress() {
        let mut a = analyzer();
        let (mut tgids, mut out) = (Vec::new(), Vec::new());
        // The query arrives on a socket with no recorded owner (softirq: no task).
        let q = packet(
            0,
            9,
            Direction::Ingress,
            false,
            wire(1, false, 0, false, "a.test", 1),
        );
        a.on_event(&q, &mut tgids, &mut out);
        assert!(tgids.is_empty());
        // The answer leaves from the server process: the egress task is its owner.
        let mut r = packet(
            1,
            9,
            Direction::Egress,
            true,
            wire(1, true, 0, false, "a.test", 1),
        );
        r.task_tgid = 777;
        r.owner_comm = "dnsmasq".into();
        a.on_event(&r, &mut tgids, &mut out);
        assert_eq!(tgids, vec![777]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tx.role, Role::Server);
        assert_eq!(out[0].owner.as_ref().unwrap().tgid, 777);
        assert_eq!(&*out[0].owner.as_ref().unwrap().thread_comm, "dnsmasq");
    }

    #[test]
    fn ingress_task_is_never_taken_as_owner() {
        let mut a = analyzer();
        let (mut tgids, mut out) = (Vec::new(), Vec::new());
        let mut q = packet(
            0,
            5,
            Direction::Ingress,
            false,
            wire(1, false, 0, false, "a.test", 1),
        );
        q.task_tgid = 4242; // whoever ran the softirq
        a.on_event(&q, &mut tgids, &mut out);
        assert!(tgids.is_empty());
    }

    #[test]
    fn tcp_stream_with_two_queries_and_a_split_answer() {
        let mut a = analyzer();
        let (mut tgids, mut out) = (Vec::new(), Vec::new());
        let q1 = framed(&wire(10, false, 0, false, "one.test", 1));
        let q2 = framed(&wire(11, false, 0, false, "two.test", 28));
        let mut seg = q1.clone();
        seg.extend_from_slice(&q2);
        let mut ev = packet(0, 3, Direction::Egress, false, seg);
        ev.protocol = Protocol::Tcp;
        ev.tcp_seq = 1000;
        ev.owner_tgid = 55;
        a.on_event(&ev, &mut tgids, &mut out);
        assert_eq!(a.decode_stats().messages, 2);

        // Both answers in one stream, cut inside the second length prefix.
        let mut answers = framed(&wire(11, true, 3, false, "two.test", 28));
        answers.extend_from_slice(&framed(&wire(10, true, 0, false, "one.test", 1)));
        let cut = framed(&wire(11, true, 3, false, "two.test", 28)).len() + 1;
        for (i, (seq_off, part)) in [(0, &answers[..cut]), (cut, &answers[cut..])]
            .into_iter()
            .enumerate()
        {
            let mut ev = packet(5 + i as u64, 3, Direction::Ingress, true, part.to_vec());
            ev.protocol = Protocol::Tcp;
            ev.tcp_seq = 5000 + seq_off as u32;
            a.on_event(&ev, &mut tgids, &mut out);
        }
        assert_eq!(out.len(), 2);
        let rcodes: Vec<_> = out
            .iter()
            .map(|t| match t.tx.outcome {
                Outcome::Answered { rcode, .. } => rcode,
                _ => 99,
            })
            .collect();
        assert_eq!(rcodes, vec![3, 0]);
        assert!(out.iter().all(|t| t.owner.as_ref().unwrap().tgid == 55));
        assert_eq!(a.decode_stats().parse_errors, 0);
    }

    #[test]
    fn tcp_stream_ending_inside_a_message_is_a_parse_error() {
        let mut a = analyzer();
        let (mut tgids, mut out) = (Vec::new(), Vec::new());
        let mut liar = 300u16.to_be_bytes().to_vec(); // announces 300 bytes
        liar.extend_from_slice(&wire(1, false, 0, false, "a.test", 1)); // sends ~24
        let mut ev = packet(0, 8, Direction::Ingress, false, liar);
        ev.protocol = Protocol::Tcp;
        a.on_event(&ev, &mut tgids, &mut out);
        assert_eq!(a.decode_stats().parse_errors, 0, "may still be coming");
        let mut fin = packet(1, 8, Direction::Ingress, false, Vec::new());
        fin.protocol = Protocol::Tcp;
        fin.tcp_flags = TCP_FIN;
        fin.tcp_seq = 26;
        a.on_event(&fin, &mut tgids, &mut out);
        assert_eq!(a.decode_stats().parse_errors, 1);
        assert_eq!(a.decode_stats().messages, 0);
    }

    #[test]
    fn garbage_is_a_parse_error_not_a_crash() {
        let mut a = analyzer();
        let (mut tgids, mut out) = (Vec::new(), Vec::new());
        a.on_event(
            &packet(0, 1, Direction::Egress, false, vec![1, 2, 3]),
            &mut tgids,
            &mut out,
        );
        let mut bad = wire(1, false, 0, false, "x.test", 1);
        bad[12] = 0xc0; // compression pointer to itself
        bad[13] = 12;
        a.on_event(
            &packet(0, 1, Direction::Egress, false, bad),
            &mut tgids,
            &mut out,
        );
        assert_eq!(a.decode_stats().parse_errors, 2);
        assert_eq!(a.decode_stats().events, 2);
        assert!(out.is_empty());
    }
}
