//! Per-program BPF run time from the kernel's own counters (run_cnt, run_time_ns in
//! bpf_prog_info), which only count while kernel.bpf_stats_enabled is 1. Read through
//! libbpf-sys (BPF_PROG_QUERY, BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD), so no
//! bpftool is needed.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// kernel.bpf_stats_enabled switched on while this lives, then back to what it was
/// (also when the bench panics: the guard drops while unwinding). The stats cost two
/// clock reads per program run, so they stay off for anything that measures throughput.
pub struct Enabled {
    previous: String,
}

impl Enabled {
    pub fn switch_on() -> Self {
        let previous = std::fs::read_to_string(SYSCTL)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| panic!("read {SYSCTL}: {e}"));
        std::fs::write(SYSCTL, "1").unwrap_or_else(|e| panic!("write {SYSCTL}: {e}"));
        Enabled { previous }
    }
}

impl Drop for Enabled {
    fn drop(&mut self) {
        let value = if self.previous == "1" { "1" } else { "0" };
        if let Err(e) = std::fs::write(SYSCTL, value) {
            eprintln!("could not set {SYSCTL} back to {value}: {e}");
        }
    }
}

/// True when kernel.bpf_stats_enabled is 1 (someone else switched it on).
pub fn already_on() -> bool {
    std::fs::read_to_string(SYSCTL).is_ok_and(|s| s.trim() == "1")
}

/// Ids of the BPF programs attached directly to a cgroup, on every socket hook a cgroup
/// has (so a hook dnsdoc adds later is counted too). In a cgroup of the bench's own,
/// these are dnsdoc's programs and nobody else's.
pub fn attached_programs(cgroup: &Path) -> Vec<u32> {
    use libbpf_sys::*;
    let dir = std::fs::File::open(cgroup).expect("open cgroup");
    let mut all = Vec::new();
    for attach_type in [
        BPF_CGROUP_INET_INGRESS,
        BPF_CGROUP_INET_EGRESS,
        BPF_CGROUP_INET_SOCK_CREATE,
        BPF_CGROUP_INET_SOCK_RELEASE,
        BPF_CGROUP_SOCK_OPS,
        BPF_CGROUP_INET4_BIND,
        BPF_CGROUP_INET6_BIND,
        BPF_CGROUP_INET4_POST_BIND,
        BPF_CGROUP_INET6_POST_BIND,
        BPF_CGROUP_INET4_CONNECT,
        BPF_CGROUP_INET6_CONNECT,
        BPF_CGROUP_UDP4_SENDMSG,
        BPF_CGROUP_UDP6_SENDMSG,
        BPF_CGROUP_UDP4_RECVMSG,
        BPF_CGROUP_UDP6_RECVMSG,
        BPF_CGROUP_INET4_GETPEERNAME,
        BPF_CGROUP_INET6_GETPEERNAME,
        BPF_CGROUP_INET4_GETSOCKNAME,
        BPF_CGROUP_INET6_GETSOCKNAME,
        BPF_CGROUP_GETSOCKOPT,
        BPF_CGROUP_SETSOCKOPT,
    ] {
        let mut ids = [0u32; 64];
        let mut cnt = ids.len() as u32;
        let mut flags = 0u32;
        // SAFETY: the fd is open for the call; ids has room for `cnt` entries and the
        // kernel writes at most that many; flags and cnt are valid pointers.
        let rc = unsafe {
            bpf_prog_query(
                dir.as_raw_fd(),
                attach_type,
                0,
                &mut flags,
                ids.as_mut_ptr(),
                &mut cnt,
            )
        };
        if rc == 0 {
            all.extend_from_slice(&ids[..cnt as usize]);
        }
    }
    all
}

/// One program's counters.
#[derive(Debug, Clone)]
pub struct ProgStats {
    /// The program's name as the kernel keeps it (at most 15 characters).
    pub name: String,
    pub run_cnt: u64,
    pub run_time_ns: u64,
}

/// The counters of each program id that still exists.
pub fn read(ids: &[u32]) -> BTreeMap<u32, ProgStats> {
    let mut out = BTreeMap::new();
    for &id in ids {
        // SAFETY: no pointer arguments; a negative result is an error, not an fd.
        let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd < 0 {
            continue;
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of_val(&info) as u32;
        // SAFETY: info is a writable bpf_prog_info of `len` bytes; fd is open.
        let rc =
            unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
        if rc != 0 {
            continue;
        }
        let name = info
            .name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8 as char)
            .collect();
        out.insert(
            id,
            ProgStats {
                name,
                run_cnt: info.run_cnt,
                run_time_ns: info.run_time_ns,
            },
        );
    }
    out
}

/// (runs, ns) between two readings, per program name (programs of one name summed).
pub fn by_name(
    before: &BTreeMap<u32, ProgStats>,
    after: &BTreeMap<u32, ProgStats>,
) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for (id, a) in after {
        let (c0, n0) = before
            .get(id)
            .map_or((0, 0), |b| (b.run_cnt, b.run_time_ns));
        let e = out.entry(a.name.clone()).or_insert((0, 0));
        e.0 += a.run_cnt.saturating_sub(c0);
        e.1 += a.run_time_ns.saturating_sub(n0);
    }
    out
}
