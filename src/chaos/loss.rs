//! The dns-loss fault: bpf/loss.bpf.c attached to a cgroup drops a random fraction of
//! the DNS packets to or from one target.
//!
//! Both programs are attached with BPF links owned by [`LossFault`]. The kernel detaches
//! a link when its last file descriptor closes, so dropping the fault, returning early
//! on an error, exiting, or being killed with SIGKILL all remove it: nothing is pinned
//! and nothing can outlive dnsdoc.

use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, OpenObject};
use serde::Serialize;

use super::skel::loss::{LossSkel, LossSkelBuilder};
use crate::capture::{attach_to_cgroup, sum_percpu_counter, unsupported, verifier};

/// Storage the BPF object borrows; lives on the caller's stack while the fault is active.
pub struct LossStorage(MaybeUninit<OpenObject>);

impl Default for LossStorage {
    fn default() -> Self {
        LossStorage(MaybeUninit::uninit())
    }
}

/// What the fault did, summed over CPUs. Mirrors `enum loss_counter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LossCounters {
    /// DNS packets to or from the target judged where they were sent.
    pub egress_matched: u64,
    pub egress_dropped: u64,
    /// DNS packets to or from the target judged on arrival from another machine.
    pub ingress_matched: u64,
    pub ingress_dropped: u64,
}

impl LossCounters {
    pub fn matched(&self) -> u64 {
        self.egress_matched + self.ingress_matched
    }

    pub fn dropped(&self) -> u64 {
        self.egress_dropped + self.ingress_dropped
    }
}

/// An active packet-loss fault. Dropping it removes the fault at once.
pub struct LossFault<'obj> {
    // Field order is drop order: detach first, then unload.
    _links: Vec<Link>,
    skel: LossSkel<'obj>,
}

/// The .rodata threshold for a drop fraction: drop when a uniform u32 is below it.
/// Returns (threshold, drop_all); a fraction of 1 cannot be expressed as a threshold.
pub fn threshold(fraction: f64) -> (u32, bool) {
    if fraction >= 1.0 {
        return (u32::MAX, true);
    }
    let t = (fraction.max(0.0) * 4_294_967_296.0).round();
    (t.min(u32::MAX as f64) as u32, false)
}

impl<'obj> LossFault<'obj> {
    /// Loads the program for `target` and `fraction` (0 < fraction <= 1) and attaches it
    /// to the ingress and egress hooks of `cgroup` (a cgroup v2 directory).
    pub fn attach(
        target: SocketAddr,
        fraction: f64,
        cgroup: &Path,
        storage: &'obj mut LossStorage,
    ) -> Result<Self> {
        verifier::capture_log();
        let mut open = LossSkelBuilder::default()
            .open(&mut storage.0)
            .map_err(|e| unsupported("opening the loss program", e))?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .context("loss object has no .rodata")?;
        match target.ip().to_canonical() {
            IpAddr::V4(v4) => {
                ro.target_family = 4;
                ro.target_addr = [u32::from_ne_bytes(v4.octets()), 0, 0, 0];
            }
            IpAddr::V6(v6) => {
                ro.target_family = 6;
                let o = v6.octets();
                for (i, word) in ro.target_addr.iter_mut().enumerate() {
                    *word = u32::from_ne_bytes(o[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
                }
            }
        }
        ro.target_port = u32::from(target.port());
        let (t, all) = threshold(fraction);
        ro.drop_threshold = t;
        ro.drop_all = u32::from(all);
        let skel = open
            .load()
            .map_err(|e| unsupported("loading the loss program", e))?;

        let links = attach_to_cgroup(
            cgroup,
            &[
                (&skel.progs.loss_egress, "cgroup_skb/egress"),
                (&skel.progs.loss_ingress, "cgroup_skb/ingress"),
            ],
        )?;
        Ok(LossFault {
            _links: links,
            skel,
        })
    }

    /// Reads what the fault has matched and dropped so far.
    pub fn counters(&self) -> Result<LossCounters> {
        let read = |idx| sum_percpu_counter(&self.skel.maps.counters, idx);
        Ok(LossCounters {
            egress_matched: read(0)?,
            egress_dropped: read(1)?,
            ingress_matched: read(2)?,
            ingress_dropped: read(3)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_cover_the_whole_range() {
        assert_eq!(threshold(0.0), (0, false));
        assert_eq!(threshold(0.5), (1 << 31, false));
        assert_eq!(threshold(0.25), (1 << 30, false));
        assert_eq!(threshold(1.0), (u32::MAX, true));
        // Just below 1 must not wrap around to 0.
        assert_eq!(threshold(0.999_999_999_99), (u32::MAX, false));
    }
}
