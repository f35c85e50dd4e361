//! /proc, read through the `procfs` crate, behind one type whose root is injectable so
//! tests can point it at a fixture tree instead of the live system.

use std::path::{Path, PathBuf};

use anyhow::Result;
use procfs::process::Process;

use crate::exit::{CollectError, UsageError};

/// Process facts looked up in /proc while the process was alive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    /// The process name (the main thread's: `dig`, not its `isc-net-0000` worker).
    pub comm: String,
    /// Its cgroup v2 path (`/system.slice/dnsmasq.service`).
    pub cgroup: Option<String>,
    /// Its resolver configuration (search list, ndots), from its own root.
    pub resolv: Option<super::ResolvConf>,
    /// The file name of its executable (`/proc/PID/exe`), when readable: says what a
    /// server is when its comm was renamed.
    pub exe: Option<String>,
}

/// A /proc tree: the live one, or a fixture.
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> Self {
        ProcFs::at("/proc")
    }
}

impl ProcFs {
    /// A /proc tree rooted at `root` (the live system's is `/proc`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        ProcFs { root: root.into() }
    }

    fn process(&self, pid: &str) -> Option<Process> {
        Process::new_with_root(self.root.join(pid)).ok()
    }

    /// Name and cgroup of a process; None when it is gone.
    pub fn process_info(&self, tgid: u32) -> Option<ProcessInfo> {
        let p = self.process(&tgid.to_string())?;
        let comm = p.stat().ok()?.comm;
        Some(ProcessInfo {
            comm,
            cgroup: cgroup_v2_of(&p),
            // Through the magic link, so a container's or mount namespace's own file.
            resolv: super::ResolvConf::read(
                &self
                    .root
                    .join(tgid.to_string())
                    .join("root/etc/resolv.conf"),
            ),
            exe: p
                .exe()
                .ok()
                .and_then(|e| e.file_name().map(|n| n.to_string_lossy().into_owned())),
        })
    }

    /// This process's cgroup v2 path.
    pub fn self_cgroup(&self) -> Option<String> {
        cgroup_v2_of(&self.process("self")?)
    }

    /// The cgroup v2 mount point, from this process's mountinfo (hybrid hosts mount it
    /// at /sys/fs/cgroup/unified, unified hosts at /sys/fs/cgroup: never hard-code one).
    pub fn cgroup2_mount(&self) -> Result<PathBuf, CollectError> {
        self.cgroup2_mounts()?.into_iter().next().ok_or_else(|| {
            CollectError::NoCgroup2(
                "no cgroup2 filesystem is mounted (see /proc/self/mountinfo)".into(),
            )
        })
    }

    /// Every cgroup2 mount point, in mount order (a container may see the node's
    /// hierarchy mounted a second time, e.g. at /host/sys/fs/cgroup).
    fn cgroup2_mounts(&self) -> Result<Vec<PathBuf>, CollectError> {
        let me = self.process("self").ok_or_else(|| {
            CollectError::NoCgroup2(format!("cannot read {}/self", self.root.display()))
        })?;
        let mounts = me
            .mountinfo()
            .map_err(|e| CollectError::NoCgroup2(format!("cannot read the mount table: {e}")))?;
        Ok(mounts
            .into_iter()
            .filter(|m| m.fs_type == "cgroup2")
            .map(|m| m.mount_point)
            .collect())
    }

    /// Resolves `--cgroup`: an absolute path under the cgroup2 mount, or a path relative
    /// to it (`system.slice/dnsmasq.service`, `/kubepods/pod123` as written in
    /// /proc/PID/cgroup). None means the whole machine: the mount itself.
    pub fn resolve_cgroup(&self, arg: Option<&Path>) -> Result<PathBuf> {
        let root = self.cgroup2_mount()?;
        let Some(arg) = arg else { return Ok(root) };
        // An absolute path on another cgroup2 mount (the node's root mounted into a pod)
        // is taken as written.
        let elsewhere = || {
            self.cgroup2_mounts()
                .is_ok_and(|ms| ms.iter().any(|m| arg.starts_with(m)))
        };
        let candidate = if arg.starts_with(&root) || elsewhere() {
            arg.to_path_buf()
        } else {
            root.join(arg.strip_prefix("/").unwrap_or(arg))
        };
        if let Some(v1) = self.cgroup_v1_mount_of(arg) {
            return Err(UsageError(format!(
                "--cgroup {}: is a cgroup v1 directory (the {v1} hierarchy); dnsdoc's probes \
                 attach to cgroup v2 only: name the same group under the cgroup2 mount {}",
                arg.display(),
                root.display()
            ))
            .into());
        }
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

    /// The cgroup v1 hierarchy (its mount point) `path` lies in, if it is an absolute
    /// path under a `cgroup` (v1) mount.
    fn cgroup_v1_mount_of(&self, path: &Path) -> Option<String> {
        let mounts = self.process("self")?.mountinfo().ok()?;
        mounts
            .into_iter()
            .filter(|m| m.fs_type == "cgroup")
            .find(|m| path.is_absolute() && path.starts_with(&m.mount_point))
            .map(|m| m.mount_point.display().to_string())
    }

    /// True when this process lives in `cgroup` (a path under the mount) or below it.
    pub fn self_in_cgroup(&self, cgroup: &Path) -> bool {
        let (Ok(mount), Some(mine)) = (self.cgroup2_mount(), self.self_cgroup()) else {
            return false;
        };
        mount.join(mine.trim_start_matches('/')).starts_with(cgroup)
    }
}

/// The v2 entry of /proc/PID/cgroup: hierarchy id 0, `0::/path`.
fn cgroup_v2_of(p: &Process) -> Option<String> {
    p.cgroups()
        .ok()?
        .into_iter()
        .find(|c| c.hierarchy == 0)
        .map(|c| c.pathname)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture /proc with one process (42), which `self` links to, in a hybrid
    /// cgroup layout.
    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("42", dir.path().join("self")).unwrap();
        {
            let p = dir.path().join("42");
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(
                p.join("stat"),
                "42 (dnsmasq) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 100 1000 10 \
                 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
            )
            .unwrap();
            std::fs::write(
                p.join("cgroup"),
                "4:memory:/a/b\n1:cpu:/\n0::/system.slice/dnsmasq.service\n",
            )
            .unwrap();
            // /proc/PID/root is the process's root directory.
            std::fs::create_dir_all(p.join("root/etc")).unwrap();
            std::fs::write(
                p.join("root/etc/resolv.conf"),
                "search example.test\noptions ndots:2\n",
            )
            .unwrap();
            std::fs::write(
                p.join("mountinfo"),
                "25 1 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro\n\
                 30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                 31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                 32 1 0:26 / /host/sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn reads_name_cgroup_and_mount_from_a_fixture_tree() {
        let dir = fixture();
        let proc = ProcFs::at(dir.path());
        assert_eq!(
            proc.process_info(42),
            Some(ProcessInfo {
                comm: "dnsmasq".into(),
                cgroup: Some("/system.slice/dnsmasq.service".into()),
                resolv: Some(crate::host::ResolvConf {
                    search: vec!["example.test".into()],
                    ndots: 2,
                }),
                exe: None,
            })
        );
        assert_eq!(proc.process_info(7), None, "a process that is gone");
        assert_eq!(
            proc.cgroup2_mount().unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified")
        );
        assert!(proc.self_in_cgroup(Path::new("/sys/fs/cgroup/unified/system.slice")));
        assert!(!proc.self_in_cgroup(Path::new("/sys/fs/cgroup/unified/user.slice")));
        assert_eq!(
            proc.cgroup2_mounts().unwrap(),
            [
                PathBuf::from("/sys/fs/cgroup/unified"),
                PathBuf::from("/host/sys/fs/cgroup")
            ]
        );
    }

    #[test]
    fn reads_our_own_process() {
        let proc = ProcFs::default();
        let me = proc
            .process_info(std::process::id())
            .expect("our own /proc entry");
        assert!(!me.comm.is_empty());
        assert!(proc.process_info(u32::MAX).is_none());
    }
}
