//! `dnsdoc chaos --induce dns-flood` against the real kernel and a real dnsmasq on
//! loopback: a flood of a server with a CPU budget makes the paired rules fire with the
//! built-in thresholds, a gentle flood of a healthy server says the target held, and the
//! healthy baseline of the same length and shape fires none of them. The other
//! scenarios are in chaos_live.rs and chaos_loss_live.rs.
//!
//! Everything runs in a private cgroup (dnsmasq and dnsdoc both inside, --cgroup aimed
//! at it), so neither the fault nor the capture touches anything else on the machine.
//! The tests of this file run one at a time: a flood measures latency on two shared
//! cores, and a parallel test would skew it. (cargo runs test binaries one after
//! another, so the chaos binaries never overlap either.)

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::chaos::*;
use common::*;
use serde_json::Value;

/// A child cgroup of a test cgroup, killed and removed on drop (before its parent).
struct Leaf(PathBuf);

impl Leaf {
    fn new(parent: &TestCgroup, name: &str) -> Leaf {
        let p = parent.path.join(name);
        std::fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        Leaf(p)
    }
}

impl Drop for Leaf {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The server's CPU budget: 50 ms of CPU per 1 s period (5 % of a core), like a
/// CoreDNS pod's `limits.cpu`. Measured on a 2-core VM: dnsmasq spends ~75 µs per query
/// at the baseline's 200 q/s (a wake-up per query), 1.5 % of a core. The budget leaves
/// the baseline 3x headroom (p99 ~1 ms), while the flood runs it dry early in each
/// period and queues for the rest (wire p99 ~900 ms, drops). A budget of 1 ms per
/// 100 ms, used before, throttled the baseline itself: its p99 sat at the rule's 100 ms
/// and failed CI now and then.
const QUOTA_US: u32 = 50_000;
const PERIOD_US: u32 = 1_000_000;

/// A CPU budget for one process: QUOTA_US of CPU time per PERIOD_US. cgroup v1 `cpu`
/// controller (hybrid hosts such as CI) or cgroup v2 `cpu.max`, whichever this host has.
enum CpuBudget {
    /// A v1 cpu cgroup; the process stays in its v2 cgroup too.
    V1(PathBuf),
    /// The v2 leaf itself carries cpu.max.
    V2,
}

impl CpuBudget {
    /// Puts `pid` (already in `leaf`) under the budget.
    fn apply(leaf: &Leaf, parent: &TestCgroup, pid: u32) -> CpuBudget {
        let v2_root = dnsdoc::host::cgroup2_mount().unwrap();
        let v2_has_cpu = std::fs::read_to_string(v2_root.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "cpu");
        if v2_has_cpu {
            // cpu.max needs the controller enabled down to the leaf's parent.
            for dir in [v2_root.as_path(), parent.path.as_path()] {
                std::fs::write(dir.join("cgroup.subtree_control"), "+cpu")
                    .unwrap_or_else(|e| panic!("enable cpu in {}: {e}", dir.display()));
            }
            std::fs::write(leaf.0.join("cpu.max"), format!("{QUOTA_US} {PERIOD_US}")).unwrap();
            return CpuBudget::V2;
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let v1 = mounts
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 3 && f[2] == "cgroup" && f[3].split(',').any(|o| o == "cpu"))
                    .then(|| PathBuf::from(f[1]))
            })
            .expect("the flood test needs a cpu controller (cgroup v1 cpu or v2 cpu.max)");
        let dir = v1.join(format!("dnsdoc-test-cpu-{}-{}", std::process::id(), pid));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string()).unwrap();
        std::fs::write(dir.join("cpu.cfs_quota_us"), QUOTA_US.to_string()).unwrap();
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
        CpuBudget::V1(dir)
    }
}

impl Drop for CpuBudget {
    fn drop(&mut self) {
        if let CpuBudget::V1(dir) = self {
            for _ in 0..100 {
                if std::fs::remove_dir(&*dir).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A server under the CPU budget, and the cgroup dnsdoc runs in.
/// Both leaves sit under one test cgroup, which is what --cgroup names.
struct SlowServer {
    // Drop order: the server process, then its budget, then the leaves.
    _dnsmasq: Guard,
    _budget: CpuBudget,
    client: Leaf,
    _server: Leaf,
}

fn slow_server(cg: &TestCgroup, port: u16) -> SlowServer {
    let server = Leaf::new(cg, "server");
    let client = Leaf::new(cg, "client");
    let dnsmasq = start_cluster_dns(&server.0, port);
    let budget = CpuBudget::apply(&server, cg, dnsmasq.0.id());
    SlowServer {
        _dnsmasq: dnsmasq,
        _budget: budget,
        client,
        _server: server,
    }
}

/// Runs chaos from the client leaf with --cgroup naming the parent (both leaves).
fn chaos_from(leaf: &Leaf, cg: &TestCgroup, port: u16, args: &[&str]) -> Run {
    chaos_in(&leaf.0, &cg.path, port, args)
}

#[test]
fn dns_flood_on_a_cpu_limited_server_fires_latency_and_failures() {
    if !require_bpf("dns_flood_on_a_cpu_limited_server_fires_latency_and_failures")
        || !require_native_speed(
            "dns_flood_on_a_cpu_limited_server_fires_latency_and_failures",
            "asserts that a flood of >1000 lookups in 6 s degrades a CPU-limited server",
        )
    {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("flood");
    let port = free_port();
    let srv = slow_server(&cg, port);
    let r = chaos_from(
        &srv.client,
        &cg,
        port,
        &["--induce", "dns-flood", "--duration", "6s", "--verify"],
    );
    eprintln!("dns-flood: {}", r.summary());
    assert_eq!(r.code, Some(0), "{}\n{}", r.summary(), r.stderr);
    assert_eq!(r.report["verify"]["passed"], true);
    for rule in ["dns_high_latency", "dns_failure_rate"] {
        let c = r.check(rule);
        assert_eq!(c["pass"], true, "{rule}: {c}");
        assert_eq!(c["fired"], true);
    }
    // Past the built-in WARNING thresholds, as dnsdoc itself measured them.
    let s = r.snapshot();
    let p99_warning = builtin_rule("dns_high_latency").warning.unwrap();
    let failure_warning = builtin_rule("dns_failure_rate").warning.unwrap();
    assert!(s["latency"]["p99_ms"].as_f64().unwrap() > p99_warning);
    assert!(s["totals"]["failure_ratio"].as_f64().unwrap() > failure_warning);
    assert_eq!(s["capture"]["dropped"]["total"], 0, "the capture kept up");
    // Only the scenario's own queries count: dnsdoc saw at least every lookup.
    let sent = r.report["load"]["sent"].as_u64().unwrap();
    assert!(sent > 1000, "a flood: {}", r.summary());
    assert!(s["totals"]["queries"].as_u64().unwrap() >= sent);
    let procs = s["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1, "only dnsdoc itself: {procs:?}");
    assert_eq!(procs[0]["comm"], "dnsdoc");
}

#[test]
fn a_flood_the_target_absorbs_says_the_target_held() {
    if !require_bpf("a_flood_the_target_absorbs_says_the_target_held") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("held");
    let port = free_port();
    let _dnsmasq = start_cluster_dns(&cg.path, port);
    // A gentle "flood" of a healthy loopback dnsmasq: p99 stays far below the rule's
    // threshold, so dns_high_latency does not fire, and the report says why.
    let r = chaos(
        &cg.path,
        port,
        &[
            "--induce",
            "dns-flood",
            "--duration",
            "2s",
            "--qps",
            "300",
            "--concurrency",
            "4",
            "--verify",
        ],
    );
    eprintln!("gentle flood: {}", r.summary());
    assert_eq!(r.code, Some(1), "a paired rule did not fire: {}", r.stderr);
    let c = r.check("dns_high_latency");
    assert_eq!(c["fired"], false);
    let why = c["why"].as_str().unwrap_or_else(|| panic!("no why: {c}"));
    let warning = builtin_rule("dns_high_latency").warning.unwrap();
    assert!(why.contains(&format!("stayed below {warning} ms")), "{why}");
    assert!(why.contains("samples"), "{why}");
    // Held or blind is judged from the clients' latency, which an emulated CPU under
    // load pushes past the threshold (111 ms seen on 6.12 under qemu).
    let verdicts = require_native_speed(
        "a_flood_the_target_absorbs_says_the_target_held (verdict)",
        "asserts that the clients of a gentle load see loopback latency below the threshold",
    );
    if verdicts {
        assert!(why.contains("the target held"), "{why}");
    } else {
        assert!(
            why.contains("the target held") || why.contains("rule blind"),
            "{why}"
        );
    }
    // The text report says it too, next to the reconciliation.
    let text = in_cgroup(&cg.path, env!("CARGO_BIN_EXE_dnsdoc"))
        .args([
            "chaos",
            "--induce",
            "dns-flood",
            "--duration",
            "1s",
            "--qps",
            "200",
        ])
        .args([
            "--concurrency",
            "2",
            "--verify",
            "--yes",
            "--no-progress",
            "--target",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--cgroup")
        .arg(&cg.path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("Client lookups vs wire queries"),
        "{stdout}"
    );
    assert!(!verdicts || stdout.contains("the target held"), "{stdout}");
    assert!(
        stdout.contains("target processing"),
        "server side shown: {stdout}"
    );
}

#[test]
fn dns_flood_baseline_fires_none_of_its_rules() {
    if !require_bpf("dns_flood_baseline_fires_none_of_its_rules")
        || !require_native_speed(
            "dns_flood_baseline_fires_none_of_its_rules",
            "asserts that a gentle load keeps p99 latency below the rule threshold",
        )
    {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("floodbase");
    let port = free_port();
    let srv = slow_server(&cg, port);
    let r = chaos_from(
        &srv.client,
        &cg,
        port,
        &[
            "--induce",
            "dns-flood",
            "--duration",
            "6s",
            "--verify",
            "--baseline",
        ],
    );
    eprintln!("dns-flood baseline: {}", r.summary());
    assert_eq!(r.code, Some(0), "{}\n{}", r.summary(), r.stderr);
    for rule in ["dns_high_latency", "dns_failure_rate"] {
        let c = r.check(rule);
        assert_eq!(
            (&c["pass"], &c["fired"]),
            (&Value::Bool(true), &Value::Bool(false))
        );
    }
    let fired = r.fired();
    assert!(!fired.contains(&"dns_timeouts".to_string()), "{fired:?}");
    // The same shape: the same names (about half NXDOMAIN, as with ndots:5), gently.
    let failures = r.snapshot()["totals"]["failure_ratio"].as_f64().unwrap();
    let failure_warning = builtin_rule("dns_failure_rate").warning.unwrap();
    assert!(failures < failure_warning, "{}", r.summary());
    assert_clean_capture(&r);
}
