//! `dnsdoc chaos` against the real kernel and a real dnsmasq on loopback: each scenario
//! with --verify makes its paired rules fire with the built-in thresholds, and its healthy
//! baseline of the same length and shape fires none of them. Here nxdomain-storm,
//! truncation and upstream-timeout, and rule files that tune the verdict; dns-flood is in
//! chaos_flood_live.rs, dns-loss and the removal of its fault in chaos_loss_live.rs, and
//! the harness they share in common/chaos.rs.
//!
//! Everything runs in a private cgroup (dnsmasq and dnsdoc both inside, --cgroup aimed
//! at it), so neither the fault nor the capture touches anything else on the machine.
//! The tests of this file run one at a time: a flood measures latency on two shared
//! cores, and a parallel test would skew it. (cargo runs test binaries one after
//! another, so the chaos binaries never overlap either.)

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::chaos::*;
use common::*;
use serde_json::Value;

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
