//! Where to attach and whether we may: the cgroup v2 mount and the process capabilities.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::exit::{CollectError, UsageError};

/// Finds the cgroup v2 mount point from /proc/self/mounts (hybrid hosts mount it at
/// /sys/fs/cgroup/unified, unified hosts at /sys/fs/cgroup: never hard-code one).
pub fn cgroup2_mount() -> Result<PathBuf, CollectError> {
    let mounts = fs::read_to_string("/proc/self/mounts")
        .map_err(|e| CollectError::NoCgroup2(format!("cannot read /proc/self/mounts: {e}")))?;
    cgroup2_mount_in(&mounts).ok_or_else(|| {
        CollectError::NoCgroup2("no cgroup2 filesystem is mounted (see /proc/self/mounts)".into())
    })
}

fn cgroup2_mount_in(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let (_dev, dir, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(unescape_mount_path(dir)))
    })
}

/// /proc/self/mounts escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Resolves `--cgroup`: an absolute path under the cgroup2 mount, or a path relative to
/// it (`system.slice/dnsmasq.service`, `/kubepods/pod123` as written in /proc/PID/cgroup).
pub fn resolve_cgroup(arg: Option<&Path>) -> Result<PathBuf> {
    let root = cgroup2_mount()?;
    let Some(arg) = arg else { return Ok(root) };
    let candidate = if arg.starts_with(&root) {
        arg.to_path_buf()
    } else {
        root.join(arg.strip_prefix("/").unwrap_or(arg))
    };
    if !candidate.join("cgroup.procs").exists() {
        return Err(UsageError(format!(
            "--cgroup {}: not a cgroup v2 directory (looked for {}/cgroup.procs; the cgroup2 mount is {})",
            arg.display(),
            candidate.display(),
            root.display()
        ))
        .into());
    }
    Ok(candidate)
}

/// Capability bits from linux/capability.h.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Checks, before touching BPF, that we can load and attach cgroup programs: that needs
/// CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN, which implies both on these kernels).
pub fn check_privileges() -> Result<(), CollectError> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|e| CollectError::NoPrivileges(format!("cannot read /proc/self/status: {e}")))?;
    let eff = effective_caps(&status).unwrap_or(0);
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_NET_ADMIN)) {
        return Ok(());
    }
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_NET_ADMIN, "CAP_NET_ADMIN")]
        .iter()
        .filter(|(c, _)| !has(*c))
        .map(|(_, n)| *n)
        .collect();
    Err(CollectError::NoPrivileges(format!(
        "loading the DNS probes needs {} (run as root, or grant them with `setcap cap_bpf,cap_net_admin+ep`)",
        missing.join(" and ")
    )))
}

fn effective_caps(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// The host's kernel release, for the snapshot and error messages.
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_in_hybrid_and_unified_layouts() {
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                      cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(
            cgroup2_mount_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";
        assert_eq!(
            cgroup2_mount_in(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(cgroup2_mount_in("proc /proc proc rw 0 0\n"), None);
        let escaped = "cgroup2 /mnt/my\\040cg cgroup2 rw 0 0\n";
        assert_eq!(cgroup2_mount_in(escaped), Some(PathBuf::from("/mnt/my cg")));
    }

    #[test]
    fn reads_effective_capabilities() {
        let root = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_caps(root), Some(0x1ff_ffff_ffff));
        let user = "CapEff:\t0000000000000000\n";
        assert_eq!(effective_caps(user), Some(0));
        assert_eq!(effective_caps("nothing"), None);
    }
}
