//! Which process uses each socket, learned from the events themselves.
//!
//! The kernel side records the owner in socket storage from process context (sock_addr
//! hooks, UDP/TCP egress), but a socket that existed before dnsdoc started may carry
//! its first packets without one -- typically a server's first ingress query. Every
//! later event on that socket with an owner teaches us who it was, and attribution
//! happens when a transaction completes, so the early packets get the right process too.

// foldhash: keys come from the network, so a seeded (flood-resistant) hasher, but far
// cheaper than SipHash, which took 12 % of dnsdoc's CPU at saturation.
use foldhash::{HashMap, HashMapExt};

use std::rc::Rc;

use crate::capture::PacketEvent;

/// A socket's user as the kernel saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub tgid: u32,
    /// Thread name from the kernel (for example `isc-net-0000` for dig). Shared: every
    /// transaction of the socket carries its owner, and a String per transaction was
    /// an allocation per query.
    pub thread_comm: Rc<str>,
}

#[derive(Debug)]
struct Entry {
    owner: Owner,
    last_seen_ns: u64,
}

/// cookie -> owner, bounded: entries idle longer than `idle_ns` are pruned.
#[derive(Debug)]
pub struct Owners {
    by_cookie: HashMap<u64, Entry>,
    idle_ns: u64,
    next_prune_len: usize,
}

const PRUNE_AT_LEAST: usize = 4096;

impl Owners {
    pub fn new(idle_ns: u64) -> Self {
        Owners {
            by_cookie: HashMap::new(),
            idle_ns,
            next_prune_len: PRUNE_AT_LEAST,
        }
    }

    /// Whether neither this event nor an earlier one names the socket's owner.
    pub fn unknown(&self, ev: &PacketEvent) -> bool {
        ev.named_owner() == 0 && !self.by_cookie.contains_key(&ev.cookie)
    }

    /// Learns from one event. Returns the tgid when it is new to this socket.
    pub fn learn(&mut self, ev: &PacketEvent) -> Option<u32> {
        let tgid = ev.named_owner();
        // Most packets come from a socket whose owner we already know: just touch it.
        if let Some(e) = self.by_cookie.get_mut(&ev.cookie) {
            e.last_seen_ns = ev.ts_ns;
            if tgid == 0 || e.owner.tgid == tgid {
                return None;
            }
        } else if tgid == 0 {
            return None;
        }
        let owner = Owner {
            tgid,
            thread_comm: ev.owner_comm.as_str().into(),
        };
        self.by_cookie.insert(
            ev.cookie,
            Entry {
                owner,
                last_seen_ns: ev.ts_ns,
            },
        );
        if self.by_cookie.len() >= self.next_prune_len {
            self.prune(ev.ts_ns);
        }
        Some(tgid)
    }

    /// Records an owner found outside the events (sock_diag and /proc), unless an event
    /// already named one. Returns true when it was new.
    pub fn teach(&mut self, cookie: u64, tgid: u32, now_ns: u64) -> bool {
        if self.by_cookie.contains_key(&cookie) {
            return false;
        }
        let owner = Owner {
            tgid,
            thread_comm: "".into(),
        };
        self.by_cookie.insert(
            cookie,
            Entry {
                owner,
                last_seen_ns: now_ns,
            },
        );
        true
    }

    pub fn get(&self, cookie: u64) -> Option<&Owner> {
        self.by_cookie.get(&cookie).map(|e| &e.owner)
    }

    fn prune(&mut self, now_ns: u64) {
        let idle = self.idle_ns;
        self.by_cookie
            .retain(|_, e| now_ns.saturating_sub(e.last_seen_ns) <= idle);
        self.next_prune_len = (self.by_cookie.len() * 2).max(PRUNE_AT_LEAST);
    }
}
