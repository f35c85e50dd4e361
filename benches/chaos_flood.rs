//! `make bench`, part four: can `dnsdoc chaos --induce dns-flood --intensity high` flood
//! a small resolver while dnsdoc captures it?
//!
//! dnsmasq answers the scenario's cluster names on 127.0.0.1 inside a test cgroup;
//! `dnsdoc chaos ... --verify` runs in the same cgroup (its load and its capture share
//! this 2-core box with dnsmasq). Each round (DNSDOC_BENCH_ROUNDS, default 3) lasts
//! DNSDOC_BENCH_SECONDS (default 10). Printed per round: lookups started per second of
//! the load, client queries dnsdoc captured on the wire per second of the load (lookups
//! plus their re-sends with new ids), answers, the target's own view, events the
//! capture lost; then the median wire rate next to the target (>= 25K lookups/s).
//! Never run as a timed test: rates depend on what else the machine is doing.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::*;
use serde_json::Value;
use support::*;

const TARGET_LOOKUPS_PER_S: f64 = 25_000.0;

fn main() {
    if !asked_to_run("chaos_flood") || !require_bpf("bench chaos_flood") {
        return;
    }
    let rounds = env_u64("DNSDOC_BENCH_ROUNDS", 3, 1..=20) as usize;
    let seconds = bench_seconds();
    let cg = TestCgroup::new("chaos-flood");
    let port = free_port();
    let zone = [
        "--local=/cluster.local/",
        "--host-record=kubernetes.default.svc.cluster.local,10.96.0.1",
        "--host-record=kube-dns.kube-system.svc.cluster.local,10.96.0.10",
    ];
    let _dnsmasq = start_dnsmasq_with(
        &cg,
        port,
        &Dnsmasq {
            zone: &zone,
            ..Dnsmasq::default()
        },
    );
    println!(
        "\ndnsdoc chaos flood benchmark: dns-flood --intensity high --verify against dnsmasq \
         on 127.0.0.1:{port}, {rounds} rounds of {seconds} s; rates are per second of the \
         load (load average {:.2})",
        load_average()
    );
    println!(
        "{:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>8}",
        "round", "lookups/s", "wire q/s", "answers/s", "resends", "target rx", "lost", "verdict"
    );
    let mut wire_rates = Vec::new();
    for round in 1..=rounds {
        let target = format!("127.0.0.1:{port}");
        let out = command_in_cgroup(&cg.path, env!("CARGO_BIN_EXE_dnsdoc"), &[])
            .args([
                "chaos",
                "--induce",
                "dns-flood",
                "--intensity",
                "high",
                "--verify",
            ])
            .args([
                "--yes",
                "--no-progress",
                "--format",
                "json",
                "--target",
                &target,
            ])
            .args(["--duration", &format!("{seconds}s"), "--cgroup"])
            .arg(&cg.path)
            .output()
            .expect("run dnsdoc chaos");
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr))
        });
        let rec = &r["reconciliation"];
        let n = |v: &Value| v.as_u64().unwrap_or(0) as f64;
        let secs = seconds as f64;
        let lookups = n(&r["load"]["sent"]) / secs;
        // The first sends on the wire: what dnsdoc captured minus the re-sends.
        let wire = (n(&rec["captured"]) - n(&rec["resends"])).min(n(&rec["lookups"])) / secs;
        let answers = n(&r["load"]["answered"]) / secs;
        wire_rates.push(wire);
        println!(
            "{round:>5} {lookups:>10.0} {wire:>10.0} {answers:>10.0} {:>10} {:>10} {:>9} {:>8}",
            rec["resends"],
            rec["target_received"],
            r["verify"]["snapshot"]["capture"]["dropped"]["total"],
            if r["verify"]["passed"] == true {
                "PASS"
            } else {
                "FAIL"
            }
        );
    }
    let median = median(&wire_rates);
    println!(
        "median lookups/s on the wire: {median:.0} (target >= {TARGET_LOOKUPS_PER_S:.0}: {})",
        if median >= TARGET_LOOKUPS_PER_S {
            "met"
        } else {
            "NOT MET"
        }
    );
}
