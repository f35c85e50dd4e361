//! `dnsdoc chaos` against the real kernel and a real dnsmasq on loopback: each scenario
//! with --verify makes its paired rules fire with the built-in thresholds, its healthy
//! baseline of the same length and shape fires none of them, and the dns-loss fault
//! disappears with dnsdoc, after Ctrl-C and after kill -9 alike.
//!
//! Everything runs in a private cgroup (dnsmasq and dnsdoc both inside, --cgroup aimed
//! at it), so neither the fault nor the capture touches anything else on the machine.
//! The tests of this file run one at a time: a flood measures latency on two shared
//! cores, and a parallel test would skew it.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use dnsdoc::chaos::cgroup_skb_programs;
use serde_json::Value;

/// dnsmasq answers the scenarios' names as a Kubernetes cluster DNS would.
const CLUSTER_DNS: &[&str] = &[
    "--local=/cluster.local/",
    "--host-record=kubernetes.default.svc.cluster.local,10.96.0.1",
    "--host-record=kube-dns.kube-system.svc.cluster.local,10.96.0.10",
];

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A finished `dnsdoc chaos --format json` run.
struct Run {
    code: Option<i32>,
    report: Value,
    stderr: String,
}

impl Run {
    fn check(&self, rule: &str) -> &Value {
        self.report["verify"]["checks"]
            .as_array()
            .unwrap_or_else(|| panic!("no checks: {}", self.stderr))
            .iter()
            .find(|c| c["rule"] == rule)
            .unwrap_or_else(|| panic!("no check for {rule}"))
    }

    fn fired(&self) -> Vec<String> {
        self.report["verify"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] != "INFO")
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect()
    }

    fn snapshot(&self) -> &Value {
        &self.report["verify"]["snapshot"]
    }

    fn summary(&self) -> String {
        let l = &self.report["load"];
        let s = self.snapshot();
        format!(
            "client: sent {} answered {} timeouts {} p99 {} ms; dnsdoc: queries {} timeouts {} failure {} p99 {} ms; fired {:?}",
            l["sent"],
            l["answered"],
            l["timeouts"],
            l["latency"]["p99_ms"],
            s["totals"]["queries"],
            s["totals"]["timeouts"],
            s["totals"]["failure_ratio"],
            s["latency"]["p99_ms"],
            self.fired()
        )
    }
}

/// Runs `dnsdoc chaos ARGS --target 127.0.0.1:PORT --yes --format json` inside `cg`.
fn chaos(cg: &Path, port: u16, args: &[&str]) -> Run {
    let target = format!("127.0.0.1:{port}");
    let out = in_cgroup(cg, env!("CARGO_BIN_EXE_dnsdoc"))
        .arg("chaos")
        .args(args)
        .args(["--target", &target, "--yes", "--format", "json", "--cgroup"])
        .arg(cg)
        .output()
        .expect("run dnsdoc chaos");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a chaos report ({e}); stderr: {stderr}"));
    Run {
        code: out.status.code(),
        report,
        stderr,
    }
}

/// A command that runs `program` inside the cgroup directory `dir`.
fn in_cgroup(dir: &Path, program: &str) -> Command {
    command_in_cgroup(dir, program, &[])
}

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

/// A CPU budget for one process, like a CoreDNS pod's `limits.cpu`: `quota_us` of CPU
/// time per 100 ms period. cgroup v1 `cpu` controller (hybrid hosts such as CI) or
/// cgroup v2 `cpu.max`, whichever this host has.
enum CpuBudget {
    /// A v1 cpu cgroup; the process stays in its v2 cgroup too.
    V1(PathBuf),
    /// The v2 leaf itself carries cpu.max.
    V2,
}

impl CpuBudget {
    /// Puts `pid` (already in `leaf`) under a budget of `quota_us` per 100 ms.
    fn apply(leaf: &Leaf, parent: &TestCgroup, pid: u32, quota_us: u32) -> CpuBudget {
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
            std::fs::write(leaf.0.join("cpu.max"), format!("{quota_us} 100000")).unwrap();
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
        std::fs::write(dir.join("cpu.cfs_period_us"), "100000").unwrap();
        std::fs::write(dir.join("cpu.cfs_quota_us"), quota_us.to_string()).unwrap();
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

/// dnsmasq with CLUSTER_DNS in the cgroup `dir`, listening on 127.0.0.1 and ::1.
fn start_cluster_dns(dir: &Path, port: u16) -> Guard {
    start_dnsmasq_with(
        &dir,
        port,
        &Dnsmasq {
            zone: CLUSTER_DNS,
            ..Dnsmasq::default()
        },
    )
}

/// A server with a CPU budget of 1 ms per 100 ms, and the cgroup dnsdoc runs in.
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
    let budget = CpuBudget::apply(&server, cg, dnsmasq.0.id(), 1000);
    SlowServer {
        _dnsmasq: dnsmasq,
        _budget: budget,
        client,
        _server: server,
    }
}

/// Runs chaos from the client leaf with --cgroup naming the parent (both leaves).
fn chaos_from(leaf: &Leaf, cg: &TestCgroup, port: u16, args: &[&str]) -> Run {
    let target = format!("127.0.0.1:{port}");
    let out = in_cgroup(&leaf.0, env!("CARGO_BIN_EXE_dnsdoc"))
        .arg("chaos")
        .args(args)
        .args(["--target", &target, "--yes", "--format", "json", "--cgroup"])
        .arg(&cg.path)
        .output()
        .expect("run dnsdoc chaos");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a chaos report ({e}); stderr: {stderr}"));
    Run {
        code: out.status.code(),
        report,
        stderr,
    }
}

fn assert_clean_capture(r: &Run) {
    let c = &r.snapshot()["capture"];
    assert_eq!(c["dropped"]["total"], 0, "capture lost events: {c}");
    // The window outlasts the load by the timeout; on an emulated CPU the clients'
    // last re-sends can still land inside it.
    if require_native_speed(
        "chaos_live: no query pending at the end",
        "asserts that the load's last re-sends are answered or timed out before the window ends",
    ) {
        assert_eq!(c["pending_at_end"], 0, "queries left pending: {c}");
    }
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

#[test]
fn nxdomain_storm_fires_nxdomain_ratio_and_its_baseline_does_not() {
    if !require_bpf("nxdomain_storm_fires_nxdomain_ratio_and_its_baseline_does_not")
        || !require_native_speed(
            "nxdomain_storm_fires_nxdomain_ratio_and_its_baseline_does_not",
            "asserts that the load reaches its 300 q/s rate",
        )
    {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("storm");
    let port = free_port();
    let _dnsmasq = start_cluster_dns(&cg.path, port);

    let r = chaos(
        &cg.path,
        port,
        &["--induce", "nxdomain-storm", "--duration", "4s", "--verify"],
    );
    eprintln!("nxdomain-storm: {}", r.summary());
    assert_eq!(r.code, Some(0), "{}\n{}", r.summary(), r.stderr);
    assert_eq!(r.check("dns_nxdomain_ratio")["pass"], true);
    let l = &r.report["load"];
    // 300 qps for 4 s: never above the cap, and close to it.
    let sent = l["sent"].as_u64().unwrap();
    assert!((1140..=1200).contains(&sent), "{}", r.summary());
    let nx_client = l["rcodes"]["NXDOMAIN"].as_u64().unwrap();
    let nx = nx_client as f64 / sent as f64;
    assert!((0.74..0.86).contains(&nx), "80% random names: {nx}");
    // dnsdoc counted the answers the clients got (a rare client re-send of a slow
    // lookup can be answered twice on the wire).
    let t = &r.snapshot()["totals"];
    let nx_seen = t["rcodes"]["NXDOMAIN"].as_u64().unwrap();
    assert!(
        nx_seen >= nx_client && nx_seen <= nx_client + nx_client / 100,
        "{nx_seen} vs {nx_client}"
    );
    assert!(t["responses"].as_u64().unwrap() >= l["answered"].as_u64().unwrap());
    assert_clean_capture(&r);

    let b = chaos(
        &cg.path,
        port,
        &[
            "--induce",
            "nxdomain-storm",
            "--duration",
            "4s",
            "--verify",
            "--baseline",
        ],
    );
    eprintln!("nxdomain-storm baseline: {}", b.summary());
    assert_eq!(b.code, Some(0), "{}\n{}", b.summary(), b.stderr);
    assert_eq!(b.check("dns_nxdomain_ratio")["pass"], true);
    assert_eq!(b.check("dns_nxdomain_ratio")["fired"], false);
    let sent = b.report["load"]["sent"].as_u64().unwrap();
    assert!(
        (1140..=1200).contains(&sent),
        "same length and rate: {sent}"
    );
    assert_eq!(b.report["load"]["rcodes"]["NXDOMAIN"], 0);
    assert_eq!(b.snapshot()["totals"]["rcodes"]["NXDOMAIN"], 0);
}

#[test]
fn dns_loss_fires_failures_and_timeouts_and_every_drop_is_a_timeout() {
    if !require_bpf("dns_loss_fires_failures_and_timeouts_and_every_drop_is_a_timeout") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("loss");
    let port = free_port();
    let _dnsmasq = start_cluster_dns(&cg.path, port);
    let r = chaos(
        &cg.path,
        port,
        &["--induce", "dns-loss", "--duration", "4s", "--verify"],
    );
    eprintln!("dns-loss: {}", r.summary());
    assert_eq!(r.code, Some(0), "{}\n{}", r.summary(), r.stderr);
    for rule in ["dns_failure_rate", "dns_timeouts"] {
        assert_eq!(r.check(rule)["pass"], true, "{rule}");
    }
    let f = &r.report["fault"];
    let (dropped, matched) = (
        f["dropped"].as_u64().unwrap(),
        f["matched"].as_u64().unwrap(),
    );
    let ratio = dropped as f64 / matched as f64;
    assert!((0.12..0.28).contains(&ratio), "20% loss: {f}");
    assert_eq!(f["ingress_matched"], 0, "loopback is judged on egress only");
    // A dropped query or answer is one query nobody answered: dnsdoc saw each drop.
    let t = &r.snapshot()["totals"];
    // (Exactly equal on a quiet machine; a client starved of CPU for 333 ms also
    // re-sends and abandons sockets, which adds timeouts of its own.)
    let timeouts = t["timeouts"].as_u64().unwrap();
    assert!(
        timeouts >= dropped && timeouts <= dropped + dropped / 20 + 5,
        "timeouts {timeouts}, dropped {dropped}: {f} {t}"
    );
    assert_clean_capture(&r);
    // Client lookups reconciled with the wire: every lookup, every re-send with a new
    // id, and nothing else; each send left unanswered is one of dnsdoc's timeouts.
    let rec = &r.report["reconciliation"];
    let n = |k: &str| {
        rec[k]
            .as_u64()
            .unwrap_or_else(|| panic!("reconciliation.{k}: {rec}"))
    };
    assert!(n("resends") > 0, "lost packets make clients re-send: {rec}");
    assert_eq!(n("aaaa_pairs"), 0);
    assert_eq!(
        n("queries_sent"),
        n("lookups") + n("resends") + n("tcp_after_truncation")
    );
    assert_eq!(n("captured"), n("queries_sent"), "{rec}");
    let (unanswered, wire_timeouts) = (n("unanswered_sends"), n("wire_timeouts"));
    assert!(
        wire_timeouts >= unanswered && wire_timeouts <= unanswered + unanswered / 20 + 5,
        "{rec}"
    );
    // Both rates over the same (sending) interval, not the longer capture window.
    let interval = rec["interval_s"].as_f64().unwrap();
    // (4 s of lookups, and their re-sends up to 1.4 s later.)
    assert!((3.0..=5.6).contains(&interval), "{rec}");
    // The target is local and in the cgroup: its own side is reported although the
    // capture is filtered to dnsdoc's pid.
    assert!(n("target_received") > 0, "{rec}");
    assert!(r.snapshot()["server_side"]["queries"].as_u64().unwrap() > 0);
    let l = &r.report["load"];
    assert!(l["round_trip"]["samples"].as_u64().unwrap() > 0);
    // The clients mostly recovered by re-sending: the fault is visible below them.
    // (At least 90 %; on an emulated CPU under load clients starved of CPU give up
    // more lookups: 88 % seen on 5.10 under qemu.)
    let l = &r.report["load"];
    let tenths = match require_native_speed(
        "dns_loss_fires_failures_and_timeouts_and_every_drop_is_a_timeout (recovery)",
        "asserts that clients recover 90 % of lookups by re-sending in time",
    ) {
        true => 9,
        false => 5,
    };
    assert!(
        l["answered"].as_u64().unwrap() * 10 >= l["sent"].as_u64().unwrap() * tenths,
        "{l}"
    );
    assert!(
        loss_programs(&cg.path).is_empty(),
        "the fault is gone after the run"
    );

    let b = chaos(
        &cg.path,
        port,
        &[
            "--induce",
            "dns-loss",
            "--duration",
            "4s",
            "--verify",
            "--baseline",
        ],
    );
    eprintln!("dns-loss baseline: {}", b.summary());
    assert_eq!(b.code, Some(0), "{}\n{}", b.summary(), b.stderr);
    assert!(b.report["fault"].is_null(), "no fault in the baseline");
    for rule in ["dns_failure_rate", "dns_timeouts"] {
        assert_eq!(b.check(rule)["fired"], false, "{rule}: {:?}", b.fired());
        assert_eq!(b.check(rule)["pass"], true);
    }
    assert_eq!(b.report["load"]["sent"], b.report["load"]["answered"]);
}

/// The loss programs attached to `cg` right now (BPF_PROG_QUERY).
fn loss_programs(cg: &Path) -> Vec<String> {
    cgroup_skb_programs(cg)
        .unwrap()
        .into_iter()
        .filter(|p| p.name.starts_with("loss_"))
        .map(|p| format!("{} ({})", p.name, p.hook))
        .collect()
}

/// One A query for `name` to 127.0.0.1:port; the RCODE, or None without an answer.
fn query(port: u16, name: &str, timeout: Duration) -> Option<u8> {
    query_at("127.0.0.1", port, name, timeout)
}

const QUERY_ID: u16 = 0x5eed;

/// An A query for `name` with id [`QUERY_ID`], as DNS wire bytes.
fn query_wire(name: &str) -> Vec<u8> {
    let mut msg = vec![];
    msg.extend_from_slice(&QUERY_ID.to_be_bytes());
    msg.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.extend_from_slice(&[0, 0, 1, 0, 1]);
    msg
}

/// One A query for `name` to `addr`:port over TCP: the rcode, or None when the
/// connection or the answer did not come within `timeout`.
fn query_tcp_at(addr: &str, port: u16, name: &str, timeout: Duration) -> Option<u8> {
    use std::io::Write;
    let to: std::net::SocketAddr = (addr.parse::<std::net::IpAddr>().unwrap(), port).into();
    let mut s = std::net::TcpStream::connect_timeout(&to, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).unwrap();
    let msg = query_wire(name);
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&msg);
    s.write_all(&framed).ok()?;
    let mut buf = [0u8; 6];
    s.read_exact(&mut buf).ok()?;
    (buf[2..4] == QUERY_ID.to_be_bytes()).then_some(buf[5] & 0x0f)
}

/// One A query for `name` to `addr`:port over UDP.
fn query_at(addr: &str, port: u16, name: &str, timeout: Duration) -> Option<u8> {
    let ip: std::net::IpAddr = addr.parse().unwrap();
    let sock = UdpSocket::bind((ip, 0)).unwrap();
    sock.set_read_timeout(Some(timeout)).unwrap();
    let id = QUERY_ID;
    let msg = query_wire(name);
    sock.send_to(&msg, (ip, port)).unwrap();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match sock.recv(&mut buf) {
            Ok(n) if n >= 4 && buf[..2] == id.to_be_bytes() => return Some(buf[3] & 0x0f),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// A `dnsdoc chaos --induce dns-loss --loss 100%` running in the background.
struct Background {
    child: Child,
    stderr: mpsc::Receiver<String>,
    stdout: mpsc::Receiver<String>,
}

fn start_total_loss(cg: &TestCgroup, port: u16, extra: &[&str]) -> Background {
    start_total_loss_at(cg, &format!("127.0.0.1:{port}"), extra)
}

fn start_total_loss_at(cg: &TestCgroup, target: &str, extra: &[&str]) -> Background {
    let mut child = cg
        .command(
            env!("CARGO_BIN_EXE_dnsdoc"),
            &[
                "chaos",
                "--induce",
                "dns-loss",
                "--loss",
                "100%",
                "--qps",
                "20",
                // Every lookup waits out its timeouts: enough workers to keep the rate.
                "--concurrency",
                "64",
                "--duration",
                "60s",
                "--yes",
                "--format",
                "json",
                "--target",
                target,
                "--cgroup",
                cg.path.to_str().unwrap(),
            ],
        )
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dnsdoc chaos");
    let (tx, stderr) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (tx, stdout) = mpsc::channel();
    let mut out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let bg = Background {
        child,
        stderr,
        stdout,
    };
    // The load starts right after the fault is in place.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match bg.stderr.recv_timeout(left) {
            Ok(l) if l.contains("dnsdoc: chaos: dns-loss against") => return bg,
            Ok(l) => eprintln!("dnsdoc: {l}"),
            Err(_) => panic!("dnsdoc chaos did not start within 30s"),
        }
    }
}

/// Waits up to 3 s for the loss programs to leave `cg`.
fn wait_detached(cg: &Path) -> Duration {
    let t0 = Instant::now();
    while !loss_programs(cg).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "still attached: {:?}",
            loss_programs(cg)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    t0.elapsed()
}

#[test]
fn dns_loss_leaves_nothing_attached_after_kill_9() {
    if !require_bpf("dns_loss_leaves_nothing_attached_after_kill_9") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("kill9");
    let port = free_port();
    let _dnsmasq = start_cluster_dns(&cg.path, port);
    let name = "kubernetes.default.svc.cluster.local";
    assert_eq!(
        query(port, name, Duration::from_secs(2)),
        Some(0),
        "healthy first"
    );

    let mut bg = start_total_loss(&cg, port, &[]);
    let attached = loss_programs(&cg.path);
    assert_eq!(attached.len(), 2, "egress and ingress: {attached:?}");
    // The fault works: dnsmasq (inside the cgroup) cannot answer anyone.
    for _ in 0..3 {
        assert_eq!(query(port, name, Duration::from_millis(300)), None);
    }

    bg.child.kill().unwrap(); // SIGKILL: no destructor, no signal handler runs
    let status = bg.child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");
    wait_detached(&cg.path);
    // Zero loss across many queries: nothing is left in the path.
    let answered = (0..200)
        .filter(|_| query(port, name, Duration::from_secs(1)) == Some(0))
        .count();
    assert_eq!(answered, 200);
}

#[test]
fn ctrl_c_stops_the_load_and_removes_the_fault_at_once() {
    if !require_bpf("ctrl_c_stops_the_load_and_removes_the_fault_at_once") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("sigint");
    let port = free_port();
    let _dnsmasq = start_cluster_dns(&cg.path, port);
    let mut bg = start_total_loss(&cg, port, &["--verify"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(loss_programs(&cg.path).len(), 2);

    let pid = bg.child.id().to_string();
    let t0 = Instant::now();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let gone = wait_detached(&cg.path);
    assert!(
        gone < Duration::from_millis(500),
        "fault removed in {gone:?}"
    );
    let status = bg.child.wait().unwrap();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "exited {took:?} after Ctrl-C"
    );
    // A run cut short is marked as such and cannot pass: exit 130, like a shell's ^C.
    assert_eq!(status.code(), Some(130), "{status:?}");

    let out = bg.stdout.recv_timeout(Duration::from_secs(5)).unwrap();
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["verify"]["cut_short"], true);
    assert_eq!(r["verify"]["passed"], false);
    for c in r["verify"]["checks"].as_array().unwrap() {
        assert_eq!(c["pass"], false, "no check passes on a partial window: {c}");
    }
    let sent = r["load"]["sent"].as_u64().unwrap();
    assert!((10..=60).contains(&sent), "20 qps for ~1.5 s: {sent}");
    assert_eq!(r["load"]["answered"], 0, "100% loss");
    assert!(r["fault"]["dropped"].as_u64().unwrap() >= sent);
    assert!(
        r["verify"]["snapshot"]["totals"]["queries"]
            .as_u64()
            .unwrap()
            >= sent
    );
    assert_eq!(
        query(
            port,
            "kubernetes.default.svc.cluster.local",
            Duration::from_secs(2)
        ),
        Some(0)
    );
}

#[test]
fn dns_loss_touches_only_the_target_address_and_port() {
    if !require_bpf("dns_loss_touches_only_the_target_address_and_port") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("precise");
    let port = free_port();
    let other_port = free_port();
    let _dnsmasq = start_cluster_dns(&cg.path, port);
    let _other = start_cluster_dns(&cg.path, other_port);
    let name = "kube-dns.kube-system.svc.cluster.local";
    let short = Duration::from_millis(300);
    let mut bg = start_total_loss_at(&cg, &format!("[::1]:{port}"), &[]);

    // The target, [::1]:PORT, is cut off over UDP and TCP...
    assert_eq!(query_at("::1", port, name, short), None);
    // Over TCP no answer arrives. (6.18 runs cgroup egress for the SYN-ACK, so the
    // connection fails; 6.1 does not, so it opens and the answer is dropped.)
    assert_eq!(query_tcp_at("::1", port, name, short), None);
    // ...while the same server over IPv4 and another port on ::1 answer as usual.
    for _ in 0..20 {
        assert_eq!(query_at("127.0.0.1", port, name, short), Some(0));
        assert_eq!(query_at("::1", other_port, name, short), Some(0));
    }
    assert_eq!(query_tcp_at("127.0.0.1", port, name, short), Some(0));

    // SIGTERM ends the run like Ctrl-C: summary, fault removed.
    let pid = bg.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // Cut short: the summary is printed, the exit code says so (130).
    assert_eq!(bg.child.wait().unwrap().code(), Some(130));
    wait_detached(&cg.path);
    let out = bg.stdout.recv_timeout(Duration::from_secs(5)).unwrap();
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["target"], format!("[::1]:{port}"));
    let f = &r["fault"];
    // Only the target's packets were judged, and all of them dropped.
    assert!(f["matched"].as_u64().unwrap() > 0, "{f}");
    assert_eq!(f["dropped"], f["matched"], "{f}");
    assert_eq!(query_at("::1", port, name, Duration::from_secs(2)), Some(0));
}

#[test]
fn rules_files_tune_the_verdict_and_bad_ones_stop_the_run_early() {
    if !require_bpf("rules_files_tune_the_verdict_and_bad_ones_stop_the_run_early") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("tuned");
    let port = free_port();
    let _dnsmasq = start_cluster_dns(&cg.path, port);
    let dir = TempDir::new("tuned");

    // A broken rule file: exit 4 at once, before any load.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[rule]]\nid = \"dns_nxdomain_ratio\"\nwarning = \"lots\"\n",
    )
    .unwrap();
    let t0 = Instant::now();
    let out = in_cgroup(&cg.path, env!("CARGO_BIN_EXE_dnsdoc"))
        .args([
            "chaos",
            "--induce",
            "nxdomain-storm",
            "--duration",
            "30s",
            "--yes",
        ])
        .args([
            "--verify",
            "--target",
            &format!("127.0.0.1:{port}"),
            "--rules",
        ])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));

    // Disabling the paired rule makes the game day fail, and says why.
    let off = dir.path().join("off.toml");
    std::fs::write(
        &off,
        "[[rule]]\nid = \"dns_nxdomain_ratio\"\nenabled = false\n",
    )
    .unwrap();
    let r = chaos(
        &cg.path,
        port,
        &[
            "--induce",
            "nxdomain-storm",
            "--duration",
            "2s",
            "--verify",
            "--rules",
            off.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let c = r.check("dns_nxdomain_ratio");
    assert_eq!(
        (&c["pass"], &c["status"]),
        (&Value::Bool(false), &Value::from("disabled"))
    );
    assert_eq!(r.report["verify"]["passed"], false);
}

/// dnsmasq with CLUSTER_DNS plus headless.default.svc.cluster.local: 40 pods, an A
/// answer of about 700 bytes that does not fit in 512.
fn start_cluster_dns_with_headless(dir: &Path, port: u16) -> Guard {
    let pods: Vec<String> = (1..=40)
        .map(|i| format!("--host-record=headless.default.svc.cluster.local,10.244.0.{i}"))
        .collect();
    let mut zone: Vec<&str> = CLUSTER_DNS.to_vec();
    zone.extend(pods.iter().map(String::as_str));
    start_dnsmasq_with(
        &dir,
        port,
        &Dnsmasq {
            zone: &zone,
            ..Dnsmasq::default()
        },
    )
}

#[test]
fn truncation_fires_tcp_fallback_and_its_baseline_does_not() {
    if !require_bpf("truncation_fires_tcp_fallback_and_its_baseline_does_not") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("trunc");
    let port = free_port();
    let _dnsmasq = start_cluster_dns_with_headless(&cg.path, port);
    let r = chaos(
        &cg.path,
        port,
        &["--induce", "truncation", "--duration", "3s", "--verify"],
    );
    eprintln!("truncation: {}", r.summary());
    assert_eq!(r.code, Some(0), "{}\n{}", r.summary(), r.stderr);
    let c = r.check("dns_truncation_tcp_fallback");
    assert_eq!(
        (&c["fired"], &c["pass"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    // Every truncated answer the clients got was asked again over TCP, and dnsdoc saw
    // both: the TC answers and the same process retrying over TCP.
    let wire = &r.report["load"]["wire"];
    let truncated = wire["truncated"].as_u64().unwrap();
    assert!(truncated > 20, "{wire}");
    assert_eq!(wire["tcp_queries"], truncated);
    let t = &r.snapshot()["totals"];
    assert_eq!(t["truncated"].as_u64().unwrap(), truncated, "{t}");
    assert_eq!(
        t["truncated_retried_tcp"].as_u64().unwrap(),
        truncated,
        "{t}"
    );
    assert_eq!(t["tcp_queries"].as_u64().unwrap(), truncated, "{t}");
    let rec = &r.report["reconciliation"];
    assert_eq!(rec["tcp_after_truncation"], truncated);
    assert_eq!(rec["captured"], rec["queries_sent"], "{rec}");

    let b = chaos(
        &cg.path,
        port,
        &[
            "--induce",
            "truncation",
            "--duration",
            "2s",
            "--verify",
            "--baseline",
        ],
    );
    assert_eq!(b.code, Some(0), "{}\n{}", b.summary(), b.stderr);
    assert_eq!(b.check("dns_truncation_tcp_fallback")["fired"], false);
    assert_eq!(b.snapshot()["totals"]["truncated"], 0);
}

/// unbound on 127.0.0.1:`port` forwarding everything to 127.0.0.1:`upstream`.
fn start_forwarder(cg: &TestCgroup, port: u16, upstream: u16, dir: &TempDir) -> Guard {
    let forward = format!("forward-addr: 127.0.0.1@{upstream}");
    start_unbound(
        cg,
        port,
        dir,
        &[
            "do-not-query-localhost: no",
            "infra-cache-max-rtt: 1000",
            "forward-zone:",
            "name: \".\"",
            &forward,
        ],
    )
}

#[test]
fn upstream_timeout_fails_at_the_forwarder_and_its_baseline_does_not() {
    if !require_bpf("upstream_timeout_fails_at_the_forwarder_and_its_baseline_does_not") {
        return;
    }
    let _serial = serial();
    let cg = TestCgroup::new("upstream");
    let (port, up_port) = (free_port(), free_port());
    let dir = TempDir::new("upstream");
    // The upstream answers every name; the forwarder is unbound.
    let _upstream = start_dnsmasq(
        &cg.path,
        up_port,
        &["--address=/#/10.0.0.9", "--address=/#/fd00::9"],
    );
    let _forwarder = start_forwarder(&cg, port, up_port, &dir);
    let upstream = format!("127.0.0.1:{up_port}");

    // Without --upstream the scenario cannot run: one line, exit 64, nothing sent.
    let r = run_dnsdoc(&[
        "chaos",
        "--induce",
        "upstream-timeout",
        "--target",
        &format!("127.0.0.1:{port}"),
        "--yes",
    ]);
    assert_eq!(r.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--upstream"));

    let b = chaos(
        &cg.path,
        port,
        &[
            "--induce",
            "upstream-timeout",
            "--upstream",
            &upstream,
            "--duration",
            "2s",
            "--qps",
            "100",
            "--verify",
            "--baseline",
        ],
    );
    eprintln!("upstream-timeout baseline: {}", b.summary());
    assert_eq!(b.code, Some(0), "{}\n{}", b.summary(), b.stderr);
    assert!(b.report["fault"].is_null());

    let r = chaos(
        &cg.path,
        port,
        &[
            "--induce",
            "upstream-timeout",
            "--upstream",
            &upstream,
            "--duration",
            "3s",
            "--qps",
            "100",
            "--verify",
        ],
    );
    eprintln!("upstream-timeout: {}", r.summary());
    assert_eq!(r.code, Some(0), "{}\n{}", r.summary(), r.stderr);
    for rule in ["dns_failure_rate", "dns_local_server_failures"] {
        assert_eq!(r.check(rule)["pass"], true, "{rule}: {}", r.check(rule));
    }
    let f = &r.report["fault"];
    assert_eq!(f["kind"], "silent-upstream");
    assert_eq!(f["address"], upstream.as_str());
    assert!(f["dropped"].as_u64().unwrap() > 0, "{f}");
    // The forwarder gave up: SERVFAIL, or no answer at all.
    let t = &r.snapshot()["totals"];
    let servfail = t["rcodes"]["SERVFAIL"].as_u64().unwrap();
    let timeouts = t["timeouts"].as_u64().unwrap();
    assert!(servfail + timeouts > 20, "{t}");
    assert!(
        loss_programs(&cg.path).is_empty(),
        "the fault is gone after the run"
    );
    // And the upstream answers again.
    assert_eq!(query(up_port, "x.example", Duration::from_secs(2)), Some(0));
}
