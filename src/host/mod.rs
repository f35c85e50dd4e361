//! Host facts, in one place and from maintained crates: /proc and cgroups (`procfs`,
//! behind [`ProcFs`], whose root tests can point at a fixture), capabilities (`caps`),
//! the kernel release and hostname (`nix`), Kubernetes pods from the node's own files
//! ([`kube`]) and processes' resolver configuration ([`ResolvConf`]). Below every other layer: capture, the
//! pipeline and the commands ask here.

pub mod coredns;
pub mod kube;
mod netstat;
mod proc;
mod resolv;

use caps::{CapSet, Capability};

use crate::exit::CollectError;

pub use netstat::{Conntrack, UdpCounters};
pub use proc::{ProcFs, ProcessInfo};
pub use resolv::ResolvConf;

/// What loading and attaching the probes needs, each for one reason: CAP_BPF loads
/// programs and creates maps, CAP_NET_ADMIN attaches cgroup programs, CAP_PERFMON lets
/// the owner hooks call `bpf_get_current_comm` (newer kernels refuse the helper without
/// it). CAP_SYS_ADMIN implies all three. Measured: exactly these work as an
/// unprivileged user (tests/privileges_live.rs); without CAP_PERFMON 6.18's verifier
/// rejects `owner_bind4`.
pub const PROBE_CAPABILITIES: [(Capability, &str); 3] = [
    (Capability::CAP_BPF, "CAP_BPF"),
    (Capability::CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    (Capability::CAP_PERFMON, "CAP_PERFMON"),
];

/// Before 5.11 the kernel charges BPF maps to RLIMIT_MEMLOCK (64 KiB by default), and
/// libbpf raises that limit, which takes CAP_SYS_RESOURCE: without it the ring buffer
/// cannot be created (EPERM). Found on 5.10 in the kernel matrix.
pub const MEMLOCK_CAPABILITY: (Capability, &str) =
    (Capability::CAP_SYS_RESOURCE, "CAP_SYS_RESOURCE");

/// Whether this kernel charges BPF memory to RLIMIT_MEMLOCK (before 5.11).
pub fn kernel_charges_memlock() -> bool {
    let release = kernel_release();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) < (5, 11)
}

/// What loading the probes needs on this kernel: [`PROBE_CAPABILITIES`], and before
/// 5.11 [`MEMLOCK_CAPABILITY`] too.
pub fn probe_capabilities() -> Vec<(Capability, &'static str)> {
    let mut caps = PROBE_CAPABILITIES.to_vec();
    if kernel_charges_memlock() {
        caps.push(MEMLOCK_CAPABILITY);
    }
    caps
}

/// Checks, before touching BPF, that we can load and attach the probes
/// ([`probe_capabilities`]); the error names what is missing, in one line.
pub fn check_privileges() -> Result<(), CollectError> {
    let has = |cap| caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false);
    // CAP_SYS_ADMIN implies the BPF ones, not CAP_SYS_RESOURCE.
    let admin = has(Capability::CAP_SYS_ADMIN);
    let needed = probe_capabilities();
    let missing: Vec<&str> = needed
        .iter()
        .filter(|&&(c, _)| !(has(c) || admin && c != Capability::CAP_SYS_RESOURCE))
        .map(|&(_, n)| n)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = needed.iter().map(|&(_, n)| n).collect();
    let setcap: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    Err(CollectError::NoPrivileges(format!(
        "loading the DNS probes needs {} (run as root, or grant {}, e.g. `setcap {}+ep dnsdoc`)",
        missing.join(" and "),
        names.join(", "),
        setcap.join(",")
    )))
}

/// Whether this process may read other users' `/proc/PID/fd` (CAP_SYS_PTRACE, which
/// root has): without it, sockets no hook named are attributed only among dnsdoc's own
/// user's processes.
pub fn can_read_all_fds() -> bool {
    caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_PTRACE).unwrap_or(false)
}

/// The kernel release (`uname -r`), for the snapshot and error messages.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// The host name, for the snapshot.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// The cgroup v2 mount point of the live system.
pub fn cgroup2_mount() -> Result<std::path::PathBuf, CollectError> {
    ProcFs::default().cgroup2_mount()
}

/// Resolves `--cgroup` on the live system (see [`ProcFs::resolve_cgroup`]).
pub fn resolve_cgroup(arg: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    ProcFs::default().resolve_cgroup(arg)
}

/// The cgroup v2 paths (as in /proc/PID/cgroup) of kernel cgroup ids, found by walking
/// the live cgroup2 mount: on cgroup v2 a cgroup's id is its directory's inode number.
/// For processes that exited before /proc could be read: their packets carry the id.
/// Ids whose cgroup is gone are left out.
pub fn cgroup_paths(ids: &[u64]) -> std::collections::HashMap<u64, String> {
    let mut out = std::collections::HashMap::new();
    let Ok(mount) = cgroup2_mount() else {
        return out;
    };
    let mut stack = vec![(mount.clone(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        if out.len() == ids.len() {
            break;
        }
        if let Ok(meta) = std::fs::metadata(&dir) {
            use std::os::unix::fs::MetadataExt;
            if ids.contains(&meta.ino()) {
                let rel = dir.strip_prefix(&mount).unwrap_or(&dir);
                out.insert(meta.ino(), format!("/{}", rel.display()));
            }
        }
        if depth >= 12 {
            continue;
        }
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.filter_map(Result::ok) {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push((e.path(), depth + 1));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_release_and_hostname_match_proc() {
        let proc = |f: &str| std::fs::read_to_string(f).unwrap().trim().to_string();
        assert_eq!(kernel_release(), proc("/proc/sys/kernel/osrelease"));
        assert_eq!(hostname(), proc("/proc/sys/kernel/hostname"));
    }

    #[test]
    fn cgroup_ids_are_directory_inodes() {
        use std::os::unix::fs::MetadataExt;
        let Ok(mount) = cgroup2_mount() else { return };
        let Some(mine) = ProcFs::default().self_cgroup() else {
            return;
        };
        let dir = mount.join(mine.trim_start_matches('/'));
        let id = std::fs::metadata(&dir).unwrap().ino();
        let paths = cgroup_paths(&[id, u64::MAX]);
        assert_eq!(paths.get(&id), Some(&mine));
        assert_eq!(paths.len(), 1);
    }

    #[test]
    fn privileges_follow_the_effective_capabilities() {
        let eff = caps::read(None, CapSet::Effective).unwrap();
        let expected = eff.contains(&Capability::CAP_SYS_ADMIN)
            || PROBE_CAPABILITIES.iter().all(|(c, _)| eff.contains(c));
        assert_eq!(check_privileges().is_ok(), expected);
    }
}
