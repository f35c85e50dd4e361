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
mod support;

use common::*;
use support::*;

/// dnsperf at a fixed rate: 4 clients on 2 threads, up to 2000 queries outstanding.
fn dnsperf_at(cg: &TestCgroup, port: u16, file: &str, rate: u64, seconds: u64) -> Perf {
    let rate_s = rate.to_string();
    let extra = ["-Q", &rate_s, "-c", "4", "-T", "2", "-q", "2000", "-t", "2"];
    dnsperf(cg, port, file, seconds, &extra)
}

fn main() {
    if !asked_to_run("overhead") {
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
    let seconds = bench_seconds();

    let cg = TestCgroup::new("bench");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &["--dns-forward-max=10000"]);
    let dir = TempDir::new("bench");
    let file = write_query_file(dir.path());

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
    println!("(peak RSS in MiB includes the ring buffer, mapped twice: 2 x 2 MiB by default)");
    for rate in rates {
        let base = dnsperf_at(&cg, port, &file, rate, seconds);
        // dnsperf gives up on a query after 2 s (-t 2) and may then reuse its id for the
        // same name; the same timeout here keeps "a new query" meaning the same for both.
        let watch = start_watch(&cg, &[port], &["--timeout", "2s"]);
        let pid = watch.pid();
        let start = usage(pid);
        let with = dnsperf_at(&cg, port, &file, rate, seconds);
        let end = usage(pid);
        let snap = watch.stop().snapshot;
        let cpu_pct = (end.cpu_s - start.cpu_s) / seconds as f64 * 100.0;
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
            end.peak_rss_mib,
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
            start.rss_anon_mib,
            end.rss_anon_mib,
            snap.latency.p50_ms,
            snap.latency.p99_ms,
            with.avg_latency_ms,
            base.avg_latency_ms
        );
    }
}
