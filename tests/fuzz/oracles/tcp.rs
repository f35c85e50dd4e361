//! The TCP stream reassembler's oracles: in order, reordered, cut by the capture, with
//! lost segments, the messages are exactly those the stream frames into; garbage never
//! yields more messages than its bytes could frame.

use dnsdoc::analysis::tcp::{StreamReassembler, TcpMessage};

use super::Rng;

/// The messages a DNS-over-TCP byte stream frames into, by definition: 2-byte
/// big-endian length, then that many bytes; a trailing partial message is not one.
/// Also returns where each message's prefix starts and its body ends.
pub fn reference_frames(stream: &[u8]) -> Vec<(TcpMessage, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 <= stream.len() {
        let len = u16::from_be_bytes([stream[i], stream[i + 1]]);
        let end = i + 2 + usize::from(len);
        if end > stream.len() {
            break;
        }
        out.push((
            TcpMessage {
                bytes: stream[i + 2..end].to_vec(),
                len,
            },
            i,
            end,
        ));
        i = end;
    }
    out
}

/// A first sequence number: anywhere, but often just before the 2^32 wrap.
pub fn random_isn(rng: &mut Rng) -> u32 {
    match rng.below(3) {
        0 => u32::MAX - rng.below(3000) as u32,
        1 => rng.below(1000) as u32,
        _ => rng.next_u64() as u32,
    }
}

/// One push: sequence number, wire length, captured bytes.
pub type Push = (u32, u32, Vec<u8>);

/// Feeds pushes to a fresh reassembler, checking after each that nothing impossible came
/// out; returns the messages and the final stats.
pub fn run_pushes(pushes: &[Push]) -> (Vec<TcpMessage>, dnsdoc::analysis::tcp::StreamStats) {
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    let mut prev = r.stats();
    for (seq, wire, cap) in pushes {
        r.push(*seq, *wire, cap, &mut out);
        let s = r.stats();
        assert!(
            s.desyncs >= prev.desyncs
                && s.lost_bytes >= prev.lost_bytes
                && s.retransmitted_bytes >= prev.retransmitted_bytes,
            "stats went backwards: {prev:?} -> {s:?}"
        );
        prev = s;
    }
    for m in &out {
        assert!(
            m.bytes.len() <= usize::from(m.len),
            "message longer than its prefix says"
        );
    }
    (out, prev)
}

/// Differential, in order: `stream` split into random segments starting at a random
/// sequence number (often just before the wrap), delivered in order with exact and
/// repacketized retransmissions mixed in, frames into exactly the reference messages,
/// without desync or loss, and counts exactly the retransmitted bytes.
pub fn check_tcp_in_order(stream: &[u8], rng: &mut Rng) {
    let isn = random_isn(rng);
    let mut pushes = Vec::new();
    let mut delivered = 0usize;
    let mut old_bytes = 0u64;
    while delivered < stream.len() {
        let (a, b) = match rng.below(6) {
            // An old range again (a retransmission).
            0 if delivered > 0 => {
                let a = rng.index(delivered);
                (a, a + 1 + rng.index(delivered - a))
            }
            // Repacketized: old bytes followed by new ones.
            1 if delivered > 0 => {
                let a = rng.index(delivered);
                (
                    a,
                    delivered + 1 + rng.index((stream.len() - delivered).min(1500)),
                )
            }
            _ => (
                delivered,
                delivered + 1 + rng.size(1500).min(stream.len() - delivered - 1),
            ),
        };
        old_bytes += (delivered.min(b) - a.min(delivered)) as u64;
        delivered = delivered.max(b);
        pushes.push((
            isn.wrapping_add(a as u32),
            (b - a) as u32,
            stream[a..b].to_vec(),
        ));
    }
    let (out, stats) = run_pushes(&pushes);
    let expected: Vec<TcpMessage> = reference_frames(stream).into_iter().map(|f| f.0).collect();
    assert_eq!(
        out,
        expected,
        "in-order delivery of {} pushes",
        pushes.len()
    );
    assert_eq!((stats.desyncs, stats.lost_bytes), (0, 0));
    assert_eq!(stats.retransmitted_bytes, old_bytes);
}

/// Differential, reordered: segments covering `stream` (some overlapping) delivered in
/// shuffled windows small enough that the reassembler never holds more than its 16
/// out-of-order segments frame into exactly the reference messages, with no desync.
pub fn check_tcp_reordered(stream: &[u8], rng: &mut Rng) {
    let isn = random_isn(rng);
    let mut pushes = Vec::new();
    let mut start = 0usize;
    while start < stream.len() {
        // One window: a run of consecutive segments plus overlapping copies inside it.
        let mut window = Vec::new();
        let mut pos = start;
        let fresh = 1 + rng.index(10);
        while pos < stream.len() && window.len() < fresh {
            let end = pos + 1 + rng.size(600).min(stream.len() - pos - 1);
            window.push((pos, end));
            pos = end;
        }
        let extra = rng.index(16 - window.len() + 1).min(4);
        for _ in 0..extra {
            let a = start + rng.index(pos - start);
            let b = a + 1 + rng.index(pos - a);
            window.push((a, b));
        }
        // Fisher-Yates.
        for i in (1..window.len()).rev() {
            let j = rng.index(i + 1);
            window.swap(i, j);
        }
        if start == 0 {
            // The first segment captured defines where the stream starts, as in real
            // capture, where dnsdoc sees a connection from its first payload byte.
            let first = window
                .iter()
                .position(|w| w.0 == 0)
                .expect("a segment at 0");
            window.swap(0, first);
        }
        for (a, b) in window {
            pushes.push((
                isn.wrapping_add(a as u32),
                (b - a) as u32,
                stream[a..b].to_vec(),
            ));
        }
        start = pos;
    }
    let (out, stats) = run_pushes(&pushes);
    let expected: Vec<TcpMessage> = reference_frames(stream).into_iter().map(|f| f.0).collect();
    assert_eq!(
        out,
        expected,
        "reordered delivery of {} pushes",
        pushes.len()
    );
    assert_eq!((stats.desyncs, stats.lost_bytes), (0, 0));
}

/// Capture cuts: `stream` split into segments delivered in order, some of them cut
/// (captured < wire length, as the 1024-byte snap length does). Then:
/// - every message that ends before the first uncaptured byte comes out exactly, first;
/// - with no desync, every message comes out with the right length and its body is a
///   prefix of the real one, ending at its first uncaptured byte;
/// - at most one message per two stream bytes (each needs a 2-byte prefix).
pub fn check_tcp_cut(stream: &[u8], rng: &mut Rng) {
    let isn = random_isn(rng);
    let mut pushes = Vec::new();
    let mut missing = vec![false; stream.len()];
    let mut pos = 0usize;
    while pos < stream.len() {
        let end = pos + 1 + rng.size(1500).min(stream.len() - pos - 1);
        let keep = if rng.chance(1, 3) {
            rng.index(end - pos + 1)
        } else {
            end - pos
        };
        missing[pos + keep..end].iter_mut().for_each(|m| *m = true);
        pushes.push((
            isn.wrapping_add(pos as u32),
            (end - pos) as u32,
            stream[pos..pos + keep].to_vec(),
        ));
        pos = end;
    }
    let (out, stats) = run_pushes(&pushes);
    let first_hole = missing.iter().position(|&m| m).unwrap_or(stream.len());
    let reference = reference_frames(stream);
    let intact: Vec<&TcpMessage> = reference
        .iter()
        .take_while(|(_, _, end)| *end <= first_hole)
        .map(|(m, _, _)| m)
        .collect();
    assert!(
        out.len() >= intact.len(),
        "lost intact messages before the first cut"
    );
    for (got, want) in out.iter().zip(&intact) {
        assert_eq!(got, *want, "message before the first cut");
    }
    if stats.desyncs == 0 {
        let expected: Vec<TcpMessage> = reference
            .iter()
            .map(|(m, start, end)| {
                let body = start + 2;
                let cut = (body..*end).find(|&i| missing[i]).unwrap_or(*end);
                TcpMessage {
                    bytes: stream[body..cut].to_vec(),
                    len: m.len,
                }
            })
            .collect();
        assert_eq!(out, expected, "framing kept, bodies cut at their holes");
    }
    assert!(
        out.len() <= stream.len() / 2,
        "{} messages from {} bytes",
        out.len(),
        stream.len()
    );
}

/// Whole segments lost to capture: `stream` split at message boundaries (DNS peers
/// write whole messages), some segments never delivered, then 17 more whole-message
/// segments so that every gap is given up on. Every message of every delivered segment
/// comes out, exactly and in order; each gap is one desync and its bytes are counted
/// as lost.
pub fn check_tcp_lost_segments(stream: &[u8], rng: &mut Rng) {
    let mut stream = stream.to_vec();
    let frames = reference_frames(&stream);
    stream.truncate(frames.last().map_or(0, |f| f.2));
    // Trailing whole-message segments that flush the out-of-order buffer.
    let mut tail_frames = Vec::new();
    for i in 0..17u8 {
        let start = stream.len();
        stream.extend_from_slice(&[0, 1, i]);
        tail_frames.push((start, stream.len()));
    }
    // Segments: runs of 1..=3 whole messages.
    let mut bounds: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < frames.len() {
        let n = (1 + rng.index(3)).min(frames.len() - i);
        bounds.push((frames[i].1, frames[i + n - 1].2));
        i += n;
    }
    let lost: Vec<bool> = (0..bounds.len())
        .map(|k| k > 0 && rng.chance(1, 5))
        .collect();
    bounds.extend(tail_frames);
    let isn = random_isn(rng);
    let mut pushes = Vec::new();
    let mut expected = Vec::new();
    let (mut gaps, mut lost_bytes, mut in_gap) = (0u64, 0u64, false);
    for (k, &(a, b)) in bounds.iter().enumerate() {
        if lost.get(k).copied().unwrap_or(false) {
            gaps += u64::from(!in_gap);
            in_gap = true;
            lost_bytes += (b - a) as u64;
            continue;
        }
        in_gap = false;
        pushes.push((
            isn.wrapping_add(a as u32),
            (b - a) as u32,
            stream[a..b].to_vec(),
        ));
        if rng.chance(1, 10) {
            // An exact retransmission of the segment just sent.
            pushes.push(pushes[pushes.len() - 1].clone());
        }
        expected.extend(reference_frames(&stream[a..b]).into_iter().map(|f| f.0));
    }
    let (out, stats) = run_pushes(&pushes);
    assert_eq!(out, expected, "messages of the delivered segments");
    assert_eq!((stats.desyncs, stats.lost_bytes), (gaps, lost_bytes));
}

/// Arbitrary pushes (any sequence number, wire length and captured bytes, including
/// captured longer than the wire length, which the contract says is ignored): never a
/// panic, and never more messages than new stream bytes could frame.
pub fn check_tcp_garbage(pushes: &[Push]) {
    let (out, _) = run_pushes(pushes);
    let wire: u64 = pushes.iter().map(|p| u64::from(p.1)).sum();
    assert!(
        out.len() as u64 <= wire / 2,
        "{} messages from {wire} wire bytes",
        out.len()
    );
}

/// Random garbage pushes around a random sequence start, for [`check_tcp_garbage`].
pub fn random_pushes(rng: &mut Rng, data: &[u8], n: usize) -> Vec<Push> {
    let base = random_isn(rng);
    let mut next = base;
    (0..n)
        .map(|_| {
            let seq = match rng.below(5) {
                0 => rng.next_u64() as u32,
                1 => base.wrapping_add(rng.below(100_000) as u32),
                2 => next.wrapping_sub(rng.below(2000) as u32),
                _ => next,
            };
            let wire = match rng.below(8) {
                0 => 0,
                1 => u32::MAX - rng.below(4) as u32,
                2 => 65_536 + rng.below(100_000) as u32,
                _ => rng.size(3000) as u32,
            };
            let cap_len = match rng.below(4) {
                0 => rng.size(1200),
                _ => (wire as usize).min(1024),
            };
            let cap: Vec<u8> = if data.is_empty() || rng.chance(1, 4) {
                rng.bytes(cap_len)
            } else {
                let a = rng.index(data.len());
                data[a..(a + cap_len).min(data.len())].to_vec()
            };
            if rng.chance(3, 4) {
                next = seq.wrapping_add(wire);
            }
            (seq, wire, cap)
        })
        .collect()
}
