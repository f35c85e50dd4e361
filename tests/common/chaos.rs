//! The harness of the `dnsdoc chaos` live tests (chaos_live, chaos_flood_live,
//! chaos_loss_live): dnsmasq answering as a cluster DNS would, one test at a time, a
//! chaos run and its JSON report, and plain DNS queries to see a fault from outside.

use std::io::Read;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dnsdoc::chaos::cgroup_skb_programs;
use serde_json::Value;

use super::{command_in_cgroup, require_native_speed, start_dnsmasq_with, Dnsmasq, Guard};

/// dnsmasq answers the scenarios' names as a Kubernetes cluster DNS would.
pub const CLUSTER_DNS: &[&str] = &[
    "--local=/cluster.local/",
    "--host-record=kubernetes.default.svc.cluster.local,10.96.0.1",
    "--host-record=kube-dns.kube-system.svc.cluster.local,10.96.0.10",
];

static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A finished `dnsdoc chaos --format json` run and the pid it ran as.
pub struct Run {
    pub pid: u32,
    pub code: Option<i32>,
    pub report: Value,
    pub stderr: String,
}

impl Run {
    pub fn check(&self, rule: &str) -> &Value {
        check(&self.report, rule)
    }

    /// The findings of `rule`, whatever their severity.
    pub fn findings(&self, rule: &str) -> Vec<&Value> {
        self.report["verify"]["findings"]
            .as_array()
            .unwrap_or_else(|| panic!("no findings: {}", self.stderr))
            .iter()
            .filter(|f| f["rule"] == rule)
            .collect()
    }

    pub fn fired(&self) -> Vec<String> {
        self.report["verify"]["findings"]
            .as_array()
            .unwrap_or_else(|| panic!("no findings: {}", self.stderr))
            .iter()
            .filter(|f| f["severity"] != "INFO")
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn snapshot(&self) -> &Value {
        &self.report["verify"]["snapshot"]
    }

    pub fn summary(&self) -> String {
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

/// The `--verify` check of `rule` in a chaos report.
pub fn check<'a>(report: &'a Value, rule: &str) -> &'a Value {
    report["verify"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {report}"))
        .iter()
        .find(|c| c["rule"] == rule)
        .unwrap_or_else(|| panic!("no check for {rule}"))
}

/// Runs `dnsdoc chaos ARGS --target 127.0.0.1:PORT --yes --format json` inside `cg`.
pub fn chaos(cg: &Path, port: u16, args: &[&str]) -> Run {
    chaos_in(cg, cg, port, args)
}

/// [`chaos`] run from the cgroup `run_in`, watching the cgroup `watched` (`--cgroup`).
pub fn chaos_in(run_in: &Path, watched: &Path, port: u16, args: &[&str]) -> Run {
    let target = format!("127.0.0.1:{port}");
    let child = in_cgroup(run_in, env!("CARGO_BIN_EXE_dnsdoc"))
        .arg("chaos")
        .args(args)
        .args(["--target", &target, "--yes", "--format", "json", "--cgroup"])
        .arg(watched)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dnsdoc chaos");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for dnsdoc chaos");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a chaos report ({e}); stderr: {stderr}"));
    Run {
        pid,
        code: out.status.code(),
        report,
        stderr,
    }
}

/// A command that runs `program` inside the cgroup directory `dir`.
pub fn in_cgroup(dir: &Path, program: &str) -> Command {
    command_in_cgroup(dir, program, &[])
}

/// dnsmasq with CLUSTER_DNS in the cgroup `dir`, listening on 127.0.0.1 and ::1.
pub fn start_cluster_dns(dir: &Path, port: u16) -> Guard {
    start_dnsmasq_with(
        &dir,
        port,
        &Dnsmasq {
            zone: CLUSTER_DNS,
            ..Dnsmasq::default()
        },
    )
}

pub fn assert_clean_capture(r: &Run) {
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

/// The loss programs attached to `cg` right now (BPF_PROG_QUERY).
pub fn loss_programs(cg: &Path) -> Vec<String> {
    cgroup_skb_programs(cg)
        .unwrap()
        .into_iter()
        .filter(|p| p.name.starts_with("loss_"))
        .map(|p| format!("{} ({})", p.name, p.hook))
        .collect()
}

/// One A query for `name` to 127.0.0.1:port; the RCODE, or None without an answer.
pub fn query(port: u16, name: &str, timeout: Duration) -> Option<u8> {
    query_at("127.0.0.1", port, name, timeout)
}

pub const QUERY_ID: u16 = 0x5eed;

/// An A query for `name` with id [`QUERY_ID`], as DNS wire bytes.
pub fn query_wire(name: &str) -> Vec<u8> {
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
pub fn query_tcp_at(addr: &str, port: u16, name: &str, timeout: Duration) -> Option<u8> {
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
pub fn query_at(addr: &str, port: u16, name: &str, timeout: Duration) -> Option<u8> {
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
