//! Harness for the live tests: a private cgroup, a real dnsmasq on loopback, real
//! clients, and `dnsdoc watch` scoped to that cgroup and port, so tests neither observe
//! nor disturb any DNS traffic but their own.
//!
//! One skip policy: tests that need BPF call [`require_bpf`], tests that need root but
//! not BPF [`require_root`], tests that need a cgroup v2 mount [`require_cgroup2`].
//! Without what they need they skip with a message and a line in [`SKIPPED_LOG`] (which
//! `make test` counts), unless DNSDOC_REQUIRE_BPF=1 (set by .ci/run), where they fail.
//!
//! The skip policy is here; the rest is one file each, re-exported: `cgroup` (the test
//! cgroup), `servers` (dnsmasq, unbound, free ports), `watch` (a capturing dnsdoc in
//! the background), `cli` (one-shot runs of dnsdoc, dig's status), `netns`, `pcap`
//! (capture files written byte by byte), `temp_dir`,
//! `rules` (built-in rules, rule fixtures). `kube` (Kubernetes fixtures) and `chaos`
//! (the harness of the chaos live tests) are used by their paths.
#![allow(dead_code)]

mod cgroup;
pub mod chaos;
mod cli;
pub mod kube;
mod netns;
mod pcap;
mod rules;
mod servers;
mod temp_dir;
mod watch;

// Each test binary (and bench) uses only some of them.
#[allow(unused_imports)]
pub use {cgroup::*, cli::*, netns::*, pcap::*, rules::*, servers::*, temp_dir::*, watch::*};

use std::io::Write;
use std::path::Path;

/// Where every skip is recorded, one line each: `target/skipped-live-tests` (the target
/// directory's `tmp` is CARGO_TARGET_TMPDIR). The Makefile's `test` target empties it
/// before `cargo test` and prints how many lines it has after.
pub const SKIPPED_LOG: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/../skipped-live-tests");

/// True when this process runs as root (effective uid 0). The one uid probe of the tests.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// True when the test may use BPF (root and a cgroup v2 mount). Otherwise skips (false),
/// or panics when DNSDOC_REQUIRE_BPF=1 says BPF tests must run.
pub fn require_bpf(test: &str) -> bool {
    if !is_root() {
        return skip(test, "needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)");
    }
    require_cgroup2(test)
}

/// True when the test runs as root. For tests that need root but not BPF (dropping
/// privileges with setpriv, ...); same policy as [`require_bpf`].
pub fn require_root(test: &str) -> bool {
    is_root() || skip(test, "needs root")
}

/// True when the machine has a cgroup v2 mount; same policy as [`require_bpf`].
pub fn require_cgroup2(test: &str) -> bool {
    dnsdoc::host::cgroup2_mount().is_ok() || skip(test, "needs a cgroup v2 mount")
}

/// The one way a test skips: a line on stderr and in [`SKIPPED_LOG`], or a panic when
/// DNSDOC_REQUIRE_BPF=1. Always false, for `if !require_...(..) { return; }`.
fn skip(test: &str, why: &str) -> bool {
    if std::env::var("DNSDOC_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("{test}: {why}, and DNSDOC_REQUIRE_BPF=1 says live tests must run");
    }
    eprintln!("SKIPPED {test}: {why} (set DNSDOC_REQUIRE_BPF=1 to make this a failure)");
    append_line(Path::new(SKIPPED_LOG), &format!("{test}: {why}"));
    false
}

/// Appends one line to a log file shared by parallel tests: one write(2) with O_APPEND,
/// so lines never interleave. Errors are ignored (the log is a courtesy).
fn append_line(path: &Path, line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// False when the test runs on an emulated CPU, where it cannot mean anything: the
/// kernel matrix (scripts/test-kernels.sh) boots kernels under qemu TCG, 10-50x slower
/// than native, and sets DNSDOC_EMULATED_CPU=1. Only tests whose assertion *is* a rate
/// or a latency (a flood that must degrade a server, a load that must reach its rate)
/// use this; they still run natively in `make test`. Never silent: the test's name and
/// `why` go to stderr and to the file named by DNSDOC_NATIVE_ONLY_LOG, which the matrix
/// prints in its summary.
pub fn require_native_speed(test: &str, why: &str) -> bool {
    if std::env::var("DNSDOC_EMULATED_CPU").as_deref() != Ok("1") {
        return true;
    }
    let line = format!("NEEDS NATIVE SPEED {test}: {why}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("DNSDOC_NATIVE_ONLY_LOG") {
        append_line(Path::new(&path), &line);
    }
    false
}
