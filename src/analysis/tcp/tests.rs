//! Unit tests of DNS-over-TCP reassembly: framing across segments, holes, overlaps,
//! reordering and sequence wrap-around.

use super::*;

/// Frames messages with their 2-byte length prefixes.
fn framed(msgs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

fn msg(bytes: &[u8]) -> TcpMessage {
    TcpMessage {
        bytes: bytes.to_vec(),
        len: bytes.len() as u16,
    }
}

/// Pushes a fully captured segment.
fn push_all(r: &mut StreamReassembler, seq: u32, data: &[u8], out: &mut Vec<TcpMessage>) {
    r.push(seq, data.len() as u32, data, out);
}

#[test]
fn one_message_in_one_segment() {
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, 1000, &framed(&[b"hello"]), &mut out);
    assert_eq!(out, vec![msg(b"hello")]);
    assert_eq!(r.stats(), StreamStats::default());
}

#[test]
fn prefix_split_one_byte_each() {
    let data = framed(&[b"abc"]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, 0, &data[..1], &mut out);
    assert!(out.is_empty());
    push_all(&mut r, 1, &data[1..2], &mut out);
    assert!(out.is_empty());
    push_all(&mut r, 2, &data[2..], &mut out);
    assert_eq!(out, vec![msg(b"abc")]);
}

#[test]
fn message_split_across_three_segments() {
    let body: Vec<u8> = (0..=255).collect();
    let data = framed(&[&body]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, 50, &data[..100], &mut out);
    push_all(&mut r, 150, &data[100..200], &mut out);
    assert!(out.is_empty());
    push_all(&mut r, 250, &data[200..], &mut out);
    assert_eq!(out, vec![msg(&body)]);
}

#[test]
fn three_messages_in_one_segment() {
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, 7, &framed(&[b"one", b"two", b"three"]), &mut out);
    assert_eq!(out, vec![msg(b"one"), msg(b"two"), msg(b"three")]);
}

#[test]
fn last_message_continues_into_next_segment() {
    let data = framed(&[b"first", b"second"]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, 0, &data[..10], &mut out);
    assert_eq!(out, vec![msg(b"first")]);
    push_all(&mut r, 10, &data[10..], &mut out);
    assert_eq!(out, vec![msg(b"first"), msg(b"second")]);
}

#[test]
fn retransmitted_segment_is_not_duplicated() {
    let data = framed(&[b"query"]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, 500, &data, &mut out);
    push_all(&mut r, 500, &data, &mut out);
    assert_eq!(out, vec![msg(b"query")]);
    assert_eq!(r.stats().retransmitted_bytes, data.len() as u64);
    assert_eq!(r.stats().desyncs, 0);
}

#[test]
fn partial_overlap_uses_new_tail() {
    let data = framed(&[b"aaaa", b"bbbb"]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, 0, &data[..5], &mut out);
    // Retransmission repacketized: covers bytes 3..12.
    push_all(&mut r, 3, &data[3..], &mut out);
    assert_eq!(out, vec![msg(b"aaaa"), msg(b"bbbb")]);
    assert_eq!(r.stats().retransmitted_bytes, 2);
}

#[test]
fn out_of_order_segments_are_reordered() {
    let data = framed(&[b"xyz", b"uvw"]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, 0, &data[..2], &mut out);
    push_all(&mut r, 6, &data[6..], &mut out);
    push_all(&mut r, 4, &data[4..6], &mut out);
    assert!(out.is_empty());
    push_all(&mut r, 2, &data[2..4], &mut out);
    assert_eq!(out, vec![msg(b"xyz"), msg(b"uvw")]);
    assert_eq!(r.stats(), StreamStats::default());
}

#[test]
fn duplicate_out_of_order_segment_is_held_once() {
    let data = framed(&[b"12345678"]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, 0, &data[..4], &mut out);
    push_all(&mut r, 7, &data[7..], &mut out);
    push_all(&mut r, 7, &data[7..], &mut out);
    push_all(&mut r, 4, &data[4..7], &mut out);
    assert_eq!(out, vec![msg(b"12345678")]);
    assert_eq!(r.stats().retransmitted_bytes, 3);
}

#[test]
fn sequence_wraps_around() {
    let data = framed(&[b"wrap-me", b"again"]);
    let start = u32::MAX - 3;
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, start, &data[..5], &mut out);
    // Out of order across the wrap, then the filler.
    push_all(&mut r, start.wrapping_add(9), &data[9..], &mut out);
    push_all(&mut r, start.wrapping_add(5), &data[5..9], &mut out);
    // A retransmission from before the wrap is still recognized as old.
    push_all(&mut r, start, &data[..5], &mut out);
    assert_eq!(out, vec![msg(b"wrap-me"), msg(b"again")]);
    assert_eq!(r.stats().retransmitted_bytes, 5);
    assert_eq!(r.stats().desyncs, 0);
}

#[test]
fn capture_cut_inside_body_emits_prefix() {
    let body: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let data = framed(&[&body, b"next"]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    // One big segment with the message, cut at 1024 captured bytes.
    r.push(0, 3002, &data[..1024], &mut out);
    assert_eq!(
        out,
        vec![TcpMessage {
            bytes: body[..1022].to_vec(),
            len: 3000
        }]
    );
    // The following message frames normally.
    push_all(&mut r, 3002, &data[3002..], &mut out);
    assert_eq!(out[1], msg(b"next"));
    assert_eq!(r.stats(), StreamStats::default());
}

#[test]
fn cut_body_drops_bytes_after_the_hole() {
    let body: Vec<u8> = (0..40).collect();
    let data = framed(&[&body]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    r.push(0, 20, &data[..10], &mut out);
    push_all(&mut r, 20, &data[20..], &mut out);
    assert_eq!(
        out,
        vec![TcpMessage {
            bytes: body[..8].to_vec(),
            len: 40
        }]
    );
}

#[test]
fn cut_swallowing_next_prefix_desyncs_then_resyncs() {
    let big = vec![7u8; 2000];
    let data = framed(&[&big, b"lost-one"]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    // One segment carrying both messages, captured only up to 1024 bytes.
    r.push(0, data.len() as u32, &data[..1024], &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len, 2000);
    assert_eq!(r.stats().desyncs, 1);
    assert_eq!(r.stats().lost_bytes, 10);
    // Next segment starts a fresh message.
    push_all(&mut r, data.len() as u32, &framed(&[b"fresh"]), &mut out);
    assert_eq!(out[1], msg(b"fresh"));
    assert_eq!(r.stats().desyncs, 1);
}

#[test]
fn cut_inside_split_prefix_desyncs() {
    let data = framed(&[b"abc", b"defg"]);
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    // Captured up to the first byte of the second prefix, hole covers the rest.
    r.push(0, data.len() as u32, &data[..6], &mut out);
    assert_eq!(out, vec![msg(b"abc")]);
    assert_eq!(r.stats().desyncs, 1);
    push_all(&mut r, data.len() as u32, &framed(&[b"ok"]), &mut out);
    assert_eq!(out[1], msg(b"ok"));
}

#[test]
fn overlapping_tail_while_desynced_is_not_framed() {
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    // Prefix hidden by a hole right away.
    r.push(0, 10, &[], &mut out);
    assert_eq!(r.stats().desyncs, 1);
    // Overlapping retransmission with 4 new bytes starting mid-segment.
    push_all(&mut r, 6, &[0, 2, b'h', b'i', 0, 1, b'x', 9], &mut out);
    assert!(out.is_empty());
    assert_eq!(r.stats().lost_bytes, 10 + 4);
    // Next real segment resyncs.
    push_all(&mut r, 14, &framed(&[b"yo"]), &mut out);
    assert_eq!(out, vec![msg(b"yo")]);
}

#[test]
fn zero_length_message_is_emitted() {
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    push_all(&mut r, 0, &[0, 0, 0, 1, b'z'], &mut out);
    assert_eq!(
        out,
        vec![
            TcpMessage {
                bytes: vec![],
                len: 0
            },
            msg(b"z")
        ]
    );
}

#[test]
fn zero_length_push_does_nothing() {
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    r.push(123, 0, &[], &mut out);
    // Must not have fixed the stream start at 123.
    push_all(&mut r, 9, &framed(&[b"a"]), &mut out);
    assert_eq!(out, vec![msg(b"a")]);
    assert_eq!(r.stats(), StreamStats::default());
}

#[test]
fn too_many_out_of_order_segments_resync_at_earliest() {
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    // Start a message of 100 bytes, then never deliver bytes 10..20.
    r.push(0, 10, &[0, 100, 1, 2, 3, 4, 5, 6, 7, 8], &mut out);
    // 17 later segments, each a whole 3-byte message, delivered in reverse.
    let base = 20u32;
    for i in (0..=MAX_OUT_OF_ORDER as u32).rev() {
        push_all(&mut r, base + 3 * i, &framed(&[&[i as u8]]), &mut out);
    }
    assert_eq!(r.stats().desyncs, 1);
    assert_eq!(r.stats().lost_bytes, 10);
    let expected: Vec<TcpMessage> = (0..=MAX_OUT_OF_ORDER as u8).map(|i| msg(&[i])).collect();
    assert_eq!(out, expected);
    assert!(r.pending.is_empty());
}

#[test]
fn captured_longer_than_wire_is_clamped() {
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    let data = framed(&[b"ab", b"cd"]);
    // Contract says captured <= wire_len; extra bytes must be ignored, not trusted.
    r.push(0, 4, &data, &mut out);
    assert_eq!(out, vec![msg(b"ab")]);
    push_all(&mut r, 4, &data[4..], &mut out);
    assert_eq!(out, vec![msg(b"ab"), msg(b"cd")]);
}

#[test]
fn memory_stays_bounded_under_garbage() {
    let mut r = StreamReassembler::new();
    let mut out = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let buf: Vec<u8> = (0..2048).map(|i| (i * 31 % 251) as u8).collect();
    for _ in 0..5000 {
        let seq = next() as u32 % 100_000;
        let wire = (next() % 3000) as u32;
        let cap = (next() % 1100) as usize;
        r.push(seq, wire, &buf[..cap], &mut out);
        assert!(r.pending.len() <= MAX_OUT_OF_ORDER);
        if let Framer::Body { bytes, len, .. } = &r.framer {
            assert!(bytes.len() <= usize::from(*len));
        }
    }
    assert!(out.iter().all(|m| m.bytes.len() <= usize::from(m.len)));
}
