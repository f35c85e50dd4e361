//! Decoding of the ring-buffer records written by `bpf/capture.bpf.c`.
//!
//! The record is a `struct dns_event` (bpf/dnsdoc.h) followed by `captured_len` payload
//! bytes. We decode by offset instead of transmuting so that a short or corrupt record is
//! an error, never undefined behaviour.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Size of `struct dns_event` in bpf/dnsdoc.h.
pub const HEADER_LEN: usize = 104;
/// Mirrors DNSDOC_COMM_LEN.
const COMM_LEN: usize = 16;

/// Which way a packet went relative to the local socket that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Leaving a local socket.
    Egress,
    /// Arriving at a local socket.
    Ingress,
}

/// Transport protocol of a DNS packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Udp,
    Tcp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        }
    }
}

/// TCP FIN flag.
pub const TCP_FIN: u8 = 0x01;
/// TCP RST flag.
pub const TCP_RST: u8 = 0x04;

/// One DNS packet as seen by the kernel hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketEvent {
    /// CLOCK_MONOTONIC nanoseconds at the hook.
    pub ts_ns: u64,
    /// Socket cookie: identifies the local socket on both paths.
    pub cookie: u64,
    pub cgroup_id: u64,
    /// Owner recorded in socket storage (0 = unknown yet).
    pub owner_tgid: u32,
    /// Current task at the hook; only meaningful on egress.
    pub task_tgid: u32,
    pub owner_comm: String,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub protocol: Protocol,
    pub direction: Direction,
    pub tcp_flags: u8,
    pub tcp_seq: u32,
    /// Payload length on the wire; `payload.len()` may be smaller (capture cut).
    pub payload_len: u32,
    pub payload: Vec<u8>,
}

impl Default for PacketEvent {
    fn default() -> Self {
        PacketEvent {
            ts_ns: 0,
            cookie: 0,
            cgroup_id: 0,
            owner_tgid: 0,
            task_tgid: 0,
            owner_comm: String::new(),
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            sport: 0,
            dport: 0,
            protocol: Protocol::Udp,
            direction: Direction::Egress,
            tcp_flags: 0,
            tcp_seq: 0,
            payload_len: 0,
            payload: Vec::new(),
        }
    }
}

impl PacketEvent {
    /// The local end of the socket: destination on ingress, source on egress.
    pub fn local(&self) -> (IpAddr, u16) {
        match self.direction {
            Direction::Egress => (self.src, self.sport),
            Direction::Ingress => (self.dst, self.dport),
        }
    }

    /// The owner this event names: from socket storage, else (egress, on kernels that
    /// allow it) the sending task. Ingress runs in whoever ran the softirq: never that.
    /// 0 = none.
    pub fn named_owner(&self) -> u32 {
        if self.owner_tgid != 0 {
            self.owner_tgid
        } else if self.direction == Direction::Egress {
            self.task_tgid
        } else {
            0
        }
    }

    /// The remote end of the socket.
    pub fn peer(&self) -> (IpAddr, u16) {
        match self.direction {
            Direction::Egress => (self.dst, self.dport),
            Direction::Ingress => (self.src, self.sport),
        }
    }
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than the {HEADER_LEN}-byte header")]
    Short(usize),
    #[error("record says {claimed} payload bytes follow but {present} do")]
    PayloadLength { claimed: usize, present: usize },
    #[error("unknown address family {0}")]
    Family(u8),
    #[error("unknown protocol {0}")]
    Protocol(u8),
    #[error("unknown direction {0}")]
    Direction(u8),
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4-byte slice"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().expect("8-byte slice"))
}

fn addr(bytes: &[u8], family: u8) -> IpAddr {
    if family == 4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        let a: [u8; 16] = bytes[..16].try_into().expect("16-byte slice");
        IpAddr::V6(Ipv6Addr::from(a))
    }
}

/// Replaces `out` with the NUL-terminated name in `bytes`, reusing its allocation.
fn comm_into(bytes: &[u8], out: &mut String) {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    // A reused slot usually held the same socket's record: skip the UTF-8 check.
    if out.as_bytes() == &bytes[..end] {
        return;
    }
    out.clear();
    match std::str::from_utf8(&bytes[..end]) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(&bytes[..end])),
    }
}

/// Decodes one ring-buffer record (native byte order: it never leaves this machine).
pub fn decode(record: &[u8]) -> Result<PacketEvent, DecodeError> {
    let mut ev = PacketEvent::default();
    decode_into(record, &mut ev)?;
    Ok(ev)
}

/// Decodes one record into `ev`, reusing its payload and name buffers: at hundreds of
/// thousands of records a second, two allocations per record were a fifth of dnsdoc's
/// CPU. On error `ev` is left unspecified.
pub fn decode_into(record: &[u8], ev: &mut PacketEvent) -> Result<(), DecodeError> {
    // The ring buffer rounds records up to 8 bytes, so extra trailing bytes are fine.
    let (_, payload) = chunk_offset(record)?;
    let b = record;
    let family = b[84];
    if family != 4 && family != 6 {
        return Err(DecodeError::Family(family));
    }
    let protocol = match b[85] {
        17 => Protocol::Udp,
        6 => Protocol::Tcp,
        p => return Err(DecodeError::Protocol(p)),
    };
    let direction = match b[86] {
        0 => Direction::Egress,
        1 => Direction::Ingress,
        d => return Err(DecodeError::Direction(d)),
    };
    ev.ts_ns = u64_at(b, 0);
    ev.cookie = u64_at(b, 8);
    ev.cgroup_id = u64_at(b, 16);
    ev.owner_tgid = u32_at(b, 24);
    ev.task_tgid = u32_at(b, 28);
    comm_into(&b[32..32 + COMM_LEN], &mut ev.owner_comm);
    ev.src = addr(&b[48..64], family);
    ev.dst = addr(&b[64..80], family);
    ev.sport = u16_at(b, 80);
    ev.dport = u16_at(b, 82);
    ev.protocol = protocol;
    ev.direction = direction;
    ev.tcp_flags = b[87];
    ev.tcp_seq = u32_at(b, 88);
    ev.payload_len = u32_at(b, 92);
    ev.payload.clear();
    ev.payload.extend_from_slice(payload);
    Ok(())
}

/// Offset of the payload bytes a record carries (`chunk_off`; > 0: a continuation).
fn chunk_offset(record: &[u8]) -> Result<(usize, &[u8]), DecodeError> {
    if record.len() < HEADER_LEN {
        return Err(DecodeError::Short(record.len()));
    }
    let captured = u32_at(record, 96) as usize;
    let present = record.len() - HEADER_LEN;
    if captured > present {
        return Err(DecodeError::PayloadLength {
            claimed: captured,
            present,
        });
    }
    Ok((
        u32_at(record, 100) as usize,
        &record[HEADER_LEN..HEADER_LEN + captured],
    ))
}

/// Whether continuation records may still follow for `ev`: its bytes so far fill whole
/// records and stop short of both its wire length and the capture limit.
fn expects_more(ev: &PacketEvent) -> bool {
    let got = ev.payload.len();
    got > 0
        && got < ev.payload_len as usize
        && got % super::MAX_PAYLOAD == 0
        && got < super::MAX_PAYLOAD * super::MAX_CHUNKS
}

/// A payload buffer grown this large by one big packet is given back when its slot is
/// reused, so a burst of 64 KiB answers does not pin memory for the rest of the run.
const KEEP_PAYLOAD_CAPACITY: usize = 4096;

/// A batch of decoded events whose slots keep their buffers between batches, so a
/// steady stream of records allocates nothing. Only `events()` are live; the slots
/// past them are spare capacity.
///
/// A payload longer than one record arrives as a first record and continuations
/// (bpf/capture.bpf.c); the batch joins them into one event. A continuation whose
/// first record went out in an earlier batch, or that does not follow on, is not
/// joined (`late_chunks`): that event is then short of bytes, and the analysis counts
/// its message as cut (`capture.payload_cut`).
#[derive(Debug, Default)]
pub struct EventBatch {
    slots: Vec<PacketEvent>,
    len: usize,
    /// Slots still waiting for continuations.
    open: Vec<usize>,
    late_chunks: u64,
    /// The events were held back once already (see `hold_back_open`).
    carried: bool,
}

impl EventBatch {
    /// Decodes `record` into the next slot, or appends a continuation to its event; on
    /// error the batch is unchanged.
    pub fn push_record(&mut self, record: &[u8]) -> Result<(), DecodeError> {
        let (offset, bytes) = chunk_offset(record)?;
        if offset > 0 {
            let (cookie, ts_ns) = (u64_at(record, 8), u64_at(record, 0));
            let slots = &mut self.slots;
            let found = self.open.iter().position(|&i| {
                let ev = &slots[i];
                ev.cookie == cookie && ev.ts_ns == ts_ns && ev.payload.len() == offset
            });
            match found {
                Some(k) => {
                    let ev = &mut slots[self.open[k]];
                    ev.payload.extend_from_slice(bytes);
                    if !expects_more(ev) {
                        self.open.swap_remove(k);
                    }
                }
                None => self.late_chunks += 1,
            }
            return Ok(());
        }
        if self.len == self.slots.len() {
            self.slots.push(PacketEvent::default());
        }
        let ev = &mut self.slots[self.len];
        if ev.payload.capacity() > KEEP_PAYLOAD_CAPACITY {
            ev.payload = Vec::new();
        }
        decode_into(record, ev)?;
        if expects_more(ev) {
            self.open.push(self.len);
        }
        self.len += 1;
        Ok(())
    }

    /// Continuations that could not be joined to their first record (see the type).
    pub fn late_chunks(&self) -> u64 {
        self.late_chunks
    }

    /// Appends an event that is already decoded (other sources, tests).
    pub fn push(&mut self, ev: PacketEvent) {
        if self.len == self.slots.len() {
            self.slots.push(ev);
        } else {
            self.slots[self.len] = ev;
        }
        self.len += 1;
    }

    /// The live events, oldest first.
    pub fn events(&self) -> &[PacketEvent] {
        &self.slots[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the events and keeps their buffers.
    pub fn clear(&mut self) {
        self.len = 0;
        self.open.clear();
        self.carried = false;
    }

    /// Moves the first event still waiting for continuations, and every event after it
    /// (order matters to the analysis), into the empty batch `rest`, where the
    /// continuations will land. The consumer can catch a packet between its first
    /// record and the rest, which the same program run writes microseconds later; the
    /// next poll then completes it. Events are held back once: a continuation that never
    /// comes (lost to a full ring) leaves its message cut, not stuck.
    pub fn hold_back_open(&mut self, rest: &mut EventBatch) {
        debug_assert!(rest.is_empty());
        let Some(&first) = self.open.iter().min() else {
            return;
        };
        if self.carried {
            return;
        }
        for i in first..self.len {
            let ev = std::mem::take(&mut self.slots[i]);
            if self.open.contains(&i) {
                rest.open.push(rest.len);
            }
            rest.push(ev);
        }
        self.len = first;
        self.open.clear();
        rest.carried = true;
    }
}

/// Up to when a poll that read the clock at `drained_at`, then consumed the ring into
/// `handed` and held `held` back for their continuations, has handed every packet over:
/// `drained_at` when it emptied the ring, else its last record's time (`backlog`: the
/// ring still holds later ones); never past a held-back packet.
pub fn seen_until(drained_at: u64, backlog: bool, handed: &EventBatch, held: &EventBatch) -> u64 {
    let seen = if backlog {
        handed.events().last().map_or(0, |e| e.ts_ns)
    } else {
        drained_at
    };
    match held.events().iter().map(|e| e.ts_ns).min() {
        Some(first_held) => seen.min(first_held.saturating_sub(1)),
        None => seen,
    }
}

/// Builds a record the way the BPF program does; for tests and fuzz seeds.
#[doc(hidden)]
pub fn encode(ev: &PacketEvent) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_LEN];
    b[0..8].copy_from_slice(&ev.ts_ns.to_ne_bytes());
    b[8..16].copy_from_slice(&ev.cookie.to_ne_bytes());
    b[16..24].copy_from_slice(&ev.cgroup_id.to_ne_bytes());
    b[24..28].copy_from_slice(&ev.owner_tgid.to_ne_bytes());
    b[28..32].copy_from_slice(&ev.task_tgid.to_ne_bytes());
    let c = ev.owner_comm.as_bytes();
    b[32..32 + c.len().min(COMM_LEN - 1)].copy_from_slice(&c[..c.len().min(COMM_LEN - 1)]);
    let put_addr = |b: &mut [u8], a: &IpAddr| match a {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b[..16].copy_from_slice(&v6.octets()),
    };
    put_addr(&mut b[48..64], &ev.src);
    put_addr(&mut b[64..80], &ev.dst);
    b[80..82].copy_from_slice(&ev.sport.to_ne_bytes());
    b[82..84].copy_from_slice(&ev.dport.to_ne_bytes());
    b[84] = if ev.src.is_ipv4() { 4 } else { 6 };
    b[85] = match ev.protocol {
        Protocol::Udp => 17,
        Protocol::Tcp => 6,
    };
    b[86] = match ev.direction {
        Direction::Egress => 0,
        Direction::Ingress => 1,
    };
    b[87] = ev.tcp_flags;
    b[88..92].copy_from_slice(&ev.tcp_seq.to_ne_bytes());
    b[92..96].copy_from_slice(&ev.payload_len.to_ne_bytes());
    b[96..100].copy_from_slice(&(ev.payload.len() as u32).to_ne_bytes());
    b.extend_from_slice(&ev.payload);
    b
}

/// Splits an event into records of at most `chunk` payload bytes, as the BPF program
/// does for long payloads; for tests.
#[doc(hidden)]
pub fn encode_chunks(ev: &PacketEvent, chunk: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, part) in ev.payload.chunks(chunk.max(1)).enumerate() {
        let mut piece = ev.clone();
        piece.payload = part.to_vec();
        let mut rec = encode(&piece);
        rec[100..104].copy_from_slice(&((i * chunk) as u32).to_ne_bytes());
        out.push(rec);
    }
    if out.is_empty() {
        out.push(encode(ev));
    }
    out
}

#[cfg(test)]
mod tests;
