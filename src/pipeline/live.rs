//! The live event source: the kernel probes ([`crate::capture`]) plus socket owners
//! found through sock_diag and /proc ([`crate::sockets`]) for sockets no hook named.

use std::time::Duration;

use anyhow::Result;

use super::source::{EventSource, SourceHealth};
use crate::capture::{Capture, EventBatch};
use crate::signals;
use crate::sockets::{SocketOwners, Unowned};

/// Said in `capture.degraded` when dnsdoc runs with the probe capabilities only.
const NO_PTRACE: &str = "no CAP_SYS_PTRACE: sockets no probe named (opened before dnsdoc \
    started and silent since) are attributed only among processes of dnsdoc's own user";

/// Attached probes of one window; dropping it frees them (maps, ring buffer).
pub struct LiveSource<'obj> {
    capture: Capture<'obj>,
    sockets: SocketOwners,
}

impl<'obj> LiveSource<'obj> {
    pub fn new(capture: Capture<'obj>) -> Self {
        LiveSource {
            capture,
            sockets: SocketOwners::default(),
        }
    }
}

impl EventSource for LiveSource<'_> {
    fn poll(&mut self, wait: Duration, out: &mut EventBatch) -> Result<()> {
        self.capture.poll(wait, out)
    }

    fn now_ns(&self) -> u64 {
        signals::monotonic_ns()
    }

    fn seen_until_ns(&self) -> u64 {
        self.capture.seen_until_ns()
    }

    fn stop(&mut self) {
        self.capture.detach();
    }

    fn backlog(&self) -> bool {
        self.capture.backlog()
    }

    fn resolve_owners(&mut self, unowned: &[Unowned]) -> Vec<(u64, u32)> {
        self.sockets.resolve(unowned)
    }

    fn wants_owner(&self, cookie: u64) -> bool {
        self.sockets.wants(cookie)
    }

    fn describe(&self) -> String {
        "live: the kernel's DNS packets (cgroup_skb and sock_addr probes)".into()
    }

    fn health(&self) -> Result<SourceHealth> {
        let capture = &self.capture;
        let k = capture.counters()?;
        Ok(SourceHealth {
            packets: k.packets,
            ringbuf_full: k.dropped_ringbuf_full,
            load_error: k.dropped_load_error,
            decode_error: capture.decode_errors(),
            owner_unrecorded: k.owner_storage_full,
            owners_from_sock_diag: self.sockets.resolved,
            degraded: {
                let mut d = capture.features().degraded();
                if !crate::host::can_read_all_fds() {
                    d.push(NO_PTRACE.to_string());
                }
                d
            },
        })
    }
}
