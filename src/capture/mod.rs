//! Stage 1, capture: loads the BPF programs, attaches them to a cgroup and turns
//! ring-buffer records into [`PacketEvent`]s. Nothing here knows DNS semantics.
//!
//! Two BPF objects: `owner` (sock_addr hooks that record who uses each DNS socket) and
//! `capture` (cgroup_skb hooks that emit every DNS packet). They share the `sock_owners`
//! socket-storage map. All attachments are BPF links owned by [`Capture`]: dropping it,
//! exiting, or being killed detaches everything, and other instances are unaffected.

pub mod event;
pub mod probe;
mod skel;
pub mod verifier;

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, ProgramMut, RingBuffer, RingBufferBuilder};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

pub use event::{Direction, EventBatch, PacketEvent, Protocol};
pub use probe::KernelFeatures;
pub use verifier::unsupported;

use crate::exit::CollectError;
use skel::capture::{CaptureSkel, CaptureSkelBuilder};
use skel::owner::{OwnerSkel, OwnerSkelBuilder};

/// Mirrors DNSDOC_MAX_PORTS in bpf/dnsdoc.h.
pub const MAX_PORTS: usize = 8;
/// Mirrors DNSDOC_MAX_PAYLOAD in bpf/dnsdoc.h: payload bytes per ring record.
pub const MAX_PAYLOAD: usize = 1024;
/// Mirrors DNSDOC_MAX_CHUNKS: a payload is captured whole up to this many records.
pub const MAX_CHUNKS: usize = 64;
/// Most records handed over per poll. The batch buffers keep their largest size (their
/// slots are reused), and two of them swap: unbounded, one late poll at saturation grew
/// the heap by several MiB for the rest of the run. The rest waits in the ring.
pub const MAX_BATCH: usize = 4096;

/// A cgroup hook the capture attaches a program to.
#[derive(Debug, Clone, Copy)]
pub struct Hook {
    /// libbpf's section name, as in the .bpf.c.
    pub section: &'static str,
    /// The kernel's attach type: what BPF_PROG_QUERY asks for.
    pub attach_type: libbpf_sys::bpf_attach_type,
}

/// Every hook, one program each (owner.bpf.c's, then capture.bpf.c's). Where the kernel
/// lacks socket storage in sock_addr programs, the owner programs are not loaded and
/// their hooks stay empty.
pub const HOOKS: [Hook; 10] = {
    use libbpf_sys::*;
    const fn hook(section: &'static str, attach_type: bpf_attach_type) -> Hook {
        Hook {
            section,
            attach_type,
        }
    }
    [
        hook("cgroup/bind4", BPF_CGROUP_INET4_BIND),
        hook("cgroup/bind6", BPF_CGROUP_INET6_BIND),
        hook("cgroup/connect4", BPF_CGROUP_INET4_CONNECT),
        hook("cgroup/connect6", BPF_CGROUP_INET6_CONNECT),
        hook("cgroup/sendmsg4", BPF_CGROUP_UDP4_SENDMSG),
        hook("cgroup/sendmsg6", BPF_CGROUP_UDP6_SENDMSG),
        hook("cgroup/recvmsg4", BPF_CGROUP_UDP4_RECVMSG),
        hook("cgroup/recvmsg6", BPF_CGROUP_UDP6_RECVMSG),
        hook("cgroup_skb/egress", BPF_CGROUP_INET_EGRESS),
        hook("cgroup_skb/ingress", BPF_CGROUP_INET_INGRESS),
    ]
};

/// The owner hooks that run on every UDP message (not once per socket), needed only
/// where cgroup_skb programs cannot read the current task.
const PER_MESSAGE_HOOKS: [&str; 4] = [
    "cgroup/sendmsg4",
    "cgroup/sendmsg6",
    "cgroup/recvmsg4",
    "cgroup/recvmsg6",
];

/// The hooks attached on a kernel with these features: all of them, less the owner
/// hooks it cannot run (no socket storage in sock_addr programs; owners then come from
/// sock_diag) or does not need: where cgroup_skb reads the current task, UDP egress
/// names its sender itself (capture.bpf.c, fill_owner), and the per-message hooks
/// would be two more program runs per query on a server's own receive and send path.
pub fn hooks_for(features: &KernelFeatures) -> Vec<&'static Hook> {
    HOOKS
        .iter()
        .filter(|h| {
            let cannot = h.section.starts_with("cgroup/") && !features.sock_addr_storage;
            let need_not = PER_MESSAGE_HOOKS.contains(&h.section) && features.skb_current_task;
            !cannot && !need_not
        })
        .collect()
}

/// What to capture.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// cgroup v2 directory to attach to; its whole subtree is observed.
    pub cgroup: PathBuf,
    /// DNS ports (1..=MAX_PORTS of them).
    pub ports: Vec<u16>,
    /// Ring buffer size in bytes (rounded up to a power of two, at least one page).
    pub ring_buffer_bytes: u32,
}

/// Kernel-side counters, summed over CPUs. Mirrors `enum dnsdoc_counter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// DNS packets the hooks saw.
    pub packets: u64,
    /// Records lost because the ring buffer was full.
    pub dropped_ringbuf_full: u64,
    /// Records lost because the payload could not be read.
    pub dropped_load_error: u64,
    /// Packets whose owner could not be stored (socket storage allocation failed).
    pub owner_storage_full: u64,
}

impl KernelCounters {
    /// Records the kernel could not deliver, for any reason.
    pub fn lost(&self) -> u64 {
        self.dropped_ringbuf_full + self.dropped_load_error
    }
}

/// Storage the BPF objects borrow; lives on the caller's stack for the capture's lifetime.
pub struct ObjectStorage {
    owner: MaybeUninit<OpenObject>,
    capture: MaybeUninit<OpenObject>,
}

impl Default for ObjectStorage {
    fn default() -> Self {
        ObjectStorage {
            owner: MaybeUninit::uninit(),
            capture: MaybeUninit::uninit(),
        }
    }
}

/// A running capture. Dropping it detaches every program.
pub struct Capture<'obj> {
    // Field order is drop order: links first, then the ring buffer, then the objects.
    links: Vec<Link>,
    // 'static: the callback owns its state; the ring keeps the map's memory mapped.
    ring: RingBuffer<'static>,
    queue: Rc<RefCell<Queue>>,
    /// The last poll stopped at MAX_BATCH: more records are waiting, take them at once.
    backlog: Cell<bool>,
    /// See [`Capture::seen_until_ns`].
    seen_until_ns: Cell<u64>,
    features: KernelFeatures,
    capture: CaptureSkel<'obj>,
    _owner: OwnerSkel<'obj>,
}

#[derive(Default)]
struct Queue {
    events: EventBatch,
    decode_errors: u64,
}

impl<'obj> Capture<'obj> {
    /// Loads and attaches the probes. Errors that mean "this host cannot run dnsdoc"
    /// carry a [`CollectError`].
    pub fn start(cfg: &CaptureConfig, storage: &'obj mut ObjectStorage) -> Result<Self> {
        if cfg.ports.is_empty() || cfg.ports.len() > MAX_PORTS {
            bail!(
                "between 1 and {MAX_PORTS} ports can be watched, got {}",
                cfg.ports.len()
            );
        }
        let mut ports = [0u16; MAX_PORTS];
        ports[..cfg.ports.len()].copy_from_slice(&cfg.ports);
        verifier::capture_log();
        let mut features = KernelFeatures::probe();
        // Test hook: claim a feature the kernel may lack, to see its verifier rejection
        // reported (tests/kernel_compat.rs). Never needed in normal use.
        if std::env::var_os("DNSDOC_ASSUME_SKB_CURRENT_TASK").is_some() {
            features.skb_current_task = true;
        }
        if !features.ringbuf {
            return Err(CollectError::Unsupported(format!(
                "kernel {} has no BPF ring buffer (needs 5.8 or later)",
                features.release
            ))
            .into());
        }

        let mut open_owner = OwnerSkelBuilder::default()
            .open(&mut storage.owner)
            .map_err(|e| unsupported("opening the owner probes", e))?;
        let ro = open_owner
            .maps
            .rodata_data
            .as_deref_mut()
            .context("owner object has no .rodata")?;
        ro.dns_ports = ports;
        ro.n_ports = cfg.ports.len() as u32;
        // Without socket storage in sock_addr programs only the shared map is loaded
        // (owners then come from sock_diag); see hooks_for for the rest.
        let wanted = hooks_for(&features);
        for mut p in open_owner.open_object_mut().progs_mut() {
            let section = p.section().to_string_lossy().into_owned();
            p.set_autoload(wanted.iter().any(|h| h.section == section));
        }
        let owner = open_owner
            .load()
            .map_err(|e| unsupported("loading the owner probes", e))?;

        let mut open_capture = CaptureSkelBuilder::default()
            .open(&mut storage.capture)
            .map_err(|e| unsupported("opening the capture probes", e))?;
        let ro = open_capture
            .maps
            .rodata_data
            .as_deref_mut()
            .context("capture object has no .rodata")?;
        ro.dns_ports = ports;
        ro.n_ports = cfg.ports.len() as u32;
        let ring_bytes = ring_size(cfg.ring_buffer_bytes);
        ro.wakeup_bytes = u64::from(ring_bytes / 8);
        ro.n_cpus = libbpf_rs::num_possible_cpus()
            .context("counting the possible CPUs")?
            .max(1) as u32;
        ro.skb_has_task = u32::from(features.skb_current_task);
        open_capture
            .maps
            .events
            .set_max_entries(ring_bytes)
            .context("sizing the ring buffer")?;
        open_capture
            .maps
            .sock_owners
            .reuse_fd(owner.maps.sock_owners.as_fd())
            .context("sharing the socket-owner map")?;
        let capture = open_capture
            .load()
            .map_err(|e| unsupported("loading the capture probes", e))?;

        // Every loaded program, on the hook its section names.
        let loaded: Vec<ProgramMut> = owner
            .object()
            .progs_mut()
            .chain(capture.object().progs_mut())
            .filter(|p| p.autoload())
            .collect();
        let attach: Vec<(&ProgramMut, &str)> = loaded
            .iter()
            .map(|p| {
                let section = p.section().to_string_lossy();
                let hook = HOOKS
                    .iter()
                    .find(|h| h.section == section)
                    .with_context(|| format!("program section {section} is not in HOOKS"))?;
                Ok((p, hook.section))
            })
            .collect::<Result<_>>()?;
        let links = attach_to_cgroup(&cfg.cgroup, &attach)?;

        let queue = Rc::new(RefCell::new(Queue::default()));
        let sink = Rc::clone(&queue);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&capture.maps.events, move |record: &[u8]| {
                let mut q = sink.borrow_mut();
                if q.events.push_record(record).is_err() {
                    q.decode_errors += 1;
                }
                0
            })
            .context("registering the ring buffer")?;
        let ring = builder.build().context("creating the ring buffer reader")?;

        Ok(Capture {
            links,
            ring,
            queue,
            backlog: Cell::new(false),
            seen_until_ns: Cell::new(0),
            features,
            capture,
            _owner: owner,
        })
    }

    /// Waits up to `timeout` (the kernel wakes us early only when the ring is filling
    /// up; not at all while a backlog is left), then hands up to [`MAX_BATCH`] queued
    /// records over, decoded, in `out` (which must be empty: the caller clears it once
    /// processed, keeping its buffers for reuse). [`Capture::backlog`] says whether more
    /// are waiting.
    pub fn poll(&self, timeout: Duration, out: &mut EventBatch) -> Result<()> {
        if !self.backlog.get() && !timeout.is_zero() {
            self.wait(timeout)?;
        }
        // Records written without a wakeup count too: consume whatever is there. The
        // clock is read first: a packet stamped before it is in the ring by now.
        let drained_at = crate::signals::monotonic_ns();
        let n = self.ring.consume_raw_n(MAX_BATCH);
        if n < 0 {
            return Err(std::io::Error::from_raw_os_error(-n)).context("reading the ring buffer");
        }
        self.backlog.set(n as usize >= MAX_BATCH);
        let mut q = self.queue.borrow_mut();
        debug_assert!(out.is_empty(), "poll into a batch not yet processed");
        // Swap batches: the caller gets the records, the ring gets back the spare slots
        // (and any packet whose continuations are still being written).
        std::mem::swap(out, &mut q.events);
        q.events.clear();
        out.hold_back_open(&mut q.events);
        let seen = event::seen_until(drained_at, self.backlog.get(), out, &q.events);
        self.seen_until_ns.set(self.seen_until_ns.get().max(seen));
        Ok(())
    }

    /// The time (CLOCK_MONOTONIC ns) up to which every packet has been handed over by
    /// [`Capture::poll`]. A query is a timeout only when it is older than the timeout
    /// at this time: reading the clock at expiry instead turned answered queries into
    /// timeouts whenever the analysis of a batch outlasted the timeout while their
    /// answers waited in the ring (seen on an emulated CPU: 2 s for one batch).
    pub fn seen_until_ns(&self) -> u64 {
        self.seen_until_ns.get()
    }

    /// Whether the last poll left records in the ring (it took [`MAX_BATCH`]).
    pub fn backlog(&self) -> bool {
        self.backlog.get()
    }

    /// Sleeps until the ring has records the kernel woke us for, or `timeout` passes.
    fn wait(&self, timeout: Duration) -> Result<()> {
        // SAFETY: the epoll descriptor belongs to `self.ring`, which outlives this call.
        let epoll = unsafe { BorrowedFd::borrow_raw(self.ring.epoll_fd()) };
        let mut fds = [PollFd::new(epoll, PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            // EINTR: a signal (Ctrl-C) arrived; the caller checks its flag.
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(e).context("waiting on the ring buffer"),
        }
    }

    /// Detaches every program. The maps stay readable, so the caller can drain the ring
    /// buffer and read counters that no longer move: `packets` then equals the records
    /// received plus the records lost.
    pub fn detach(&mut self) {
        self.links.clear();
    }

    /// What the kernel let the programs do (probed at start).
    pub fn features(&self) -> &KernelFeatures {
        &self.features
    }

    /// Records that failed to decode (should stay 0; counted, never silent).
    pub fn decode_errors(&self) -> u64 {
        self.queue.borrow().decode_errors
    }

    /// Reads the kernel-side counters.
    pub fn counters(&self) -> Result<KernelCounters> {
        use skel::capture::types::dnsdoc_counter as ctr;
        let read = |c: ctr| sum_percpu_counter(&self.capture.maps.counters, c.0);
        Ok(KernelCounters {
            packets: read(ctr::DNSDOC_CTR_PACKETS)?,
            dropped_ringbuf_full: read(ctr::DNSDOC_CTR_DROP_RINGBUF)?,
            dropped_load_error: read(ctr::DNSDOC_CTR_DROP_LOAD)?,
            owner_storage_full: read(ctr::DNSDOC_CTR_DROP_STORAGE)?,
        })
    }
}

/// Reads slot `idx` of a per-CPU array of u64 counters, summed over CPUs.
pub fn sum_percpu_counter(map: &dyn MapCore, idx: u32) -> Result<u64> {
    let vals = map
        .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
        .with_context(|| {
            format!(
                "reading BPF counter {idx} of map {}",
                map.name().to_string_lossy()
            )
        })?
        .unwrap_or_default();
    Ok(vals
        .iter()
        .map(|v| u64::from_ne_bytes(v[..8].try_into().expect("8-byte value")))
        .sum())
}

/// Ring buffer sizes must be a power of two and a multiple of the page size.
fn ring_size(bytes: u32) -> u32 {
    bytes.clamp(4096, 1 << 30).next_power_of_two()
}

/// Attaches programs to a cgroup as BPF links: they stay attached while the links live
/// and are detached when dropped or when the process dies, even by kill -9.
pub fn attach_to_cgroup(cgroup: &Path, progs: &[(&ProgramMut, &str)]) -> Result<Vec<Link>> {
    let dir = File::open(cgroup).with_context(|| format!("opening cgroup {}", cgroup.display()))?;
    progs
        .iter()
        .map(|(p, what)| {
            p.attach_cgroup(dir.as_raw_fd())
                .map_err(|e| unsupported(&format!("attaching {what} to {}", cgroup.display()), e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_header_matches_the_c_struct() {
        use skel::capture::types::dns_event;
        use std::mem::{offset_of, size_of};
        assert_eq!(size_of::<dns_event>(), event::HEADER_LEN);
        assert_eq!(offset_of!(dns_event, owner_comm), 32);
        assert_eq!(offset_of!(dns_event, saddr), 48);
        assert_eq!(offset_of!(dns_event, sport), 80);
        assert_eq!(offset_of!(dns_event, family), 84);
        assert_eq!(offset_of!(dns_event, tcp_seq), 88);
        assert_eq!(offset_of!(dns_event, payload_len), 92);
        assert_eq!(offset_of!(dns_event, captured_len), 96);
        assert_eq!(offset_of!(dns_event, chunk_off), 100);
    }

    #[test]
    fn per_message_owner_hooks_load_only_where_egress_cannot_name_the_sender() {
        let sections =
            |f: &KernelFeatures| -> Vec<&str> { hooks_for(f).iter().map(|h| h.section).collect() };
        let old = KernelFeatures {
            sock_addr_storage: true,
            ..KernelFeatures::default()
        };
        assert_eq!(sections(&old), HOOKS.map(|h| h.section).to_vec());
        let new = KernelFeatures {
            skb_current_task: true,
            ..old.clone()
        };
        let on_new = sections(&new);
        assert!(on_new.contains(&"cgroup/bind4") && on_new.contains(&"cgroup_skb/egress"));
        assert!(
            on_new.iter().all(|s| !PER_MESSAGE_HOOKS.contains(s)),
            "{on_new:?}"
        );
        let no_storage = sections(&KernelFeatures::default());
        assert!(
            no_storage.iter().all(|s| s.starts_with("cgroup_skb/")),
            "{no_storage:?}"
        );
        assert!(!no_storage.is_empty());
    }

    #[test]
    fn hooks_name_the_programs_sections() {
        let sections = |obj: &OpenObject| -> Vec<String> {
            obj.progs()
                .map(|p| p.section().to_string_lossy().into_owned())
                .collect()
        };
        let mut storage = ObjectStorage::default();
        let owner = OwnerSkelBuilder::default()
            .open(&mut storage.owner)
            .unwrap();
        let capture = CaptureSkelBuilder::default()
            .open(&mut storage.capture)
            .unwrap();
        let hooks: Vec<&str> = HOOKS.iter().map(|h| h.section).collect();
        assert_eq!(
            [
                sections(owner.open_object()),
                sections(capture.open_object())
            ]
            .concat(),
            hooks
        );
    }

    #[test]
    fn ring_sizes_are_powers_of_two() {
        assert_eq!(ring_size(1), 4096);
        assert_eq!(ring_size(5 << 20), 8 << 20);
        assert_eq!(ring_size(16 << 20), 16 << 20);
    }
}
