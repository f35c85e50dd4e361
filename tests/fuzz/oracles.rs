//! The properties every fuzz input must satisfy, shared by the `cargo test` mutation
//! fuzzer (tests/fuzz.rs) and the libFuzzer targets (fuzz/fuzz_targets/*.rs), so both
//! check exactly the same things. Every check panics on a violation: a panic is a bug,
//! whether it comes from dnsdoc itself or from an assertion here.
//!
//! Only `std` and `dnsdoc`: the libFuzzer crate includes this file by path.
#![allow(dead_code)]

use std::collections::HashMap;

use dnsdoc::analysis::aggregate::{Aggregator, MAX_NAMES};
use dnsdoc::analysis::dns::{parse_message, DnsMessage, ParseError};
use dnsdoc::analysis::matcher::{Outcome, Role};
use dnsdoc::analysis::tcp::{StreamReassembler, TcpMessage};
use dnsdoc::analysis::{AnalysisConfig, Analyzer, Attributed};
use dnsdoc::capture::event::{decode, encode, DecodeError, HEADER_LEN, TCP_FIN, TCP_RST};
use dnsdoc::capture::{Direction, PacketEvent, Protocol};

// ---------------------------------------------------------------------------------------
// Randomness: a tiny deterministic PRNG, so a failure reproduces from its seed alone.
// ---------------------------------------------------------------------------------------

/// xorshift64* (Vigna): fast, 64-bit state, good enough to drive mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Scramble so nearby seeds give unrelated streams; the state must not be 0.
        Rng(splitmix(seed) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n` > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform index into a non-empty slice length.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }

    /// A size that is usually small but sometimes large: segment and message lengths
    /// where the edge cases (0, 1, 2 bytes) matter most.
    pub fn size(&mut self, max: usize) -> usize {
        match self.below(4) {
            0 => self.index(4.min(max + 1)),
            1 => self.index(32.min(max + 1)),
            2 => self.index(300.min(max + 1)),
            _ => self.index(max + 1),
        }
    }
}

/// SplitMix64 finalizer: turns a counter or a hash into a well-mixed seed.
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a: derives the libFuzzer targets' segmentation choices from the input itself.
pub fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------
// DNS message parser
// ---------------------------------------------------------------------------------------

/// `parse_message` on arbitrary bytes: never panics, and what it returns is consistent
/// with the bytes.
///
/// - Errors: `TooShort` exactly when there is no 12-byte header.
/// - Header fields are the raw header bits (nothing is lost or reinterpreted).
/// - The question name is canonical presentation text: lower case, fully qualified,
///   printable ASCII only (everything else escaped), and it decodes back to a legal
///   wire name (labels 1..=63 bytes, at most 255 bytes in all).
/// - Re-encoding the header and question without compression parses to the same
///   message; every cut of that encoding inside the question is `QuestionCut`, never
///   `BadQuestion` (a capture cut is not a broken peer), and bytes after the question
///   never change the result.
pub fn check_dns(bytes: &[u8]) {
    let parsed = parse_message(bytes);
    let msg = match parsed {
        Err(ParseError::TooShort { len }) => {
            assert!(
                bytes.len() < 12,
                "TooShort for a {}-byte message",
                bytes.len()
            );
            assert_eq!(len, bytes.len());
            return;
        }
        Err(_) => {
            assert!(bytes.len() >= 12, "a short message must be TooShort");
            assert_ne!(qdcount(bytes), 0, "no question, yet a question error");
            return;
        }
        Ok(msg) => msg,
    };
    assert!(bytes.len() >= 12, "parsed a message without a full header");
    check_header_fields(bytes, &msg);

    // Whatever follows a parsed message never changes how it parses (trailing garbage,
    // or a record section that capture cut short), but for the OPT record's upper RCODE
    // bits, which only records after the question carry.
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0xc0, 0x0c, 0xff, 0x00, 0x3f]);
    assert_eq!(
        parse_message(&longer).map(header_rcode).as_ref(),
        Ok(&header_rcode(msg.clone())),
        "trailing bytes changed the parse"
    );
    let msg = header_rcode(msg);

    let Some(q) = &msg.question else {
        return;
    };
    let wire = presentation_to_wire(&q.name);
    let mut canon = bytes[..12].to_vec();
    canon.extend_from_slice(&wire);
    canon.extend_from_slice(&q.qtype.to_be_bytes());
    canon.extend_from_slice(&q.qclass.to_be_bytes());
    assert_eq!(
        parse_message(&canon).as_ref(),
        Ok(&msg),
        "the uncompressed re-encoding {canon:02x?} parses differently"
    );

    for cut in 12..canon.len() {
        assert_eq!(
            parse_message(&canon[..cut]),
            Err(ParseError::QuestionCut),
            "{cut}-byte cut of {canon:02x?}"
        );
    }
}

/// The message with only the header's 4 RCODE bits (no OPT extension).
fn header_rcode(mut msg: DnsMessage) -> DnsMessage {
    msg.rcode &= 0x0f;
    msg
}

fn qdcount(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[4], bytes[5]])
}

/// The parsed header fields are exactly the header bits.
fn check_header_fields(bytes: &[u8], msg: &DnsMessage) {
    assert_eq!(msg.id, u16::from_be_bytes([bytes[0], bytes[1]]), "id");
    assert_eq!(msg.is_response, bytes[2] & 0x80 != 0, "QR");
    assert_eq!(msg.opcode, (bytes[2] >> 3) & 0x0f, "OPCODE");
    assert_eq!(msg.truncated, bytes[2] & 0x02 != 0, "TC");
    assert_eq!(msg.rcode & 0x0f, u16::from(bytes[3] & 0x0f), "RCODE");
    assert!(
        msg.rcode >> 4 == 0 || u16::from_be_bytes([bytes[10], bytes[11]]) > 0,
        "an extended RCODE without an additional record to carry OPT"
    );
    assert!(msg.rcode < 1 << 12, "RCODE wider than 12 bits");
    assert_eq!(
        msg.answer_count,
        u16::from_be_bytes([bytes[6], bytes[7]]),
        "ANCOUNT"
    );
    assert_eq!(
        msg.question.is_some(),
        qdcount(bytes) > 0,
        "question iff QDCOUNT > 0"
    );
}

/// Decodes canonical presentation text back to wire format, asserting it is canonical:
/// the form `dns::parse_message` documents (lower case, trailing dot, `\.`-style and
/// `\DDD` escapes only where needed, legal label and name lengths).
pub fn presentation_to_wire(name: &str) -> Vec<u8> {
    assert!(name.ends_with('.'), "{name:?} is not fully qualified");
    assert!(
        name.bytes().all(|c| (0x21..=0x7e).contains(&c)),
        "{name:?} has unescaped non-printable bytes"
    );
    assert!(
        !name.bytes().any(|c| c.is_ascii_uppercase()),
        "{name:?} is not lower case"
    );
    if name == "." {
        return vec![0];
    }
    let mut wire = Vec::new();
    let mut label = Vec::new();
    let mut chars = name.bytes().peekable();
    while let Some(c) = chars.next() {
        match c {
            b'\\' => {
                let e = chars
                    .next()
                    .unwrap_or_else(|| panic!("{name:?}: dangling escape"));
                if e.is_ascii_digit() {
                    let d: Vec<u8> = [Some(e), chars.next(), chars.next()]
                        .into_iter()
                        .map(|d| d.filter(u8::is_ascii_digit).expect("\\DDD needs 3 digits"))
                        .collect();
                    let v = u32::from(d[0] - b'0') * 100
                        + u32::from(d[1] - b'0') * 10
                        + u32::from(d[2] - b'0');
                    let v = u8::try_from(v).unwrap_or_else(|_| panic!("{name:?}: \\DDD > 255"));
                    assert!(
                        !(0x21..=0x7e).contains(&v),
                        "{name:?}: printable byte {v} escaped as \\DDD"
                    );
                    label.push(v);
                } else {
                    assert!(
                        b".\\\"();@$".contains(&e),
                        "{name:?}: needless escape of {:?}",
                        char::from(e)
                    );
                    label.push(e);
                }
            }
            b'.' => {
                assert!(!label.is_empty(), "{name:?} has an empty label");
                assert!(
                    label.len() <= 63,
                    "{name:?} has a label of {} bytes",
                    label.len()
                );
                wire.push(label.len() as u8);
                wire.append(&mut label);
            }
            b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                panic!("{name:?}: special character {:?} unescaped", char::from(c))
            }
            _ => label.push(c),
        }
    }
    assert!(label.is_empty(), "{name:?} does not end with a dot");
    wire.push(0);
    assert!(
        wire.len() <= 255,
        "{name:?} is {} bytes on the wire",
        wire.len()
    );
    wire
}

// ---------------------------------------------------------------------------------------
// TCP stream reassembler
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Ring-buffer record decoder
// ---------------------------------------------------------------------------------------

/// `decode` on arbitrary bytes: never panics; errors and fields agree with the bytes;
/// a decoded event re-encodes to a record that decodes to the same event.
pub fn check_event_record(record: &[u8]) {
    let ev = match decode(record) {
        Err(DecodeError::Short(n)) => {
            assert!(record.len() < HEADER_LEN && n == record.len());
            return;
        }
        Err(DecodeError::PayloadLength { claimed, present }) => {
            assert_eq!(present, record.len() - HEADER_LEN);
            assert!(claimed > present);
            return;
        }
        Err(DecodeError::Family(f)) => {
            assert!(f != 4 && f != 6);
            return;
        }
        Err(DecodeError::Protocol(p)) => {
            assert!(p != 6 && p != 17);
            return;
        }
        Err(DecodeError::Direction(d)) => {
            assert!(d > 1);
            return;
        }
        Ok(ev) => ev,
    };
    assert!(record.len() >= HEADER_LEN);
    let captured = u32::from_ne_bytes(record[96..100].try_into().unwrap()) as usize;
    assert_eq!(ev.payload, &record[HEADER_LEN..HEADER_LEN + captured]);
    assert_eq!(ev.src.is_ipv4(), record[84] == 4);
    assert_eq!(ev.src.is_ipv4(), ev.dst.is_ipv4());
    assert!(ev.owner_comm.chars().count() <= 16);
    // The kernel's comm is at most 15 bytes plus a NUL; within that, re-encoding is exact.
    if ev.owner_comm.len() < 16 {
        assert_eq!(decode(&encode(&ev)), Ok(ev));
    }
}

/// A random event that the BPF program could have written: comm at most 15 bytes of
/// UTF-8 without NUL, both addresses of one family.
pub fn random_event(rng: &mut Rng) -> PacketEvent {
    let v6 = rng.chance(1, 2);
    let addr = |rng: &mut Rng| -> std::net::IpAddr {
        if v6 {
            std::net::Ipv6Addr::from(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()))
                .into()
        } else {
            std::net::Ipv4Addr::from(rng.next_u64() as u32).into()
        }
    };
    let comm_chars = ['d', 'i', 'g', '-', '0', ' ', 'é', '名', '\u{7f}'];
    let mut owner_comm = String::new();
    for _ in 0..rng.below(16) {
        let c = comm_chars[rng.index(comm_chars.len())];
        if owner_comm.len() + c.len_utf8() <= 15 {
            owner_comm.push(c);
        }
    }
    let payload_size = rng.size(1024);
    let payload = rng.bytes(payload_size);
    PacketEvent {
        ts_ns: rng.next_u64(),
        cookie: rng.next_u64(),
        cgroup_id: rng.next_u64(),
        owner_tgid: rng.next_u64() as u32,
        task_tgid: rng.next_u64() as u32,
        owner_comm,
        src: addr(rng),
        dst: addr(rng),
        sport: rng.next_u64() as u16,
        dport: rng.next_u64() as u16,
        protocol: if rng.chance(1, 2) {
            Protocol::Udp
        } else {
            Protocol::Tcp
        },
        direction: if rng.chance(1, 2) {
            Direction::Egress
        } else {
            Direction::Ingress
        },
        tcp_flags: rng.byte(),
        tcp_seq: rng.next_u64() as u32,
        payload_len: if rng.chance(1, 2) {
            payload.len() as u32
        } else {
            rng.next_u64() as u32
        },
        payload,
    }
}

/// `decode(encode(ev)) == ev`, also with the ring buffer's up-to-7 bytes of padding.
pub fn check_event_roundtrip(ev: &PacketEvent, padding: usize) {
    let mut rec = encode(ev);
    assert_eq!(rec.len(), HEADER_LEN + ev.payload.len());
    rec.extend(std::iter::repeat_n(0xa5, padding));
    assert_eq!(decode(&rec).as_ref(), Ok(ev));
}

/// Splits an analyzer session seed: records, each prefixed by a little-endian u16 length.
pub fn split_session(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let [lo, hi, tail @ ..] = rest {
        let n = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        out.push(&tail[..n]);
        rest = &tail[n..];
    }
    out
}

// ---------------------------------------------------------------------------------------
// The whole analysis pipeline
// ---------------------------------------------------------------------------------------

/// One step of an analyzer run.
#[derive(Debug, Clone)]
pub enum Step {
    Event(PacketEvent),
    /// `Analyzer::tick` at this time.
    Tick(u64),
}

/// What an analyzer run produced, for further checks by the caller.
#[derive(Debug)]
pub struct RunResult {
    pub out: Vec<Attributed>,
    pub stats: dnsdoc::analysis::DecodeStats,
    pub matcher: dnsdoc::analysis::matcher::MatcherStats,
}

/// Runs `steps` through a fresh [`Analyzer`], then `finish(finish_at)`, checking after
/// every step what can be stated from matcher.rs and mod.rs:
///
/// - accounting: every DNS message parsed is a query or a response; every query is in
///   flight, a retransmission, evicted, or exactly one transaction; every response
///   answered one of them or is unmatched. So at all times
///   `messages == in_flight + retransmissions + evicted + transactions + answered +
///   unmatched`, and after `finish` nothing is in flight;
/// - decoding: `messages + parse_errors` equals the payloads that reached the parser
///   plus the streams closed inside a message (a shadow reassembler per socket and
///   direction, closed on FIN/RST, says how many), and the desync count agrees with it;
/// - bounds: in flight never exceeds `max_pending`;
/// - when time never goes backwards (`monotonic`): an answer's latency is exactly
///   response time minus query time and below the timeout (an overdue query is expired
///   before a late answer is matched); a timeout is reported only once due; a query
///   reported pending at the end is younger than the timeout;
/// - the aggregator accepts every transaction and its totals add up.
pub fn check_analyzer(
    steps: &[Step],
    cfg: &AnalysisConfig,
    finish_at: u64,
    monotonic: bool,
) -> RunResult {
    let mut a = Analyzer::new(cfg);
    let mut out: Vec<Attributed> = Vec::new();
    let mut tgids = Vec::new();
    // Shadow TCP streams: (reassembler, last seen). Same lifecycle as the analyzer's:
    // FIN ends one direction, RST both, idle streams (2 x timeout) are swept whenever
    // the table has doubled since the last sweep (first at 1024 streams).
    let mut shadow: HashMap<(u64, Direction), (StreamReassembler, u64)> = HashMap::new();
    let mut next_sweep = 1024usize;
    let idle = cfg.timeout_ns.saturating_mul(2);
    let mut closed_desyncs = 0u64;
    let (mut payloads, mut events) = (0u64, 0u64);
    for step in steps {
        let before = out.len();
        let now = match step {
            Step::Event(ev) => {
                events += 1;
                match ev.protocol {
                    Protocol::Udp => payloads += 1,
                    Protocol::Tcp => {
                        let key = (ev.cookie, ev.direction);
                        let mut msgs = Vec::new();
                        let entry = shadow
                            .entry(key)
                            .or_insert_with(|| (StreamReassembler::new(), ev.ts_ns));
                        entry.1 = ev.ts_ns;
                        entry
                            .0
                            .push(ev.tcp_seq, ev.payload_len, &ev.payload, &mut msgs);
                        payloads += msgs.len() as u64;
                        // Closing a stream: a message cut short is one parse error;
                        // segments stuck behind a gap are one more lost framing.
                        let mut close = |r: StreamReassembler| {
                            closed_desyncs += r.stats().desyncs + u64::from(r.has_gap());
                            payloads += u64::from(r.unfinished());
                        };
                        let ends: Vec<(u64, Direction)> = if ev.tcp_flags & TCP_RST != 0 {
                            vec![
                                (ev.cookie, Direction::Egress),
                                (ev.cookie, Direction::Ingress),
                            ]
                        } else if ev.tcp_flags & TCP_FIN != 0 {
                            vec![key]
                        } else {
                            Vec::new()
                        };
                        for k in ends {
                            if let Some((r, _)) = shadow.remove(&k) {
                                close(r);
                            }
                        }
                        if shadow.len() >= next_sweep {
                            let now = ev.ts_ns;
                            let stale: Vec<_> = shadow
                                .iter()
                                .filter(|(_, (_, seen))| now.saturating_sub(*seen) > idle)
                                .map(|(k, _)| *k)
                                .collect();
                            for k in stale {
                                let (r, _) = shadow.remove(&k).unwrap();
                                close(r);
                            }
                            next_sweep = (shadow.len() * 2).max(1024);
                        }
                    }
                }
                a.on_event(ev, &mut tgids, &mut out);
                ev.ts_ns
            }
            Step::Tick(t) => {
                a.tick(*t, &mut out);
                *t
            }
        };
        check_new_transactions(
            &out[before..],
            cfg,
            now,
            monotonic,
            Step::is_tick(step),
            step,
        );
        let s = a.decode_stats();
        assert_eq!(s.events, events);
        assert_eq!(s.messages + s.parse_errors, payloads, "payloads parsed");
        let open: u64 = shadow.values().map(|(r, _)| r.stats().desyncs).sum();
        assert_eq!(s.tcp_desyncs, closed_desyncs + open, "desyncs");
        check_accounting(&a, &out);
        assert!(
            a.in_flight() <= cfg.max_pending.max(1),
            "in flight {} > max",
            a.in_flight()
        );
        for t in &tgids {
            assert_ne!(*t, 0, "tgid 0 reported as a new owner");
        }
    }
    let before = out.len();
    a.finish(finish_at, &mut out);
    for tx in &out[before..] {
        match tx.tx.outcome {
            Outcome::Pending if monotonic => assert!(
                finish_at.saturating_sub(tx.tx.query_ts_ns) < cfg.timeout_ns,
                "pending at the end but overdue: {tx:?}"
            ),
            Outcome::Answered { .. } => panic!("finish answered a query: {tx:?}"),
            _ => {}
        }
    }
    assert_eq!(a.in_flight(), 0, "queries still in flight after finish");
    check_accounting(&a, &out);
    let after = out.len();
    a.finish(finish_at, &mut out);
    assert_eq!(out.len(), after, "a second finish reported more");
    for tx in &out {
        if let Some(o) = &tx.owner {
            assert_ne!(o.tgid, 0, "owner with tgid 0");
        }
    }
    check_aggregate(&out);
    RunResult {
        stats: a.decode_stats(),
        matcher: a.matcher_stats(),
        out,
    }
}

impl Step {
    fn is_tick(&self) -> bool {
        matches!(self, Step::Tick(_))
    }
}

fn check_accounting(a: &Analyzer, out: &[Attributed]) {
    let m = a.matcher_stats();
    let answered = out
        .iter()
        .filter(|t| matches!(t.tx.outcome, Outcome::Answered { .. }))
        .count() as u64;
    let accounted = a.in_flight() as u64
        + m.retransmissions
        + m.server_retransmissions
        + m.evicted
        + out.len() as u64
        + answered
        + m.unmatched_responses;
    assert_eq!(
        a.decode_stats().messages,
        accounted,
        "messages vs in flight {} + {m:?} + {} transactions + {answered} answered",
        a.in_flight(),
        out.len()
    );
}

fn check_new_transactions(
    new: &[Attributed],
    cfg: &AnalysisConfig,
    now: u64,
    monotonic: bool,
    tick: bool,
    step: &Step,
) {
    for t in new {
        match t.tx.outcome {
            Outcome::Answered { latency_ns, .. } => {
                assert!(!tick, "a tick answered a query");
                if monotonic {
                    assert_eq!(latency_ns, now - t.tx.query_ts_ns, "latency of {t:?}");
                    assert!(
                        latency_ns < cfg.timeout_ns,
                        "answered after the timeout: {t:?}"
                    );
                }
            }
            Outcome::TimedOut => {
                if monotonic {
                    assert!(
                        now - t.tx.query_ts_ns >= cfg.timeout_ns,
                        "timed out early: {t:?} at {now}"
                    );
                }
            }
            Outcome::Pending => panic!("pending before finish: {t:?} after {step:?}"),
        }
    }
}

/// Folds the transactions into an [`Aggregator`] and checks that its tables add up.
pub fn check_aggregate(out: &[Attributed]) {
    let mut agg = Aggregator::new();
    for t in out {
        agg.add(t);
    }
    let client: Vec<&Attributed> = out.iter().filter(|t| t.tx.role == Role::Client).collect();
    let count = |v: &[&Attributed], f: fn(&Outcome) -> bool| {
        v.iter().filter(|t| f(&t.tx.outcome)).count() as u64
    };
    let totals = agg.totals(10.0, 0);
    let c = &totals.counts;
    assert_eq!(c.queries, client.len() as u64);
    assert_eq!(
        c.responses,
        count(&client, |o| matches!(o, Outcome::Answered { .. }))
    );
    assert_eq!(
        c.timeouts,
        count(&client, |o| matches!(o, Outcome::TimedOut))
    );
    assert_eq!(totals.udp_queries + totals.tcp_queries, c.queries);
    assert_eq!(totals.ipv4_queries + totals.ipv6_queries, c.queries);
    assert!(totals.truncated_retried_tcp <= totals.truncated);
    for r in [c.failure_ratio, c.nxdomain_ratio] {
        assert!((0.0..=1.0).contains(&r), "ratio {r}");
    }
    let l = agg.latency();
    let qs = [l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms];
    assert_eq!(l.samples, c.responses);
    if l.samples > 0 {
        let qs: Vec<f64> = qs
            .iter()
            .map(|q| q.expect("quantile with samples"))
            .collect();
        assert!(
            qs.windows(2).all(|w| w[0] <= w[1]),
            "quantiles not ordered: {qs:?}"
        );
    }
    let procs = HashMap::new();
    let p: u64 = agg
        .processes(10.0, &procs)
        .iter()
        .map(|r| r.counts.queries)
        .sum();
    assert_eq!(p, c.queries, "per-process rows add up");
    let s: u64 = agg.servers(10.0).iter().map(|r| r.counts.queries).sum();
    assert_eq!(s, c.queries, "per-server rows add up");
    let with_q = client.iter().filter(|t| t.tx.question.is_some()).count() as u64;
    let q: u64 = agg.qtypes(10.0).iter().map(|r| r.counts.queries).sum();
    assert_eq!(q, with_q, "per-qtype rows add up");
    let names = agg.names(10.0);
    assert!(names.distinct <= MAX_NAMES as u64);
    let side = agg.server_side(10.0, &procs, 0);
    let servers = out.len() as u64 - c.queries;
    assert_eq!(side.counts.queries, servers);
    let l: u64 = side.listeners.iter().map(|r| r.counts.queries).sum();
    assert_eq!(l, servers, "listener rows add up");
}

// ---------------------------------------------------------------------------------------
// Rule loader
// ---------------------------------------------------------------------------------------

/// Rule text (an operator's file): loading never panics, an error is a non-empty list
/// of diagnostics that format, a layer applies all or nothing (a rejected override
/// leaves the built-ins exactly as they were), and whatever loads evaluates against
/// real snapshots without panicking, each finding crossing a threshold of its rule.
pub fn check_rules(
    text: &str,
    builtin: &dnsdoc::rules::RuleSet,
    snapshots: &[dnsdoc::snapshot::Snapshot],
) {
    use dnsdoc::rules::{load::summarize, RuleSet};
    let mut fresh = RuleSet::empty();
    match fresh.load_str("fuzz.toml", text) {
        Ok(stats) => {
            assert_eq!(stats.added.len(), fresh.rules().len());
            for rule in fresh.rules() {
                assert!(!rule.id.is_empty(), "a rule without an id loaded");
            }
            check_evaluation(&fresh, snapshots);
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "an error without a diagnostic");
            assert!(fresh.rules().is_empty(), "a failed layer left rules behind");
            for d in &diags {
                assert!(!d.to_string().is_empty());
            }
            assert!(!summarize(&diags).is_empty());
        }
    }
    let mut set = builtin.clone();
    match set.load_str("override.toml", text) {
        Ok(_) => check_evaluation(&set, snapshots),
        Err(_) => assert_eq!(
            set.rules(),
            builtin.rules(),
            "a rejected layer changed the rules"
        ),
    }
}

fn check_evaluation(rules: &dnsdoc::rules::RuleSet, snapshots: &[dnsdoc::snapshot::Snapshot]) {
    for snapshot in snapshots {
        let e = dnsdoc::rules::evaluate_all(snapshot, rules);
        assert_eq!(e.checks.len(), rules.rules().len(), "one check per rule");
        for f in &e.findings {
            let rule = rules.get(&f.rule).expect("a finding names a loaded rule");
            assert!(rule.enabled, "finding from disabled rule {}", f.rule);
            assert!(
                rule.thresholds()
                    .iter()
                    .any(|(s, t)| *s == f.severity && t.to_bits() == f.threshold.to_bits()),
                "finding {f:?} crosses no threshold of its rule"
            );
        }
    }
}
