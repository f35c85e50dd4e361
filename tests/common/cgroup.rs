//! A private cgroup v2 directory per test, and commands that start inside one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A cgroup v2 directory of our own, removed (with its processes) on drop.
pub struct TestCgroup {
    pub path: PathBuf,
}

impl TestCgroup {
    pub fn new(name: &str) -> Self {
        let root = dnsdoc::host::cgroup2_mount().expect("cgroup2 mount");
        let path = root.join(format!(
            "dnsdoc-test-{}-{}-{}",
            name,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TestCgroup { path }
    }

    /// A command that runs `program args...` inside this cgroup (its pid is the
    /// program's: `sh` moves itself into the cgroup, then execs).
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        command_in_cgroup(&self.path, program, args)
    }

    /// Runs a command to completion inside the cgroup.
    pub fn run(&self, program: &str, args: &[&str]) -> (u32, Output) {
        let child = self
            .command(program, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let pid = child.id();
        let out = child.wait_with_output().expect("wait");
        (pid, out)
    }
}

impl AsRef<Path> for TestCgroup {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// A command that runs `program args...` inside the cgroup directory `dir` (its pid is
/// the program's: `sh` moves itself into the cgroup, then execs).
pub fn command_in_cgroup(dir: &Path, program: &str, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("echo $$ > \"$0\" && exec \"$@\"")
        .arg(dir.join("cgroup.procs"))
        .arg(program)
        .args(args);
    c
}

/// Programs dnsdoc attaches on this kernel: one per hook it loads (see `hooks_for`).
pub fn expected_programs() -> usize {
    dnsdoc::capture::hooks_for(&dnsdoc::capture::KernelFeatures::probe()).len()
}

impl TestCgroup {
    /// BPF programs attached to this cgroup, as the kernel reports them (BPF_PROG_QUERY
    /// for every hook dnsdoc uses). 0 means dnsdoc left nothing behind.
    pub fn attached_programs(&self) -> u32 {
        use std::os::fd::AsRawFd;
        let dir = std::fs::File::open(&self.path).expect("open cgroup");
        let mut total = 0;
        for attach_type in dnsdoc::capture::HOOKS.map(|h| h.attach_type) {
            let mut ids = [0u32; 64];
            let mut cnt = ids.len() as u32;
            let mut flags = 0u32;
            // SAFETY: the fd is open for the call; ids has room for `cnt` entries and
            // the kernel writes at most that many; flags and cnt are valid pointers.
            let rc = unsafe {
                libbpf_sys::bpf_prog_query(
                    dir.as_raw_fd(),
                    attach_type,
                    0,
                    &mut flags,
                    ids.as_mut_ptr(),
                    &mut cnt,
                )
            };
            assert_eq!(rc, 0, "BPF_PROG_QUERY type {attach_type} failed: {rc}");
            total += cnt;
        }
        total
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path.join("cgroup.kill"), "1");
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
