//! Process facts from /proc, read once per process while it is still alive.

use std::fs;

/// Process facts looked up in /proc while the process was alive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    pub comm: String,
    pub cgroup: Option<String>,
}

/// Reads the process name (/proc/PID/comm: the main thread's name, `dig` rather than
/// its `isc-net-0000` worker) and its cgroup v2 path. None when the process is gone.
pub fn lookup(tgid: u32) -> Option<ProcessInfo> {
    let comm = fs::read_to_string(format!("/proc/{tgid}/comm")).ok()?;
    let cgroup = fs::read_to_string(format!("/proc/{tgid}/cgroup"))
        .ok()
        .and_then(|s| cgroup_v2_path(&s));
    Some(ProcessInfo {
        comm: comm.trim_end().to_string(),
        cgroup,
    })
}

/// The v2 entry of /proc/PID/cgroup is the line with hierarchy id 0: `0::/path`.
fn cgroup_v2_path(s: &str) -> Option<String> {
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_v2_line() {
        let hybrid = "4:memory:/a/b\n1:cpu:/\n0::/system.slice/dnsmasq.service\n";
        assert_eq!(
            cgroup_v2_path(hybrid).as_deref(),
            Some("/system.slice/dnsmasq.service")
        );
        assert_eq!(cgroup_v2_path("4:memory:/x\n"), None);
    }

    #[test]
    fn reads_our_own_process() {
        let me = lookup(std::process::id()).expect("our own /proc entry");
        assert!(!me.comm.is_empty());
        assert!(lookup(u32::MAX).is_none());
    }
}
