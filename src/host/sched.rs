//! The CPU scheduling policy of one thread. dnsdoc's analysis thread runs at SCHED_IDLE
//! while a node is busy with DNS, so that it takes only CPU time the workload leaves
//! idle (see `pipeline::yield_cpu`). nix wraps no `sched_setscheduler`, so this calls
//! libc directly (the exception is listed in docs/ARCHITECTURE.md).

use std::io;

/// The two policies dnsdoc switches between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// SCHED_OTHER, nice unchanged: the default of every process.
    Normal,
    /// SCHED_IDLE: runs only when a CPU has nothing else to run.
    Idle,
}

/// The kernel's id of the calling thread (for [`set_policy`] from another thread).
pub fn current_tid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Sets the scheduling policy of thread `tid`. Switching back from SCHED_IDLE to
/// SCHED_OTHER needs no privilege on Linux >= 2.6.39.
pub fn set_policy(tid: i32, policy: Policy) -> io::Result<()> {
    let raw = match policy {
        Policy::Normal => libc::SCHED_OTHER,
        Policy::Idle => libc::SCHED_IDLE,
    };
    // Both policies take priority 0.
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; the kernel only
    // reads it. A wrong tid is reported as ESRCH, not undefined behaviour.
    let rc = unsafe { libc::sched_setscheduler(tid, raw, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The policy of thread `tid`, from the kernel (for tests and diagnostics).
pub fn policy(tid: i32) -> io::Result<Policy> {
    // SAFETY: sched_getscheduler only takes an id; errors come back as -1.
    let rc = unsafe { libc::sched_getscheduler(tid) };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        libc::SCHED_IDLE => Ok(Policy::Idle),
        _ => Ok(Policy::Normal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_can_go_idle_and_come_back() {
        // In a thread of its own, so the test harness's threads keep their policy.
        std::thread::spawn(|| {
            let tid = current_tid();
            set_policy(tid, Policy::Idle).unwrap();
            assert_eq!(policy(tid).unwrap(), Policy::Idle);
            set_policy(tid, Policy::Normal).unwrap();
            assert_eq!(policy(tid).unwrap(), Policy::Normal);
        })
        .join()
        .unwrap();
    }
}
