//! A loopback UDP relay on port 53 in front of `--target`, for the scenarios whose
//! clients are real glibc (`getent`): glibc's resolv.conf has no port, so the clients
//! ask the relay (`nameserver 127.53.x.y`) and the relay forwards to the target on any
//! port. It plays the Service IP of a cluster DNS: with `drop_pair_sibling`, it loses
//! the second query of each client socket's parallel A/AAAA pair once, as a failed
//! conntrack insert under DNAT does (the conntrack-race scenario).
//!
//! It counts what the clients put on the wire, which glibc does not tell: the names
//! each socket tried, pair siblings, re-sends (same id or not) and the drops, so the
//! report can reconcile getaddrinfo calls with captured queries.
//!
//! Two threads (clients -> target, target -> clients), each polling a stop flag every
//! 100 ms; ids are rewritten so that concurrent clients never collide upstream.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

/// What the relay saw from the clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    /// Queries received from the clients.
    pub queries: u64,
    /// First query of a name on a socket (glibc opens a socket per name it tries).
    pub names_tried: u64,
    /// Second query type of a name on the same socket (glibc's parallel A/AAAA).
    pub pair_siblings: u64,
    /// The same name and type asked again on the same socket.
    pub resends: u64,
    /// Re-sends of a query the relay dropped, keeping its DNS id: dnsdoc folds them
    /// into the unanswered query they repeat (a re-send of an answered query is a new
    /// query to it).
    pub same_id_resends: u64,
    /// Pair siblings dropped (the lost conntrack insert).
    pub dropped: u64,
    /// Answers passed back to the clients.
    pub answers: u64,
}

/// A socket's questions: (name, qtype, id, dropped) in order, and whether one was
/// dropped.
#[derive(Default)]
struct Peer {
    seen: Vec<(Vec<u8>, u16, u16, bool)>,
    dropped: bool,
    last: Option<Instant>,
}

/// Forget a client socket idle this long (a glibc lookup lasts at most timeout ×
/// attempts), to bound memory; a port reused sooner is recognised in [`classify`].
const PEER_IDLE: Duration = Duration::from_secs(10);

/// Upstream id -> (the client, its own id).
type IdTable = Mutex<Vec<Option<(SocketAddr, u16)>>>;

/// A running relay. Dropping it stops both threads.
pub struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<RelayStats>>,
    threads: Vec<JoinHandle<()>>,
}

/// The relay's address: 127.53.x.y from the pid (never the target's address).
pub fn relay_ip(target: SocketAddr) -> IpAddr {
    let pid = std::process::id();
    let mut last = (pid & 0xff).max(2) as u8;
    let ip = |l| IpAddr::V4(Ipv4Addr::new(127, 53, ((pid >> 8) & 0xff) as u8, l));
    if ip(last) == target.ip() {
        last = last.wrapping_add(1).max(2);
    }
    ip(last)
}

impl Relay {
    /// Binds `ip`:53 and starts relaying to `target`.
    pub fn start(ip: IpAddr, target: SocketAddr, drop_pair_sibling: bool) -> Result<Relay> {
        let addr = SocketAddr::new(ip, 53);
        let listen = UdpSocket::bind(addr)
            .with_context(|| format!("binding the chaos relay on {addr} (needs root)"))?;
        let bind: SocketAddr = match target.ip() {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let upstream = UdpSocket::bind(bind).context("opening the relay's upstream socket")?;
        upstream
            .connect(target)
            .with_context(|| format!("connecting the relay to {target}"))?;
        let tick = Some(Duration::from_millis(100));
        listen.set_read_timeout(tick)?;
        upstream.set_read_timeout(tick)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(RelayStats::default()));
        let table: Arc<IdTable> = Arc::new(Mutex::new(vec![None; 65_536]));
        let forward = {
            let (listen, upstream) = (listen.try_clone()?, upstream.try_clone()?);
            let (stop, stats, table) = (stop.clone(), stats.clone(), table.clone());
            std::thread::Builder::new()
                .name("dnsdoc-relay-up".into())
                .spawn(move || {
                    to_target(&listen, &upstream, &stop, &stats, &table, drop_pair_sibling)
                })?
        };
        let back = {
            let (stop, stats) = (stop.clone(), stats.clone());
            std::thread::Builder::new()
                .name("dnsdoc-relay-down".into())
                .spawn(move || to_clients(&listen, &upstream, &stop, &stats, &table))?
        };
        Ok(Relay {
            addr,
            stop,
            stats,
            threads: vec![forward, back],
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> RelayStats {
        *self.stats.lock().expect("relay stats")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The question of a query: (lowercased wire name, qtype, id), or None.
fn question(msg: &[u8]) -> Option<(Vec<u8>, u16, u16)> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 {
        return None;
    }
    let mut i = 12;
    while i < msg.len() && msg[i] != 0 {
        i += 1 + usize::from(msg[i]);
    }
    let qtype = msg.get(i + 1..i + 3)?;
    Some((
        msg[12..i].to_ascii_lowercase(),
        u16::from_be_bytes([qtype[0], qtype[1]]),
        u16::from_be_bytes([msg[0], msg[1]]),
    ))
}

/// What a query is to its socket, counting it; true when it must be dropped.
fn classify(
    peer: &mut Peer,
    q: (Vec<u8>, u16, u16),
    s: &mut RelayStats,
    drop_pair_sibling: bool,
) -> bool {
    s.queries += 1;
    let (name, qtype, id) = q;
    // glibc opens a socket per name and keeps a query's id when it re-sends it: a
    // known port asking another name, or the same question with a new id, is a new
    // socket that got a recently used ephemeral port.
    let reused = peer.seen.iter().all(|(n, ..)| *n != name)
        || peer
            .seen
            .iter()
            .any(|(n, t, i, _)| *n == name && *t == qtype && *i != id);
    if reused {
        peer.seen.clear();
        peer.dropped = false;
    }
    let same = peer
        .seen
        .iter()
        .find(|(n, t, _, _)| *n == name && *t == qtype);
    let sibling = peer
        .seen
        .iter()
        .any(|(n, t, _, _)| *n == name && *t != qtype);
    let mut drop = false;
    match same {
        Some((_, _, old, lost)) => {
            s.resends += 1;
            if *old == id && *lost {
                s.same_id_resends += 1;
            }
        }
        None if sibling => {
            s.pair_siblings += 1;
            if drop_pair_sibling && !peer.dropped {
                peer.dropped = true;
                s.dropped += 1;
                drop = true;
            }
        }
        None => s.names_tried += 1,
    }
    peer.seen.push((name, qtype, id, drop));
    drop
}

fn to_target(
    listen: &UdpSocket,
    upstream: &UdpSocket,
    stop: &AtomicBool,
    stats: &Mutex<RelayStats>,
    table: &IdTable,
    drop_pair_sibling: bool,
) {
    let mut buf = [0u8; 4096];
    let mut peers: HashMap<SocketAddr, Peer> = HashMap::new();
    let mut next_id: u16 = 0;
    let mut pruned = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if pruned.elapsed() > Duration::from_secs(1) {
            pruned = Instant::now();
            peers.retain(|_, p| p.last.is_some_and(|t| t.elapsed() < PEER_IDLE));
        }
        let Ok((n, from)) = listen.recv_from(&mut buf) else {
            continue;
        };
        let Some(q) = question(&buf[..n]) else {
            continue;
        };
        let orig = q.2;
        let peer = peers.entry(from).or_default();
        peer.last = Some(Instant::now());
        if classify(
            peer,
            q,
            &mut stats.lock().expect("relay stats"),
            drop_pair_sibling,
        ) {
            continue;
        }
        next_id = next_id.wrapping_add(1);
        table.lock().expect("relay table")[usize::from(next_id)] = Some((from, orig));
        buf[..2].copy_from_slice(&next_id.to_be_bytes());
        let _ = upstream.send(&buf[..n]);
    }
}

fn to_clients(
    listen: &UdpSocket,
    upstream: &UdpSocket,
    stop: &AtomicBool,
    stats: &Mutex<RelayStats>,
    table: &IdTable,
) {
    let mut buf = [0u8; 65_535];
    while !stop.load(Ordering::SeqCst) {
        let Ok(n) = upstream.recv(&mut buf) else {
            continue;
        };
        if n < 12 {
            continue;
        }
        let id = u16::from_be_bytes([buf[0], buf[1]]);
        let Some((peer, orig)) = table.lock().expect("relay table")[usize::from(id)] else {
            continue;
        };
        buf[..2].copy_from_slice(&orig.to_be_bytes());
        if listen.send_to(&buf[..n], peer).is_ok() {
            stats.lock().expect("relay stats").answers += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &[u8], qtype: u16, id: u16) -> (Vec<u8>, u16, u16) {
        (name.to_vec(), qtype, id)
    }

    #[test]
    fn a_pair_loses_its_sibling_once_and_resends_are_counted() {
        let mut s = RelayStats::default();
        let mut p = Peer::default();
        assert!(!classify(&mut p, q(b"\x01a", 1, 7), &mut s, true));
        assert!(classify(&mut p, q(b"\x01a", 28, 8), &mut s, true));
        // glibc re-sends the pair after its timeout: nothing more is dropped.
        assert!(!classify(&mut p, q(b"\x01a", 1, 7), &mut s, true));
        assert!(!classify(&mut p, q(b"\x01a", 28, 8), &mut s, true));
        assert_eq!(
            s,
            RelayStats {
                queries: 4,
                names_tried: 1,
                pair_siblings: 1,
                resends: 2,
                same_id_resends: 1,
                dropped: 1,
                answers: 0,
            }
        );
        // A new socket on a reused port: a new name, or the same question with a new id.
        let before = s;
        assert!(!classify(&mut p, q(b"\x01a", 1, 9), &mut s, true));
        assert!(classify(&mut p, q(b"\x01a", 28, 10), &mut s, true));
        assert!(!classify(&mut p, q(b"\x01c", 1, 11), &mut s, true));
        assert_eq!(s.names_tried, before.names_tried + 2);
        assert_eq!((s.resends, s.dropped), (before.resends, before.dropped + 1));
        // Without the fault nothing is dropped.
        let mut p = Peer::default();
        assert!(!classify(&mut p, q(b"\x01b", 1, 1), &mut s, false));
        assert!(!classify(&mut p, q(b"\x01b", 28, 2), &mut s, false));
    }

    #[test]
    fn questions_are_read_and_responses_ignored() {
        let msg =
            crate::chaos::wire::encode_query("Api.Test.", hickory_proto::rr::RecordType::AAAA)
                .unwrap();
        let (name, qtype, _) = question(&msg).unwrap();
        assert_eq!(name, b"\x03api\x04test");
        assert_eq!(qtype, 28);
        let mut resp = msg.clone();
        resp[2] |= 0x80;
        assert!(question(&resp).is_none());
        assert!(question(&msg[..13]).is_none());
    }

    #[test]
    fn the_relay_never_takes_the_targets_address() {
        let t: SocketAddr = (relay_ip("127.0.0.1:53".parse().unwrap()), 53).into();
        assert_ne!(relay_ip(t), t.ip());
    }
}
