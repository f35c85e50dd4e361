//! What the whole analysis pipeline is fed: random configurations, the real sessions of
//! the corpus, and generated conversations between sockets built from real messages.

use dnsdoc::analysis::AnalysisConfig;
use dnsdoc::capture::event::{decode, encode, TCP_FIN, TCP_RST};
use dnsdoc::capture::{Direction, PacketEvent, Protocol};

use super::mutations::{corpus, mutate};
use super::oracles::{random_isn, split_session, Rng, Step};

pub fn config(rng: &mut Rng) -> AnalysisConfig {
    AnalysisConfig {
        timeout_ns: [1, 1_000, 1_000_000, 1_000_000_000][rng.index(4)],
        max_pending: [1, 2, 8, 200_000][rng.index(4)],
    }
}

pub fn sessions() -> Vec<(String, Vec<PacketEvent>)> {
    corpus("analyzer")
        .into_iter()
        .map(|(name, bytes)| {
            let evs = split_session(&bytes)
                .into_iter()
                .map(|r| decode(r).unwrap_or_else(|e| panic!("{name}: {e}")))
                .collect();
            (name, evs)
        })
        .collect()
}

pub fn non_decreasing(evs: &[PacketEvent]) -> bool {
    evs.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns)
}

/// A local socket in a generated conversation.
struct Socket {
    cookie: u64,
    protocol: Protocol,
    local: (std::net::IpAddr, u16),
    peer: (std::net::IpAddr, u16),
    owner: u32,
    /// Next TCP sequence number per direction (egress, ingress).
    seq: [u32; 2],
}

/// Query/response pairs of the real corpus (same scenario and id).
pub fn pairs(dns: &[(String, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let scenario = |n: &str| n.split('-').next().unwrap_or("").to_string();
    let mut out = Vec::new();
    for (qn, q) in dns.iter().filter(|(n, _)| n.ends_with("query.bin")) {
        if let Some((_, r)) = dns.iter().find(|(rn, r)| {
            rn.ends_with("response.bin") && scenario(rn) == scenario(qn) && r[..2] == q[..2]
        }) {
            out.push((q.clone(), r.clone()));
        }
    }
    assert!(out.len() >= 10, "only {} query/response pairs", out.len());
    out
}

/// Builds a random run: a few sockets (UDP and TCP, client and server ends, IPv4 and
/// IPv6) exchanging real queries and their responses, with retransmissions, lost and
/// late answers, mutated messages, TCP segmentation, cuts and FIN/RST, ticks; time never
/// goes backwards unless `jitter`.
pub fn random_steps(
    rng: &mut Rng,
    pairs: &[(Vec<u8>, Vec<u8>)],
    pool: &[Vec<u8>],
    timeout_ns: u64,
    jitter: bool,
) -> (Vec<Step>, u64) {
    let ip = |rng: &mut Rng, v6: bool| -> std::net::IpAddr {
        if v6 {
            std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, rng.below(3) as u16).into()
        } else {
            std::net::Ipv4Addr::new(127, 0, 0, 1 + rng.below(3) as u8).into()
        }
    };
    let mut sockets: Vec<Socket> = (0..1 + rng.below(5))
        .map(|_| {
            let v6 = rng.chance(1, 3);
            Socket {
                cookie: rng.below(8),
                protocol: if rng.chance(1, 2) {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
                local: (ip(rng, v6), [53, 40000, 40001][rng.index(3)]),
                peer: (ip(rng, v6), [53, 40000, 5353][rng.index(3)]),
                owner: [0, 0, 100, 200][rng.index(4)],
                seq: [random_isn(rng), random_isn(rng)],
            }
        })
        .collect();
    let mut ts: u64 = match rng.below(3) {
        0 => 0,
        1 => rng.below(1 << 40),
        _ => u64::MAX - 1_000 * timeout_ns.max(1_000_000_000),
    };
    let mut steps = Vec::new();
    // Responses owed: (socket, message, direction).
    let mut owed: Vec<(usize, Vec<u8>, Direction)> = Vec::new();
    let n = 5 + rng.below(120);
    let emit = |rng: &mut Rng,
                steps: &mut Vec<Step>,
                s: &mut Socket,
                dir: Direction,
                msg: &[u8],
                ts: u64| {
        let (src, dst) = match dir {
            Direction::Egress => (s.local, s.peer),
            Direction::Ingress => (s.peer, s.local),
        };
        let ev = |payload: Vec<u8>, wire: u32, seq: u32, flags: u8| PacketEvent {
            ts_ns: ts,
            cookie: s.cookie,
            cgroup_id: 1,
            owner_tgid: if dir == Direction::Egress { s.owner } else { 0 },
            task_tgid: s.owner,
            owner_comm: "dig".into(),
            src: src.0,
            dst: dst.0,
            sport: src.1,
            dport: dst.1,
            protocol: s.protocol,
            direction: dir,
            tcp_flags: flags,
            tcp_seq: seq,
            payload_len: wire,
            payload,
        };
        match s.protocol {
            Protocol::Udp => {
                let mut p = msg.to_vec();
                p.truncate(1024);
                steps.push(Step::Event(ev(p, msg.len() as u32, 0, 0)));
            }
            Protocol::Tcp => {
                let d = usize::from(dir == Direction::Ingress);
                let mut stream = (msg.len() as u16).to_be_bytes().to_vec();
                stream.extend_from_slice(msg);
                let mut pos = 0;
                while pos < stream.len() {
                    let end = pos + 1 + rng.size(1500).min(stream.len() - pos - 1);
                    let seq = s.seq[d].wrapping_add(pos as u32);
                    let mut cap = stream[pos..end].to_vec();
                    if rng.chance(1, 10) {
                        cap.truncate(rng.index(cap.len() + 1));
                    }
                    let e = ev(cap, (end - pos) as u32, seq, 0x18);
                    if rng.chance(1, 12) {
                        steps.push(Step::Event(e.clone()));
                    }
                    steps.push(Step::Event(e));
                    pos = end;
                }
                s.seq[d] = s.seq[d].wrapping_add(stream.len() as u32);
                if rng.chance(1, 20) {
                    // A segment lost to capture: the stream skips ahead.
                    s.seq[d] = s.seq[d].wrapping_add(1 + rng.below(100) as u32);
                }
                if rng.chance(1, 15) {
                    let flags = [TCP_FIN | 0x10, TCP_RST][rng.index(2)];
                    steps.push(Step::Event(ev(Vec::new(), 0, s.seq[d], flags)));
                    s.seq[d] = random_isn(rng);
                }
            }
        }
    };
    for _ in 0..n {
        ts = ts.saturating_add(match rng.below(6) {
            0 => 0,
            1 | 2 => rng.below(timeout_ns / 4 + 1),
            3 => timeout_ns,
            4 => rng.below(timeout_ns.saturating_mul(3) + 1),
            _ => rng.below(1000),
        });
        let at = if jitter && rng.chance(1, 4) {
            ts.saturating_sub(rng.below(timeout_ns.saturating_mul(2) + 1))
        } else {
            ts
        };
        match rng.below(10) {
            0..=3 => {
                let si = rng.index(sockets.len());
                let (mut q, mut r) = pairs[rng.index(pairs.len())].clone();
                if rng.chance(1, 2) {
                    // A fresh id for both, so concurrent queries do not collide.
                    let id = rng.next_u64() as u16;
                    q[..2].copy_from_slice(&id.to_be_bytes());
                    r[..2].copy_from_slice(&id.to_be_bytes());
                }
                if rng.chance(1, 10) {
                    mutate(rng, &mut r, pool);
                }
                let client = rng.chance(1, 2);
                let (qdir, rdir) = if client {
                    (Direction::Egress, Direction::Ingress)
                } else {
                    (Direction::Ingress, Direction::Egress)
                };
                emit(rng, &mut steps, &mut sockets[si], qdir, &q, at);
                if rng.chance(4, 5) {
                    owed.push((si, r, rdir));
                }
                if rng.chance(1, 10) {
                    owed.push((si, q, qdir)); // a retransmission, later
                }
            }
            4..=6 if !owed.is_empty() => {
                let (si, msg, dir) = owed.swap_remove(rng.index(owed.len()));
                emit(rng, &mut steps, &mut sockets[si], dir, &msg, at);
            }
            7 => steps.push(Step::Tick(at)),
            _ => {
                let si = rng.index(sockets.len());
                let mut m = pool[rng.index(pool.len())].clone();
                mutate(rng, &mut m, pool);
                let dir = if rng.chance(1, 2) {
                    Direction::Egress
                } else {
                    Direction::Ingress
                };
                emit(rng, &mut steps, &mut sockets[si], dir, &m, at);
            }
        }
    }
    let finish = ts.saturating_add(rng.below(timeout_ns.saturating_mul(2) + 1));
    (steps, finish)
}

pub fn steps_bytes(steps: &[Step]) -> Vec<u8> {
    steps
        .iter()
        .flat_map(|s| match s {
            Step::Event(e) => encode(e),
            Step::Tick(t) => t.to_le_bytes().to_vec(),
        })
        .collect()
}
