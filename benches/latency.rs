//! `make bench`, part three: does watching slow the applications it watches?
//!
//! A client sends one query at a time to a local dnsmasq and times each lookup (send to
//! answer), as dig and glibc do: with a fresh UDP socket per query, and with one socket
//! reused. Rounds interleave a baseline and `dnsdoc watch` (DNSDOC_BENCH_ROUNDS, default
//! 3); each round sends DNSDOC_BENCH_LOOKUPS queries (default 3000) paced 500 us apart.
//! It prints the client's p50 and p99 lookup latency per round and the median rise of
//! the p50 under dnsdoc next to the target (<= 5 us). The client is this benchmark's own
//! binary re-run as a child (`--client MODE PORT N`) in the watched cgroup. Needs root.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use support::*;

const TARGET_P50_RISE_US: f64 = 5.0;
const PACE: Duration = Duration::from_micros(500);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--client") {
        client(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap());
        return;
    }
    if !asked_to_run("latency") || !require_bpf("bench latency") {
        return;
    }
    let rounds = env_u64("DNSDOC_BENCH_ROUNDS", 3, 1..=20) as usize;
    let lookups = env_u64("DNSDOC_BENCH_LOOKUPS", 3000, 100..=100_000);
    let cg = TestCgroup::new("latency");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    println!(
        "\ndnsdoc latency benchmark: one query at a time to dnsmasq on 127.0.0.1:{port}, \
         {lookups} lookups per round paced {} us apart, {rounds} rounds of baseline / \
         dnsdoc watch interleaved; latency is the client's, send to answer, in us",
        PACE.as_micros()
    );
    println!(
        "{:<16} {:>5} {:>9} {:>9} {:>9} {:>9}",
        "client", "round", "base p50", "base p99", "with p50", "with p99"
    );
    for mode in ["socket-per-query", "reused-socket"] {
        let mut rises = Vec::new();
        for round in 1..=rounds {
            let base = run_client(&cg, mode, port, lookups);
            let watch = start_watch(&cg, &[port], &["--timeout", "2s"]);
            let with = run_client(&cg, mode, port, lookups);
            let snap = watch.stop().snapshot;
            assert_eq!(
                snap.totals.counts.queries, lookups,
                "dnsdoc did not count every lookup: {:#?}",
                snap.totals
            );
            println!(
                "{mode:<16} {round:>5} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                base.0, base.1, with.0, with.1
            );
            rises.push(with.0 - base.0);
        }
        let rise = median(&rises);
        println!(
            "{mode}: median p50 rise under dnsdoc {rise:.1} us (target <= {TARGET_P50_RISE_US} \
             us): {}",
            if rise <= TARGET_P50_RISE_US {
                "PASS"
            } else {
                "MISS"
            }
        );
    }
}

/// Runs the client child in the cgroup; returns its (p50, p99) in microseconds.
fn run_client(cg: &TestCgroup, mode: &str, port: u16, lookups: u64) -> (f64, f64) {
    let exe = std::env::current_exe().unwrap();
    let (p, n) = (port.to_string(), lookups.to_string());
    let (_, out) = cg.run(exe.to_str().unwrap(), &["--client", mode, &p, &n]);
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<f64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "client said {text:?}, {:?}", out.stderr);
    (nums[0], nums[1])
}

/// The client: `n` lookups of `h<i>.good.test A`, one at a time; prints "p50 p99" (us).
fn client(mode: &str, port: u16, n: u64) {
    let server = ("127.0.0.1", port);
    let mut reused = None;
    let mut lat = Vec::with_capacity(n as usize);
    let mut buf = [0u8; 512];
    for i in 0..n {
        let query = query(i as u16, &format!("h{}.good.test", i % 1000));
        let fresh;
        let sock = match mode {
            "socket-per-query" => {
                fresh = UdpSocket::bind("127.0.0.1:0").unwrap();
                &fresh
            }
            _ => reused.get_or_insert_with(|| UdpSocket::bind("127.0.0.1:0").unwrap()),
        };
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let t = Instant::now();
        sock.send_to(&query, server).unwrap();
        let got = sock.recv(&mut buf).expect("an answer within 2 s");
        lat.push(t.elapsed().as_nanos() as f64 / 1e3);
        assert!(got >= 12 && buf[..2] == query[..2], "a stray answer");
        std::thread::sleep(PACE);
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!("{:.1} {:.1}", pct(0.50), pct(0.99));
}

/// A recursive query for `name` type A with id `id`.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}
