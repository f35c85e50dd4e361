//! Which BPF programs are attached to a cgroup's skb hooks (BPF_PROG_QUERY).
//!
//! `chaos --verify` uses it to start the load only once the capture is attached, and the
//! tests use it to prove that the dns-loss fault is gone after dnsdoc ends, even after
//! SIGKILL, without depending on bpftool.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};
use libbpf_rs::libbpf_sys;
use libbpf_rs::query::ProgInfoIter;

/// One program attached directly to a cgroup (not inherited from an ancestor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedProgram {
    pub id: u32,
    /// The program's name as loaded (at most 15 bytes).
    pub name: String,
    /// "ingress" or "egress".
    pub hook: &'static str,
}

/// Lists the programs attached to `cgroup`'s cgroup_skb ingress and egress hooks.
pub fn cgroup_skb_programs(cgroup: &Path) -> Result<Vec<AttachedProgram>> {
    let dir = File::open(cgroup).with_context(|| format!("opening cgroup {}", cgroup.display()))?;
    let mut found = Vec::new();
    for (hook, attach_type) in [
        ("ingress", libbpf_sys::BPF_CGROUP_INET_INGRESS),
        ("egress", libbpf_sys::BPF_CGROUP_INET_EGRESS),
    ] {
        for id in query(dir.as_raw_fd(), attach_type)
            .with_context(|| format!("querying {hook} programs of {}", cgroup.display()))?
        {
            found.push(AttachedProgram {
                id,
                name: String::new(),
                hook,
            });
        }
    }
    if !found.is_empty() {
        let names: HashMap<u32, String> = ProgInfoIter::default()
            .map(|p| (p.id, p.name.to_string_lossy().into_owned()))
            .collect();
        for p in &mut found {
            if let Some(n) = names.get(&p.id) {
                p.name = n.clone();
            }
        }
    }
    Ok(found)
}

fn query(fd: i32, attach_type: libbpf_sys::bpf_attach_type) -> std::io::Result<Vec<u32>> {
    let mut cap = 64usize;
    loop {
        let mut ids = vec![0u32; cap];
        let mut cnt = cap as u32;
        let mut flags = 0u32;
        // SAFETY: `ids` has room for `cnt` ids and every pointer outlives the call; the
        // kernel writes at most `cnt` ids and stores the real count in `cnt`.
        let rc = unsafe {
            libbpf_sys::bpf_prog_query(fd, attach_type, 0, &mut flags, ids.as_mut_ptr(), &mut cnt)
        };
        if rc == 0 {
            ids.truncate(cnt as usize);
            return Ok(ids);
        }
        let err = std::io::Error::from_raw_os_error(-rc);
        // ENOSPC: more programs than room; the kernel told us how many.
        if err.raw_os_error() == Some(libc::ENOSPC) && cap < 65536 {
            cap = (cnt as usize).max(cap * 2);
            continue;
        }
        return Err(err);
    }
}
