//! `dnsdoc chaos --induce dns-loss` against the real kernel and a real dnsmasq on
//! loopback: with --verify it makes its paired rules fire with the built-in thresholds
//! (every drop seen as a timeout), its healthy baseline of the same length and shape
//! fires none of them, it touches only the target's address and port, and the fault
//! disappears with dnsdoc, after Ctrl-C and after kill -9 alike. The other scenarios are
//! in chaos_live.rs and chaos_flood_live.rs.
//!
//! Everything runs in a private cgroup (dnsmasq and dnsdoc both inside, --cgroup aimed
//! at it), so neither the fault nor the capture touches anything else on the machine.
//! The tests of this file run one at a time: a flood measures latency on two shared
//! cores, and a parallel test would skew it. (cargo runs test binaries one after
//! another, so the chaos binaries never overlap either.)

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::chaos::*;
use common::*;
use serde_json::Value;

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
