//! The seam between where packets come from and the analysis: an [`EventSource`].
//!
//! The live kernel capture ([`super::live::LiveSource`]) is one source; a pcap file
//! (offline doctor) is meant to be the second. Everything after the seam (analysis,
//! aggregation, the snapshot) is the same code for both, so both give the same numbers.

use std::time::Duration;

use anyhow::Result;

use crate::capture::EventBatch;
use crate::sockets::Unowned;

/// How complete the capture was, as the source saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceHealth {
    /// DNS packets the source saw (kernel hooks, or packets read from a file).
    pub packets: u64,
    /// Records lost because the kernel ring buffer was full.
    pub ringbuf_full: u64,
    /// Records lost because the kernel could not read a payload.
    pub load_error: u64,
    /// Records user space could not decode.
    pub decode_error: u64,
    /// Packets whose owner the kernel could not store.
    pub owner_unrecorded: u64,
    /// Sockets whose owner was found outside the events (sock_diag and /proc).
    pub owners_from_sock_diag: u64,
    /// What this source could not do and how it made up for it, one sentence each.
    pub degraded: Vec<String>,
}

impl SourceHealth {
    /// Events lost before the analysis, for any reason.
    pub fn lost(&self) -> u64 {
        self.ringbuf_full + self.load_error + self.decode_error
    }
}

/// A source of packet events for one observation window.
pub trait EventSource {
    /// Waits up to `wait` for events and hands them over in `out` (empty on entry).
    fn poll(&mut self, wait: Duration, out: &mut EventBatch) -> Result<()>;

    /// The source's clock, in the events' time base (CLOCK_MONOTONIC ns for the kernel;
    /// a file's own timestamps for a capture file). Queries older than the timeout at
    /// this time are timeouts.
    fn now_ns(&self) -> u64;

    /// The time in the same base up to which every event has been handed over by
    /// `poll`: the clock for timeouts. Later than that, an answer may still be waiting
    /// in the source while the analysis takes its query for unanswered.
    fn seen_until_ns(&self) -> u64 {
        self.now_ns()
    }

    /// True when the source has nothing more to give (a file read to its end); a live
    /// source runs until the window's duration or a signal ends it.
    fn exhausted(&self) -> bool {
        false
    }

    /// Stops producing events; what was already produced can still be polled.
    fn stop(&mut self);

    /// True when the last poll handed over a full batch and more events are waiting:
    /// poll again before relying on having seen everything (the drain after `stop`).
    fn backlog(&self) -> bool {
        false
    }

    /// Owners (cookie, tgid) of sockets no event named, where the source can find them.
    fn resolve_owners(&mut self, _unowned: &[Unowned]) -> Vec<(u64, u32)> {
        Vec::new()
    }

    /// Whether `resolve_owners` would look this socket up (a cheap pre-filter).
    fn wants_owner(&self, _cookie: u64) -> bool {
        false
    }

    /// Counters so far (final once stopped and drained).
    fn health(&self) -> Result<SourceHealth>;

    /// The wall-clock time of `ns` in the events' time base, when the source knows it
    /// (a file's timestamps); `None`: the window is now (live).
    fn wall_clock(&self, _ns: u64) -> Option<std::time::SystemTime> {
        None
    }

    /// One line saying where the events came from, for the snapshot.
    fn describe(&self) -> String;

    /// False when the events carry no processes (a capture file): the snapshot's
    /// process table stays empty instead of one "(unknown)" row for everything.
    fn has_processes(&self) -> bool {
        true
    }

    /// True when the events are this machine's, now: the node's own counters
    /// (/proc/net/snmp) then describe the same window. False for a capture file.
    fn is_this_node_now(&self) -> bool {
        self.has_processes()
    }

    /// A live progress counter: packets seen and events lost so far.
    fn progress(&self) -> (u64, u64) {
        self.health().map_or((0, 0), |h| (h.packets, h.lost()))
    }
}
