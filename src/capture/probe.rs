//! What this kernel lets dnsdoc's programs do, asked of the kernel itself (libbpf's
//! probe API loads a tiny program per question), so one binary runs from 5.10 to the
//! newest kernel. The answers go into the programs as `const volatile` flags, where the
//! verifier prunes what the kernel lacks, and into the snapshot and `dnsdoc version`.

use serde::{Deserialize, Serialize};

use crate::host;

/// Kernel facts that change what the capture can do. All false when not probed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KernelFeatures {
    /// `uname -r`.
    pub release: String,
    /// BPF ring buffers (5.8+): without them nothing can be captured.
    pub ringbuf: bool,
    /// cgroup_skb programs may call bpf_get_current_pid_tgid *and* _comm (6.18 yes;
    /// 5.10 and 6.1 refuse both, 6.12 refuses comm). With them, egress learns the owner
    /// of a socket opened before dnsdoc started.
    pub skb_current_task: bool,
    /// sock_addr programs (bind/connect/sendmsg/recvmsg hooks) may use socket storage:
    /// the kernel-side record of who owns each DNS socket.
    pub sock_addr_storage: bool,
}

impl KernelFeatures {
    /// Asks the running kernel. Needs the privileges to load BPF programs; without them
    /// every answer is false.
    pub fn probe() -> Self {
        use libbpf_sys as sys;
        KernelFeatures {
            release: host::kernel_release(),
            ringbuf: map_type(sys::BPF_MAP_TYPE_RINGBUF),
            skb_current_task: helper(
                sys::BPF_PROG_TYPE_CGROUP_SKB,
                sys::BPF_FUNC_get_current_pid_tgid,
            ) && helper(
                sys::BPF_PROG_TYPE_CGROUP_SKB,
                sys::BPF_FUNC_get_current_comm,
            ),
            sock_addr_storage: helper(
                sys::BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                sys::BPF_FUNC_sk_storage_get,
            ) && helper(
                sys::BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                sys::BPF_FUNC_get_current_pid_tgid,
            ),
        }
    }

    /// What the capture does differently on this kernel, in words for the snapshot.
    pub fn degraded(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.sock_addr_storage {
            out.push(
                "socket owners are not recorded in the kernel (sock_addr programs cannot use \
                 socket storage here): every owner is learned from sock_diag and /proc"
                    .to_string(),
            );
        }
        if !self.skb_current_task {
            out.push(
                "owners of sockets opened before dnsdoc started (and the sockets their TCP \
                 listeners accept) are learned from sock_diag and /proc, not in the kernel \
                 (cgroup_skb cannot read the current task here)"
                    .to_string(),
            );
        }
        out
    }
}

/// 1 = supported, 0 = not, < 0 = could not tell (no privileges): treated as not.
fn helper(prog: libbpf_sys::bpf_prog_type, func: libbpf_sys::bpf_func_id) -> bool {
    // SAFETY: plain FFI call with integer arguments; NULL opts is documented as allowed.
    unsafe { libbpf_sys::libbpf_probe_bpf_helper(prog, func, std::ptr::null()) == 1 }
}

fn map_type(map: libbpf_sys::bpf_map_type) -> bool {
    // SAFETY: plain FFI call with an integer argument; NULL opts is documented as allowed.
    unsafe { libbpf_sys::libbpf_probe_bpf_map_type(map, std::ptr::null()) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_feature_is_said() {
        let none = KernelFeatures::default();
        assert_eq!(none.degraded().len(), 2);
        let all = KernelFeatures {
            release: "x".into(),
            ringbuf: true,
            skb_current_task: true,
            sock_addr_storage: true,
        };
        assert!(all.degraded().is_empty());
    }
}
