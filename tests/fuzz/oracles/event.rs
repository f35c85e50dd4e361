//! The ring-buffer record decoder's oracles: `decode` agrees with the bytes, and
//! encoding and decoding are inverse.

use dnsdoc::capture::event::{decode, encode, DecodeError, HEADER_LEN};
use dnsdoc::capture::{Direction, PacketEvent, Protocol};

use super::Rng;

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
