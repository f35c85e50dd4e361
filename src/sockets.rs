//! Which process holds a socket, asked of the kernel: sock_diag maps a socket cookie to
//! its inode, and /proc/PID/fd maps the inode to a process.
//!
//! The kernel records owners in its sock_addr hooks, but some sockets never pass through
//! one while dnsdoc watches: a server socket opened before dnsdoc started that never
//! answers (the hung-server case), a TCP listener's accepted sockets when the listener
//! predates dnsdoc, a connected UDP socket that only uses send(). On kernels where
//! cgroup_skb cannot read the current task (5.10-6.12) this is the only way to name them.
//! It costs a netlink dump and, for an inode not seen before, a walk of /proc: the
//! caller asks once per batch of events, and at most [`SCAN_EVERY`] walks /proc.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NlAddr};

use crate::capture::Protocol;

/// Walks of /proc are spaced at least this far apart.
pub const SCAN_EVERY: Duration = Duration::from_millis(200);
/// TCP_LISTEN in the kernel's socket states.
const TCP_LISTEN: u8 = 10;

/// A socket dnsdoc saw without an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unowned {
    pub cookie: u64,
    pub protocol: Protocol,
    /// Our end of the socket (a listener fallback matches on its port).
    pub local: SocketAddr,
}

/// One socket as sock_diag reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DiagSocket {
    cookie: u64,
    inode: u64,
    local: SocketAddr,
    state: u8,
}

/// Resolves socket cookies to processes, remembering what it learned.
#[derive(Debug, Default)]
pub struct SocketOwners {
    by_inode: HashMap<u64, u32>,
    last_scan: Option<Instant>,
    /// Cookies that could not be resolved (another network namespace, already closed):
    /// not asked again. Bounded: cleared when it grows past 64K.
    given_up: HashSet<u64>,
    /// How many owners this resolver found (for the snapshot).
    pub resolved: u64,
}

impl SocketOwners {
    /// Whether `cookie` is worth asking about.
    pub fn wants(&self, cookie: u64) -> bool {
        !self.given_up.contains(&cookie)
    }

    /// Finds the owning process of each socket it can. A TCP socket not yet accepted
    /// (no inode) or gone is attributed to the listener on its port: the process that
    /// listens is the one that accepts.
    pub fn resolve(&mut self, wanted: &[Unowned]) -> Vec<(u64, u32)> {
        if wanted.is_empty() {
            return Vec::new();
        }
        let mut diag = Vec::new();
        for proto in [Protocol::Udp, Protocol::Tcp] {
            if wanted.iter().any(|w| w.protocol == proto) {
                for family in [AF_INET, AF_INET6] {
                    // A failed dump (no netlink, no permission) leaves these unresolved.
                    diag.extend(
                        dump(family, proto)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|s| (proto, s)),
                    );
                }
            }
        }
        // Per socket, the inodes that would name it: its own, then (TCP) the listener's.
        let mut candidates: Vec<(u64, Vec<u64>)> = Vec::new();
        for w in wanted {
            let own = diag
                .iter()
                .find(|(p, s)| *p == w.protocol && s.cookie == w.cookie && s.inode != 0);
            let listener = diag.iter().find(|(p, s)| {
                w.protocol == Protocol::Tcp
                    && *p == Protocol::Tcp
                    && s.state == TCP_LISTEN
                    && s.local.port() == w.local.port()
                    // A dual-stack listener reports IPv4 peers as IPv4-mapped IPv6.
                    && (s.local.ip().to_canonical() == w.local.ip().to_canonical()
                        || s.local.ip().is_unspecified())
            });
            let inodes: Vec<u64> = own
                .into_iter()
                .chain(listener)
                .map(|(_, s)| s.inode)
                .collect();
            if inodes.is_empty() {
                self.give_up(w.cookie);
            } else {
                candidates.push((w.cookie, inodes));
            }
        }
        let known = |by_inode: &HashMap<u64, u32>, inodes: &[u64]| {
            inodes.iter().find_map(|i| by_inode.get(i).copied())
        };
        let mut scanned = false;
        if candidates
            .iter()
            .any(|(_, i)| known(&self.by_inode, i).is_none())
            && self.may_scan()
        {
            self.scan_proc();
            scanned = true;
        }
        let mut out = Vec::new();
        for (cookie, inodes) in candidates {
            match known(&self.by_inode, &inodes) {
                Some(tgid) => out.push((cookie, tgid)),
                // No process holds it: gone, or in another mount of /proc.
                None if scanned => self.give_up(cookie),
                // Too soon for another walk of /proc: asked again with the next batch.
                None => {}
            }
        }
        self.resolved += out.len() as u64;
        out
    }

    fn give_up(&mut self, cookie: u64) {
        if self.given_up.len() >= 1 << 16 {
            self.given_up.clear();
        }
        self.given_up.insert(cookie);
    }

    fn may_scan(&self) -> bool {
        self.last_scan.is_none_or(|t| t.elapsed() >= SCAN_EVERY)
    }

    /// Maps every socket inode held open by any process to that process.
    fn scan_proc(&mut self) {
        self.last_scan = Some(Instant::now());
        let Ok(all) = procfs::process::all_processes() else {
            return;
        };
        for proc in all.flatten() {
            let Ok(fds) = proc.fd() else { continue };
            for fd in fds.flatten() {
                if let procfs::process::FDTarget::Socket(inode) = fd.target {
                    self.by_inode.insert(inode, proc.pid as u32);
                }
            }
        }
    }
}

/// Every socket of one family and protocol in our network namespace.
fn dump(family: u8, proto: Protocol) -> std::io::Result<Vec<DiagSocket>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&NlAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: match proto {
                Protocol::Udp => IPPROTO_UDP,
                Protocol::Tcp => IPPROTO_TCP,
            },
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        })
        .into(),
    );
    request.finalize();
    let mut buf = vec![0; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut out = Vec::new();
    let mut rx = vec![0u8; 64 << 10];
    loop {
        let n = socket.recv(&mut &mut rx[..], 0)?;
        let mut off = 0;
        while off < n {
            let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&rx[off..n])
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    let id = &r.header.socket_id;
                    out.push(DiagSocket {
                        cookie: cookie_of(&id.cookie),
                        inode: u64::from(r.header.inode),
                        local: SocketAddr::new(id.source_address, id.source_port),
                        state: r.header.state,
                    });
                }
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => return Err(std::io::Error::other(format!("{e:?}"))),
                _ => {}
            }
            if len == 0 {
                break;
            }
            off += len;
        }
    }
}

/// The kernel writes the cookie as two host-order u32s, low half first.
fn cookie_of(raw: &[u8; 8]) -> u64 {
    let lo = u32::from_ne_bytes(raw[..4].try_into().expect("4 bytes"));
    let hi = u32::from_ne_bytes(raw[4..].try_into().expect("4 bytes"));
    u64::from(lo) | (u64::from(hi) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, UdpSocket};
    use std::os::fd::AsRawFd;

    #[test]
    fn cookie_halves_in_order() {
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(&0x89ab_cdefu32.to_ne_bytes());
        raw[4..].copy_from_slice(&0x0123_4567u32.to_ne_bytes());
        assert_eq!(cookie_of(&raw), 0x0123_4567_89ab_cdef);
    }

    /// SO_COOKIE of a socket we hold, as the BPF side would see it.
    fn so_cookie(fd: i32) -> u64 {
        let mut v: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`, a live u64.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_COOKIE,
                (&mut v as *mut u64).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "SO_COOKIE");
        v
    }

    #[test]
    fn finds_our_own_udp_socket_and_tcp_listener() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut owners = SocketOwners::default();
        let udp_key = Unowned {
            cookie: so_cookie(udp.as_raw_fd()),
            protocol: Protocol::Udp,
            local: udp.local_addr().unwrap(),
        };
        // A socket the listener has not accepted yet: unknown cookie, listener's port.
        let accepted = Unowned {
            cookie: 1,
            protocol: Protocol::Tcp,
            local: tcp.local_addr().unwrap(),
        };
        let got = owners.resolve(&[udp_key, accepted]);
        let me = std::process::id();
        assert!(got.contains(&(udp_key.cookie, me)), "{got:?}");
        assert!(got.contains(&(1, me)), "{got:?}");
        // A cookie nobody holds is given up, not asked again.
        let gone = Unowned {
            cookie: 7,
            protocol: Protocol::Udp,
            local: "127.0.0.1:9".parse().unwrap(),
        };
        assert!(owners.resolve(&[gone]).is_empty());
        assert!(!owners.wants(7));
    }
}
