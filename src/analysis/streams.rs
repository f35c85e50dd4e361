//! The open DNS-over-TCP streams: one reassembler per socket and direction, created on
//! the first segment and freed when the connection ends or goes idle.
//!
//! A FIN ends one direction; a RST ends both (the other side will not send a FIN for
//! us to see). Streams whose peer vanished without either are pruned once idle for
//! longer than `idle_ns`, so a remote peer cannot make the table grow without bound.

// foldhash: keys come from the network, so a seeded (flood-resistant) hasher, but far
// cheaper than SipHash, which took 12 % of dnsdoc's CPU at saturation.
use foldhash::{HashMap, HashMapExt};

use crate::analysis::tcp::{StreamReassembler, TcpMessage};
use crate::capture::event::{TCP_FIN, TCP_RST};
use crate::capture::{Direction, PacketEvent};

/// Streams tracked before the first idle sweep; later sweeps run when the table has
/// doubled since the previous one, so sweeping costs O(1) amortized per segment.
const PRUNE_AT_LEAST: usize = 1024;

#[derive(Debug)]
struct Stream {
    reassembler: StreamReassembler,
    last_seen_ns: u64,
}

/// What closed streams left behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounts {
    /// Framing lost (counted by the reassemblers, plus gaps still open at close).
    pub desyncs: u64,
    /// Streams that ended inside a message: the length prefix lied.
    pub unfinished: u64,
}

#[derive(Debug)]
pub struct TcpStreams {
    open: HashMap<(u64, Direction), Stream>,
    idle_ns: u64,
    next_prune_len: usize,
    closed: StreamCounts,
}

impl TcpStreams {
    pub fn new(idle_ns: u64) -> Self {
        TcpStreams {
            open: HashMap::new(),
            idle_ns,
            next_prune_len: PRUNE_AT_LEAST,
            closed: StreamCounts::default(),
        }
    }

    /// Feeds one TCP segment; appends the DNS messages it completed to `out`.
    pub fn on_segment(&mut self, ev: &PacketEvent, out: &mut Vec<TcpMessage>) {
        let key = (ev.cookie, ev.direction);
        let stream = self.open.entry(key).or_insert_with(|| Stream {
            reassembler: StreamReassembler::new(),
            last_seen_ns: ev.ts_ns,
        });
        stream.last_seen_ns = ev.ts_ns;
        stream
            .reassembler
            .push(ev.tcp_seq, ev.payload_len, &ev.payload, out);

        if ev.tcp_flags & TCP_RST != 0 {
            self.close((ev.cookie, Direction::Egress));
            self.close((ev.cookie, Direction::Ingress));
        } else if ev.tcp_flags & TCP_FIN != 0 {
            self.close(key);
        }
        if self.open.len() >= self.next_prune_len {
            self.prune(ev.ts_ns);
        }
    }

    fn close(&mut self, key: (u64, Direction)) {
        if let Some(s) = self.open.remove(&key) {
            Self::account(&mut self.closed, &s.reassembler);
        }
    }

    fn account(counts: &mut StreamCounts, r: &StreamReassembler) {
        counts.desyncs += r.stats().desyncs + u64::from(r.has_gap());
        counts.unfinished += u64::from(r.unfinished());
    }

    /// Closes streams idle for longer than `idle_ns` at `now_ns`.
    pub fn prune(&mut self, now_ns: u64) {
        let idle = self.idle_ns;
        let closed = &mut self.closed;
        self.open.retain(|_, s| {
            let keep = now_ns.saturating_sub(s.last_seen_ns) <= idle;
            if !keep {
                Self::account(closed, &s.reassembler);
            }
            keep
        });
        self.next_prune_len = (self.open.len() * 2).max(PRUNE_AT_LEAST);
    }

    /// Counts so far: closed streams plus the framing lost by the open ones.
    pub fn counts(&self) -> StreamCounts {
        let open: u64 = self
            .open
            .values()
            .map(|s| s.reassembler.stats().desyncs)
            .sum();
        StreamCounts {
            desyncs: self.closed.desyncs + open,
            ..self.closed
        }
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testutil::{framed, packet, wire};
    use crate::capture::Protocol;

    const SEC: u64 = 1_000_000_000;

    fn seg(
        ts_ms: u64,
        cookie: u64,
        dir: Direction,
        seq: u32,
        payload: Vec<u8>,
        flags: u8,
    ) -> PacketEvent {
        let mut ev = packet(ts_ms, cookie, dir, false, payload);
        ev.protocol = Protocol::Tcp;
        ev.tcp_seq = seq;
        ev.tcp_flags = flags;
        ev
    }

    #[test]
    fn rst_ends_both_directions() {
        let mut t = TcpStreams::new(10 * SEC);
        let mut out = Vec::new();
        // A partial message arrives, then our side resets the connection.
        t.on_segment(
            &seg(0, 1, Direction::Ingress, 0, vec![0xff, 0xff, 1, 2], 0),
            &mut out,
        );
        t.on_segment(
            &seg(1, 1, Direction::Egress, 0, Vec::new(), TCP_RST),
            &mut out,
        );
        assert!(t.is_empty(), "the peer's half-sent stream is freed too");
        assert_eq!(t.counts().unfinished, 1);
    }

    #[test]
    fn fin_ends_one_direction() {
        let mut t = TcpStreams::new(10 * SEC);
        let mut out = Vec::new();
        let q = framed(&wire(1, false, 0, false, "a.test", 1));
        t.on_segment(&seg(0, 1, Direction::Egress, 0, q, 0), &mut out);
        t.on_segment(
            &seg(0, 1, Direction::Ingress, 0, vec![0, 40, 1], 0),
            &mut out,
        );
        t.on_segment(
            &seg(1, 1, Direction::Egress, 100, Vec::new(), TCP_FIN),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(t.len(), 1, "the answer may still come after our FIN");
        assert_eq!(t.counts(), StreamCounts::default());
    }

    #[test]
    fn segments_stuck_behind_a_gap_count_as_lost_framing_at_close() {
        let mut t = TcpStreams::new(10 * SEC);
        let mut out = Vec::new();
        let m = framed(&wire(1, true, 0, false, "a.test", 1));
        t.on_segment(&seg(0, 7, Direction::Ingress, 0, m.clone(), 0), &mut out);
        // The next segment was lost by capture; a later one waits behind the gap.
        t.on_segment(&seg(1, 7, Direction::Ingress, 5000, m, 0), &mut out);
        t.on_segment(
            &seg(2, 7, Direction::Ingress, 9000, Vec::new(), TCP_FIN),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(t.counts().desyncs, 1);
    }

    #[test]
    fn vanished_peers_are_pruned_and_memory_stays_bounded() {
        let mut t = TcpStreams::new(SEC);
        let mut out = Vec::new();
        // 20 000 connections each leave a half message and never close.
        for c in 0..20_000u64 {
            let ts_ms = c; // one new connection per millisecond
            t.on_segment(
                &seg(ts_ms, c, Direction::Ingress, 0, vec![0xff, 0xff, 1], 0),
                &mut out,
            );
        }
        assert!(t.len() < 4 * PRUNE_AT_LEAST, "open streams: {}", t.len());
        assert!(t.counts().unfinished > 15_000);
    }
}
