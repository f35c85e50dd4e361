//! `make bench`: what watching costs, and whether the counts are exact.
//!
//! Runs dnsperf against a local dnsmasq at fixed rates, first without dnsdoc (the
//! baseline, measured in the same run) and then under `dnsdoc watch`, and prints the
//! server's throughput ratio, dnsdoc's CPU per 10K queries/s, its peak RSS, events
//! dropped, and whether dnsdoc's counts equal dnsperf's. Needs root.
//! Rates: DNSDOC_BENCH_RATES (default "20000,50000"); seconds per run:
//! DNSDOC_BENCH_SECONDS (default 10).

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs;

use common::*;

/// What one dnsperf run reported.
#[derive(Debug, Default, Clone, Copy)]
struct Perf {
    sent: u64,
    completed: u64,
    qps: f64,
    avg_latency_ms: f64,
}

fn dnsperf(cg: &TestCgroup, port: u16, file: &str, rate: u64, seconds: u64) -> Perf {
    let (port_s, rate_s, secs) = (port.to_string(), rate.to_string(), seconds.to_string());
    let args = [
        "-s",
        "127.0.0.1",
        "-p",
        &port_s,
        "-d",
        file,
        "-Q",
        &rate_s,
        "-l",
        &secs,
        "-c",
        "4",
        "-T",
        "2",
        "-q",
        "2000",
        "-t",
        "2",
    ];
    let (_, out) = cg.run("dnsperf", &args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |label: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no '{label}' in dnsperf output:\n{text}"))
    };
    Perf {
        sent: field("Queries sent:") as u64,
        completed: field("Queries completed:") as u64,
        qps: field("Queries per second:"),
        avg_latency_ms: field("Average Latency (s):") * 1e3,
    }
}

/// (user+system CPU seconds, heap in MiB (RssAnon), peak RSS in MiB) of a process.
/// RSS also counts the ring buffer, which libbpf maps twice (2 x --ring-buffer-bytes,
/// kernel memory); RssAnon is dnsdoc's own memory.
fn cpu_and_rss(pid: u32) -> (f64, f64, f64) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" of comm: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc_sysconf_clk_tck() };
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks / hz, kb("RssAnon:") / 1024.0, kb("VmHWM:") / 1024.0)
}

extern "C" {
    fn sysconf(name: i32) -> i64;
}

/// # Safety
/// Calls libc's sysconf(_SC_CLK_TCK), which is always safe to call.
unsafe fn libc_sysconf_clk_tck() -> f64 {
    const SC_CLK_TCK: i32 = 2;
    // SAFETY: see the function's contract.
    unsafe { sysconf(SC_CLK_TCK) as f64 }
}

fn main() {
    // `cargo test --all-targets` also runs harness-less benches, without `--bench`:
    // the benchmark takes minutes, so it only runs when asked for.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("overhead: run with `make bench` (cargo bench --bench overhead)");
        return;
    }
    if !require_bpf("bench overhead") {
        return;
    }
    let rates: Vec<u64> = std::env::var("DNSDOC_BENCH_RATES")
        .unwrap_or_else(|_| "20000,50000".into())
        .split(',')
        .map(|r| r.trim().parse().expect("DNSDOC_BENCH_RATES: numbers"))
        .collect();
    let seconds: u64 = std::env::var("DNSDOC_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(1, 120);

    let cg = TestCgroup::new("bench");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &["--dns-forward-max=10000"]);
    let dir = TempDir::new("bench");
    let file = dir.path().join("queries.txt");
    let mut q = String::new();
    for i in 0..1000 {
        match i % 10 {
            0..=6 => q.push_str(&format!("h{i}.good.test A\n")),
            7 | 8 => q.push_str(&format!("n{i}.test A\n")),
            _ => q.push_str(&format!("h{i}.good.test AAAA\n")),
        }
    }
    fs::write(&file, q).unwrap();
    let file = file.to_str().unwrap().to_string();

    println!(
        "dnsdoc overhead benchmark: dnsperf -> dnsmasq on 127.0.0.1:{port}, {seconds}s per run"
    );
    println!(
        "{:>8} {:>10} {:>10} {:>7} {:>9} {:>9} {:>13} {:>9} {:>8} {:>7}",
        "rate",
        "base q/s",
        "watch q/s",
        "ratio",
        "lat ratio",
        "cpu %",
        "cpu%/10Kqps",
        "peak RSS",
        "dropped",
        "exact"
    );
    println!("(peak RSS in MiB includes the ring buffer, mapped twice: 2 x 16 MiB by default)");
    for rate in rates {
        let base = dnsperf(&cg, port, &file, rate, seconds);
        // dnsperf gives up on a query after 2 s (-t 2) and may then reuse its id for the
        // same name; the same timeout here keeps "a new query" meaning the same for both.
        let watch = start_watch(&cg, &[port], &["--timeout", "2s"]);
        let pid = watch.pid();
        let (cpu0, heap_start, _) = cpu_and_rss(pid);
        let with = dnsperf(&cg, port, &file, rate, seconds);
        let (cpu1, heap_end, rss) = cpu_and_rss(pid);
        let snap = watch.stop().snapshot;
        let cpu_pct = (cpu1 - cpu0) / seconds as f64 * 100.0;
        let per_10k = cpu_pct / (with.qps / 10_000.0);
        let t = &snap.totals.counts;
        let exact = t.queries == with.sent && t.responses == with.completed;
        println!(
            "{:>8} {:>10.0} {:>10.0} {:>7.3} {:>9.3} {:>9.1} {:>13.2} {:>9.1} {:>8} {:>7}",
            rate,
            base.qps,
            with.qps,
            with.qps / base.qps,
            with.avg_latency_ms / base.avg_latency_ms,
            cpu_pct,
            per_10k,
            rss,
            snap.capture.dropped.total,
            if exact { "yes" } else { "NO" }
        );
        if !exact {
            println!(
                "         dnsperf sent {} completed {}; dnsdoc queries {} responses {} timeouts {} pending {} retransmissions {}",
                with.sent,
                with.completed,
                t.queries,
                t.responses,
                t.timeouts,
                snap.capture.pending_at_end,
                snap.totals.retransmissions
            );
        }
        println!(
            "         dnsdoc: {} packets, {} events, heap (RssAnon) {:.1} MiB after attach -> {:.1} MiB after the run; p50 {:?} ms, p99 {:?} ms; dnsperf avg latency {:.3} ms (baseline {:.3} ms)",
            snap.capture.packets,
            snap.capture.events,
            heap_start,
            heap_end,
            snap.latency.p50_ms,
            snap.latency.p99_ms,
            with.avg_latency_ms,
            base.avg_latency_ms
        );
    }
}
