//! DNS-over-TCP stream reassembly for one direction of one connection.
//!
//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766) prefixes every message with a
//! 2-byte big-endian length. Segment boundaries mean nothing: one segment may
//! carry several messages, one message may span several segments, and even
//! the length prefix may be split. This module turns captured segments back
//! into messages.
//!
//! Capture is lossy in two ways, and both must degrade gracefully rather than
//! stall the stream:
//! - each segment's payload may be cut (we get a prefix of it plus its wire
//!   length), leaving a *hole* of known size;
//! - segments may be retransmitted, overlap, arrive out of order, or be missed.
//!
//! Sequence numbers wrap at 2^32, so every comparison is done on the signed
//! 32-bit distance from the next expected sequence number (as TCP does).

/// How many out-of-order segments we hold while waiting for a gap to fill.
/// Real reordering is shallow; beyond this the missing data is presumed lost.
const MAX_OUT_OF_ORDER: usize = 16;

/// One reassembled DNS message from a TCP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpMessage {
    /// The message without the 2-byte prefix; may be shorter than `len` if
    /// capture cut part of it (then it holds the bytes before the first hole).
    pub bytes: Vec<u8>,
    /// The length the prefix announced.
    pub len: u16,
}

/// Counters describing how clean the stream was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Wire bytes received again after we had already seen them.
    pub retransmitted_bytes: u64,
    /// Times we lost message framing and had to resync at a segment start.
    pub desyncs: u64,
    /// Stream bytes skipped without being framed into any message: gaps that
    /// never filled, capture holes after framing was lost, and data that
    /// arrived while we were waiting to resync. Bytes cut from the tail of a
    /// message whose length we knew are *not* counted: the message is still
    /// emitted, and such cuts are routine with a capture snap length.
    pub lost_bytes: u64,
}

/// Reassembles the DNS messages of one direction of one TCP connection.
#[derive(Debug, Default)]
pub struct StreamReassembler {
    /// Sequence number of the next stream byte we expect; `None` until the
    /// first segment, which defines the stream start.
    next_seq: Option<u32>,
    framer: Framer,
    /// Segments that arrived ahead of `next_seq`, in arrival order.
    /// At most [`MAX_OUT_OF_ORDER`] entries between calls.
    pending: Vec<Segment>,
    stats: StreamStats,
}

/// A segment held back because it arrived before the data preceding it.
#[derive(Debug)]
struct Segment {
    seq: u32,
    wire_len: u32,
    captured: Vec<u8>,
}

/// Where we are in the length-prefixed message framing.
#[derive(Debug, Default)]
enum Framer {
    /// Expecting a length prefix: the next stream byte starts a message.
    #[default]
    Prefix,
    /// Got the first byte of a split length prefix.
    HalfPrefix(u8),
    /// Inside a message body.
    Body {
        len: u16,
        bytes: Vec<u8>,
        /// Body bytes still to come (captured or not).
        remaining: u16,
        /// A hole cut the body; later bytes are dropped so `bytes` stays a
        /// contiguous prefix of the message.
        cut: bool,
    },
    /// Framing is lost; everything is discarded until the next segment start.
    Desynced,
}

impl StreamReassembler {
    /// Creates a reassembler for a stream whose first pushed segment starts a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one segment; appends every message completed by it to `out`.
    ///
    /// `seq` is the sequence number of the first payload byte, `wire_len` the
    /// payload length on the wire, `captured` the prefix of the payload that
    /// capture kept (`captured.len() <= wire_len`; any excess is ignored).
    pub fn push(&mut self, seq: u32, wire_len: u32, captured: &[u8], out: &mut Vec<TcpMessage>) {
        if wire_len == 0 {
            return;
        }
        let captured = captured.get(..wire_len as usize).unwrap_or(captured);
        let next = *self.next_seq.get_or_insert(seq);

        if distance(next, seq) > 0 {
            self.hold(seq, wire_len, captured, out);
        } else {
            self.accept(seq, wire_len, captured, out);
            self.drain_pending(out);
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// True while segments wait behind a gap that never filled: closing now loses them.
    pub fn has_gap(&self) -> bool {
        !self.pending.is_empty()
    }

    /// True while a message is half-received: its length prefix (or part of it) came
    /// but not all of its body. At the end of a stream that means the prefix lied.
    pub fn unfinished(&self) -> bool {
        matches!(self.framer, Framer::HalfPrefix(_) | Framer::Body { .. })
    }

    /// Handles a segment that starts at or before `next_seq`.
    fn accept(&mut self, seq: u32, wire_len: u32, captured: &[u8], out: &mut Vec<TcpMessage>) {
        let Some(next) = self.next_seq else {
            return;
        };
        // Bytes before `next` were already seen: skip them, keep any new tail.
        let old = u32::try_from(-distance(next, seq).min(0))
            .unwrap_or(u32::MAX)
            .min(wire_len);
        self.stats.retransmitted_bytes += u64::from(old);
        let new_len = wire_len - old;
        if new_len == 0 {
            return;
        }
        let new_captured = captured.get(old as usize..).unwrap_or(&[]);
        let hole = new_len - new_captured.len() as u32;
        self.next_seq = Some(next.wrapping_add(new_len));

        if matches!(self.framer, Framer::Desynced) {
            if old > 0 {
                // The new data starts mid-segment, so we cannot assume a
                // message starts there; keep waiting for a real segment start.
                self.stats.lost_bytes += u64::from(new_len);
                return;
            }
            // DNS peers write whole messages, so a segment start is our best
            // guess at a message boundary.
            self.framer = Framer::Prefix;
        }
        self.feed(new_captured, out);
        self.feed_hole(hole, out);
    }

    /// Buffers a segment that starts after `next_seq`, giving up on the gap
    /// once too many segments are waiting behind it.
    fn hold(&mut self, seq: u32, wire_len: u32, captured: &[u8], out: &mut Vec<TcpMessage>) {
        if let Some(existing) = self.pending.iter_mut().find(|s| s.seq == seq) {
            // A retransmission of a segment we are already holding: keep the
            // longer copy, count the rest as seen twice.
            let dup = existing.wire_len.min(wire_len);
            self.stats.retransmitted_bytes += u64::from(dup);
            if wire_len > existing.wire_len {
                *existing = Segment {
                    seq,
                    wire_len,
                    captured: captured.to_vec(),
                };
            }
            return;
        }
        self.pending.push(Segment {
            seq,
            wire_len,
            captured: captured.to_vec(),
        });
        if self.pending.len() > MAX_OUT_OF_ORDER {
            self.skip_gap(out);
        }
    }

    /// Declares the data before the earliest pending segment lost and
    /// restarts framing there.
    fn skip_gap(&mut self, out: &mut Vec<TcpMessage>) {
        let (Some(next), Some(earliest)) = (self.next_seq, self.earliest_pending()) else {
            return;
        };
        let seq = self.pending[earliest].seq;
        self.stats.desyncs += 1;
        self.stats.lost_bytes += u64::from(seq.wrapping_sub(next));
        // A message in progress cannot be completed without the gap.
        self.framer = Framer::Desynced;
        self.next_seq = Some(seq);
        self.drain_pending(out);
    }

    /// Feeds every pending segment that has become contiguous, in stream order.
    fn drain_pending(&mut self, out: &mut Vec<TcpMessage>) {
        while let (Some(next), Some(i)) = (self.next_seq, self.earliest_pending()) {
            if distance(next, self.pending[i].seq) > 0 {
                break;
            }
            let seg = self.pending.swap_remove(i);
            self.accept(seg.seq, seg.wire_len, &seg.captured, out);
        }
    }

    /// Index of the pending segment closest to (or furthest behind) `next_seq`.
    fn earliest_pending(&self) -> Option<usize> {
        let next = self.next_seq?;
        self.pending
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| distance(next, s.seq))
            .map(|(i, _)| i)
    }

    /// Runs captured, contiguous stream bytes through the framer.
    fn feed(&mut self, mut data: &[u8], out: &mut Vec<TcpMessage>) {
        while !data.is_empty() {
            match &mut self.framer {
                Framer::Desynced => {
                    self.stats.lost_bytes += data.len() as u64;
                    return;
                }
                Framer::Prefix => match data {
                    [hi, lo, rest @ ..] => {
                        self.start_body(u16::from_be_bytes([*hi, *lo]), out);
                        data = rest;
                    }
                    [hi, ..] => {
                        self.framer = Framer::HalfPrefix(*hi);
                        return;
                    }
                    [] => return,
                },
                Framer::HalfPrefix(hi) => {
                    let hi = *hi;
                    let Some((lo, rest)) = data.split_first() else {
                        return;
                    };
                    self.start_body(u16::from_be_bytes([hi, *lo]), out);
                    data = rest;
                }
                Framer::Body {
                    bytes,
                    remaining,
                    cut,
                    ..
                } => {
                    let n = data.len().min(usize::from(*remaining));
                    if !*cut {
                        bytes.extend_from_slice(&data[..n]);
                    }
                    // n <= remaining, which is a u16.
                    *remaining -= n as u16;
                    data = &data[n..];
                    self.finish_body_if_done(out);
                }
            }
        }
    }

    /// Accounts for `hole` uncaptured stream bytes following the captured ones.
    fn feed_hole(&mut self, mut hole: u32, out: &mut Vec<TcpMessage>) {
        while hole > 0 {
            match &mut self.framer {
                Framer::Body { remaining, cut, .. } => {
                    let n = hole.min(u32::from(*remaining));
                    *cut = true;
                    // n <= remaining, which is a u16.
                    *remaining -= n as u16;
                    hole -= n;
                    self.finish_body_if_done(out);
                }
                Framer::Prefix | Framer::HalfPrefix(_) => {
                    // The hole hides a length prefix: we no longer know where
                    // messages start.
                    self.stats.desyncs += 1;
                    self.framer = Framer::Desynced;
                }
                Framer::Desynced => {
                    self.stats.lost_bytes += u64::from(hole);
                    return;
                }
            }
        }
    }

    /// Enters the body of a message of `len` bytes (a zero-length one is complete at once).
    fn start_body(&mut self, len: u16, out: &mut Vec<TcpMessage>) {
        self.framer = Framer::Body {
            len,
            bytes: Vec::new(),
            remaining: len,
            cut: false,
        };
        self.finish_body_if_done(out);
    }

    /// Emits the current message if its body is complete.
    fn finish_body_if_done(&mut self, out: &mut Vec<TcpMessage>) {
        if let Framer::Body {
            remaining: 0, len, ..
        } = self.framer
        {
            if let Framer::Body { bytes, .. } = std::mem::take(&mut self.framer) {
                out.push(TcpMessage { bytes, len });
            }
        }
    }
}

/// Signed distance from `from` to `to` in sequence space: positive when `to` is ahead.
fn distance(from: u32, to: u32) -> i64 {
    i64::from(to.wrapping_sub(from) as i32)
}

#[cfg(test)]
mod tests;
