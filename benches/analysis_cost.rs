//! `make bench`, part five: what the user-space analysis costs per query, counted rather
//! than timed, so that a change to the hot path can be judged on a noisy machine.
//!
//! `dnsdoc watch --pcap` runs the same analysis as a live capture (parse, match,
//! aggregate; only the event source differs) over a generated loopback capture, under
//! valgrind's callgrind with its cache simulator. Each query is seen as four messages,
//! as on the live loopback path: its egress and ingress copies, and the same for its
//! answer. Two captures, of N and 2N queries over the same 10 000 names
//! (DNSDOC_BENCH_COST_QUERIES = N, default 20 000), are run, and the difference divided
//! by N is the steady-state cost of one query: start-up, the report and each name's
//! first sighting cancel out. Each stage is its own pair of runs that count only inside
//! the function doing it (callgrind's --toggle-collect: inclusive of what it calls,
//! whatever the compiler inlined). Printed per query, per stage: instructions, and data reads
//! that miss a simulated 2 MiB last-level cache (this 2-core box's L2 per core; each
//! costs about 100 ns on real hardware). The counts repeat within 2 % for the same
//! binary and input, whatever else the machine does (what varies is the hash tables'
//! random seeds). Needs valgrind.
//!
//! Then the stages a capture file does not exercise, live: `dnsdoc watch` under
//! callgrind on the real probes while dnsperf asks a local dnsmasq 1 000 names (A,
//! AAAA, NXDOMAIN) at 1 000 q/s, for 2 s and for 4 s; per query = the difference over
//! the difference in queries. Here the ring is read and decoded, and every query has a
//! process, so lookups are tracked. Counts vary by a few percent with how the records
//! fall into batches, and per-batch work weighs more at this rate than at saturation.
//! Needs root and BPF as well.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::path::Path;
use std::process::Command;

use common::*;
use dnsdoc::snapshot::Snapshot;
use etherparse::PacketBuilder;
use support::*;

/// Distinct names asked, as in the saturation benchmark's query file (of dnsperf).
const NAMES: u64 = 10_000;
/// Client sockets the queries come from.
const CLIENTS: u64 = 8;
/// Query spacing and answer delay: 100 queries in flight, as dnsperf keeps at saturation.
const EVERY_US: u64 = 10;
const ANSWER_US: u64 = 1_000;
/// Simulated last-level cache: size, associativity, line size.
const LL: &str = "--LL=2097152,16,64";

/// The stages reported, by the function that does each; None: the whole run.
const STAGES: &[(&str, Option<&str>)] = &[
    ("whole run", None),
    (
        "capture file decode (pcap only)",
        Some("*PcapSource*EventSource*poll"),
    ),
    (
        "DNS parse",
        Some("dnsdoc::analysis::dns::parse_message_with"),
    ),
    (
        "matching",
        Some("dnsdoc::analysis::matcher::Matcher::on_message"),
    ),
    (
        "aggregation",
        Some("dnsdoc::analysis::aggregate::Aggregator::add"),
    ),
    (
        "  of which domains",
        Some("dnsdoc::analysis::domains::DomainTracker::add"),
    ),
];

fn main() {
    if !asked_to_run("analysis_cost") {
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        panic!("analysis_cost needs valgrind (scripts/install-deps.sh installs it)");
    }
    let n = env_u64("DNSDOC_BENCH_COST_QUERIES", 20_000, 5_000..=1_000_000);
    let dir = TempDir::new("analysis-cost");
    println!(
        "\ndnsdoc analysis cost: `watch --pcap` under callgrind (cache simulator, 2 MiB LL), \
         loopback captures of {n} and {} queries over {NAMES} names from {CLIENTS} sockets, \
         {} in flight; per query = (2N run - N run) / N",
        2 * n,
        ANSWER_US / EVERY_US
    );
    let small = dir.path().join("n.pcap");
    let large = dir.path().join("2n.pcap");
    std::fs::write(&small, capture(n)).unwrap();
    std::fs::write(&large, capture(2 * n)).unwrap();
    println!(
        "{:<34} {:>14} {:>18}",
        "per query", "instructions", "LL read misses"
    );
    for (label, function) in STAGES {
        let (a, b) = (
            measure(&small, n, *function),
            measure(&large, 2 * n, *function),
        );
        let ir = b.0.saturating_sub(a.0) as f64 / n as f64;
        let miss = b.1.saturating_sub(a.1) as f64 / n as f64;
        println!("{label:<34} {ir:>14.0} {miss:>18.2}");
    }
    live(dir.path());
}

/// The live stages, by the function that does each; None: the whole run.
const LIVE_STAGES: &[(&str, Option<&str>)] = &[
    ("whole run", None),
    (
        "ring -> decoded batch",
        Some("*LiveSource*EventSource*poll"),
    ),
    (
        "parse, twins, matching, owners",
        Some("dnsdoc::analysis::Analyzer::on_event"),
    ),
    (
        "aggregation",
        Some("dnsdoc::analysis::aggregate::Aggregator::add"),
    ),
    ("lookups", Some("dnsdoc::pipeline::Lookups::add")),
];
/// dnsperf's rate in the live runs: one the watched dnsdoc keeps up with under callgrind.
const LIVE_QPS: &str = "1000";

/// Counts the live stages (see the module doc).
fn live(dir: &Path) {
    if !require_bpf("bench analysis_cost (live part)") {
        return;
    }
    let cg = TestCgroup::new("analysis-cost");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let queries = write_query_file(dir);
    println!(
        "\nlive: `dnsdoc watch` under callgrind (no cache simulator), dnsperf at {LIVE_QPS} \
         q/s to dnsmasq on 127.0.0.1:{port}, 1 000 names; per query = (4 s run - 2 s run) \
         / (its extra queries)"
    );
    println!("{:<34} {:>14}", "per query", "instructions");
    for (label, function) in LIVE_STAGES {
        let (ir_a, q_a) = live_run(&cg, port, &queries, 2, dir, *function);
        let (ir_b, q_b) = live_run(&cg, port, &queries, 4, dir, *function);
        let ir = ir_b.saturating_sub(ir_a) as f64 / q_b.saturating_sub(q_a).max(1) as f64;
        println!("{label:<34} {ir:>14.0}");
    }
}

/// One watched dnsperf run of `seconds` under callgrind (counting inside `function`
/// only, when given): (instructions, queries dnsdoc saw). Fails when dnsdoc dropped
/// events or did not see every query dnsperf completed.
fn live_run(
    cg: &TestCgroup,
    port: u16,
    queries: &str,
    seconds: u64,
    dir: &Path,
    function: Option<&str>,
) -> (u64, u64) {
    let out = dir.join("live.callgrind");
    let json = dir.join("live.json");
    let mut cmd = callgrind(&out, function);
    cmd.arg(env!("CARGO_BIN_EXE_dnsdoc"))
        .args([
            "watch",
            "--duration",
            "120s",
            "--no-progress",
            "--format",
            "json",
        ])
        .args(["--port", &port.to_string(), "--cgroup"])
        .arg(&cg.path)
        .arg("-o")
        .arg(&json);
    let watch = spawn_attached(cmd);
    let perf = dnsperf(
        cg,
        port,
        queries,
        seconds,
        &["-Q", LIVE_QPS, "-c", "8", "-T", "1", "-t", "2"],
    );
    let (code, _, stderr) = watch.interrupt();
    assert_eq!(code, Some(0), "dnsdoc under callgrind failed: {stderr:?}");
    let snap = Snapshot::read(&json).expect("the snapshot");
    let seen = snap.totals.counts.queries;
    assert_eq!(snap.capture.dropped.total, 0, "dropped");
    assert_eq!(
        seen, perf.completed,
        "dnsdoc saw every query dnsperf completed"
    );
    (totals(&out).0, seen)
}

/// Runs the analysis over `pcap` under callgrind, counting only inside `function` when
/// given, and checks that it counted all `queries`. Returns (instructions, LL read
/// misses).
fn measure(pcap: &Path, queries: u64, function: Option<&str>) -> (u64, u64) {
    let out = pcap.with_extension("callgrind");
    let json = pcap.with_extension("json");
    let run = callgrind(&out, function)
        .args(["--cache-sim=yes", LL])
        .arg(env!("CARGO_BIN_EXE_dnsdoc"))
        .args(["watch", "--port", "53", "--format", "json", "--pcap"])
        .arg(pcap)
        .arg("-o")
        .arg(&json)
        .output()
        .expect("running valgrind");
    assert!(
        run.status.success(),
        "callgrind run failed (valgrind's messages: {}): {}",
        out.with_extension("log").display(),
        String::from_utf8_lossy(&run.stderr)
    );
    let snap = Snapshot::read(&json).expect("the snapshot");
    assert_eq!(
        snap.totals.counts.queries, queries,
        "the analysis counted every query of the capture"
    );
    totals(&out)
}

/// valgrind running callgrind into `out` (its own messages, such as the eBPF commands it
/// does not know, into `out` with `.log`), counting only inside `function` when given.
/// The caller adds more valgrind options, then the program.
fn callgrind(out: &Path, function: Option<&str>) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.args(["-q", "--tool=callgrind"])
        .arg(format!(
            "--log-file={}",
            out.with_extension("log").display()
        ))
        .arg(format!("--callgrind-out-file={}", out.display()));
    if let Some(f) = function {
        cmd.arg(format!("--toggle-collect={f}"));
    }
    cmd
}

/// (instructions, LL read misses; 0 without the cache simulator) of a callgrind output
/// file: its "events:" and "totals:" lines.
fn totals(out: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(out).unwrap();
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} line in {}", out.display()))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (events, totals) = (line("events:"), line("totals:"));
    let get = |event: &str| -> u64 {
        let i = events.iter().position(|e| e == event);
        i.and_then(|i| totals.get(i))
            .map_or(0, |v| v.parse().unwrap())
    };
    (get("Ir"), get("DLmr"))
}

/// A legacy pcap (Ethernet) of `queries` A queries from 127.0.0.1 to 127.0.0.1:53, one
/// every EVERY_US, each answered ANSWER_US later with one address (a compression pointer
/// to the question, as dnsmasq answers).
fn capture(queries: u64) -> Vec<u8> {
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::with_capacity(2 * queries as usize);
    for i in 0..queries {
        let name = format!("h{}.good.test", i % NAMES);
        let id = (i % 65_536) as u16;
        let port = 40_000 + (i % CLIENTS) as u16;
        let ts_us = 1_000_000 + i * EVERY_US;
        frames.push((ts_us, frame(port, 53, &message(id, false, &name))));
        frames.push((
            ts_us + ANSWER_US,
            frame(53, port, &message(id, true, &name)),
        ));
    }
    frames.sort_by_key(|(ts, _)| *ts);
    let mut f = pcap_header(1, 65_535);
    for (ts_us, data) in frames {
        pcap_record(&mut f, ts_us, &data);
    }
    f
}

/// A query for `name` A, or its NOERROR answer with one A record.
fn message(id: u16, response: bool, name: &str) -> Vec<u8> {
    let flags: u16 = if response { 0x8580 } else { 0x0100 };
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, u8::from(response), 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    if response {
        // Name (pointer to offset 12), A, IN, TTL 0, 4 bytes of address.
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 0, 0, 1]);
    }
    m
}

fn frame(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([0; 6], [0; 6])
        .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}
