//! Stage 2 and 3, analysis: packets -> DNS messages -> transactions -> aggregates.
//!
//! Pure logic, no I/O: everything here is testable without root or a kernel.

pub mod aggregate;
pub mod dns;
pub mod histogram;
pub mod matcher;
pub mod owners;
pub mod tcp;

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::capture::{event::TCP_FIN, event::TCP_RST, Direction, PacketEvent, Protocol};
use matcher::{Matcher, Message, Transaction};
use owners::Owners;
use tcp::StreamReassembler;

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
    pub parse_errors: u64,
    pub tcp_desyncs: u64,
}

/// Turns packet events into attributed transactions.
#[derive(Debug)]
pub struct Analyzer {
    matcher: Matcher,
    owners: Owners,
    /// One reassembler per TCP socket and direction.
    streams: HashMap<(u64, Direction), StreamReassembler>,
    stats: DecodeStats,
    /// Desyncs of streams already closed.
    closed_desyncs: u64,
    scratch: Vec<Transaction>,
}

impl Analyzer {
    pub fn new(cfg: &AnalysisConfig) -> Self {
        Analyzer {
            matcher: Matcher::new(cfg.timeout_ns, cfg.max_pending),
            // A socket idle for twice the timeout has nothing pending any more.
            owners: Owners::new(cfg.timeout_ns.saturating_mul(2)),
            streams: HashMap::new(),
            stats: DecodeStats::default(),
            closed_desyncs: 0,
            scratch: Vec::new(),
        }
    }

    /// Processes one packet. New owner tgids go to `new_tgids` (so the caller can look
    /// up process names while the process still exists); completed transactions to `out`.
    pub fn on_event(
        &mut self,
        ev: PacketEvent,
        new_tgids: &mut Vec<u32>,
        out: &mut Vec<Attributed>,
    ) {
        self.stats.events += 1;
        if let Some(tgid) = self.owners.learn(&ev) {
            new_tgids.push(tgid);
        }
        let local = SocketAddr::from(ev.local());
        let peer = SocketAddr::from(ev.peer());
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        match ev.protocol {
            Protocol::Udp => payloads.push(ev.payload),
            Protocol::Tcp => {
                let key = (ev.cookie, ev.direction);
                let stream = self.streams.entry(key).or_default();
                let mut msgs = Vec::new();
                stream.push(ev.tcp_seq, ev.payload_len, &ev.payload, &mut msgs);
                payloads.extend(msgs.into_iter().map(|m| m.bytes));
                if ev.tcp_flags & (TCP_FIN | TCP_RST) != 0 {
                    if let Some(s) = self.streams.remove(&key) {
                        self.closed_desyncs += s.stats().desyncs;
                    }
                }
            }
        }
        for bytes in payloads {
            match dns::parse_message(&bytes) {
                Ok(dns) => {
                    self.stats.messages += 1;
                    let msg = Message {
                        ts_ns: ev.ts_ns,
                        cookie: ev.cookie,
                        protocol: ev.protocol,
                        direction: ev.direction,
                        local,
                        peer,
                        dns,
                    };
                    self.matcher.on_message(msg, &mut self.scratch);
                }
                Err(_) => self.stats.parse_errors += 1,
            }
        }
        self.attribute(out);
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

    pub fn decode_stats(&self) -> DecodeStats {
        let open: u64 = self.streams.values().map(|s| s.stats().desyncs).sum();
        DecodeStats {
            tcp_desyncs: self.closed_desyncs + open,
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
