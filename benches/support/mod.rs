//! Helpers shared by the benchmarks (benches/overhead.rs, benches/saturation.rs):
//! dnsperf runs and their report, a process's CPU time and memory, the query file,
//! environment knobs, BPF run-time stats. Each bench declares `mod common`
//! (tests/common) at its root and this module next to it.
#![allow(dead_code)]

pub mod bpf_stats;

use std::fs;
use std::path::Path;

use crate::common::TestCgroup;

/// What one dnsperf run reported.
#[derive(Debug, Default, Clone, Copy)]
pub struct Perf {
    pub sent: u64,
    pub completed: u64,
    pub qps: f64,
    pub avg_latency_ms: f64,
}

/// Runs `dnsperf -s 127.0.0.1 -p PORT -d FILE -l SECONDS <extra>` inside the cgroup and
/// parses its report. `extra` carries the load shape (-Q, -c, -T, -q, -t).
pub fn dnsperf(cg: &TestCgroup, port: u16, file: &str, seconds: u64, extra: &[&str]) -> Perf {
    let (port_s, secs) = (port.to_string(), seconds.to_string());
    let mut args = vec!["-s", "127.0.0.1", "-p", &port_s, "-d", file, "-l", &secs];
    args.extend_from_slice(extra);
    let (_, out) = cg.run("dnsperf", &args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |label: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no '{label}' in dnsperf output:\n{text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    };
    Perf {
        sent: field("Queries sent:") as u64,
        completed: field("Queries completed:") as u64,
        qps: field("Queries per second:"),
        avg_latency_ms: field("Average Latency (s):") * 1e3,
    }
}

/// A process's CPU time and memory, from /proc/PID/stat and /proc/PID/status.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    /// user + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Heap and other anonymous memory (RssAnon), MiB.
    pub rss_anon_mib: f64,
    /// Peak resident set size (VmHWM), MiB. It also counts the ring buffer, which libbpf
    /// maps twice (2 x --ring-buffer-bytes of kernel memory, once touched).
    pub peak_rss_mib: f64,
}

pub fn usage(pid: u32) -> Usage {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" of comm: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Usage {
        cpu_s: ticks / hz,
        rss_anon_mib: kb("RssAnon:") / 1024.0,
        peak_rss_mib: kb("VmHWM:") / 1024.0,
    }
}

/// Writes 1000 queries that start_dnsmasq's zone (and the saturation bench's unbound)
/// answers locally: 70 % `h<i>.good.test A`, 10 % AAAA (NOERROR with an address),
/// 20 % `n<i>.test A` (NXDOMAIN). Returns the file's path.
pub fn write_query_file(dir: &Path) -> String {
    let file = dir.join("queries.txt");
    let mut q = String::new();
    for i in 0..1000 {
        match i % 10 {
            0..=6 => q.push_str(&format!("h{i}.good.test A\n")),
            7 | 8 => q.push_str(&format!("n{i}.test A\n")),
            _ => q.push_str(&format!("h{i}.good.test AAAA\n")),
        }
    }
    fs::write(&file, q).unwrap();
    file.to_str().unwrap().to_string()
}

/// An integer environment knob: `default` when unset or unparsable, clamped to `range`.
pub fn env_u64(name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
        .clamp(*range.start(), *range.end())
}

/// Seconds per dnsperf run: DNSDOC_BENCH_SECONDS (default 10). At most 50, because
/// start_watch gives `dnsdoc watch` a 60 s window.
pub fn bench_seconds() -> u64 {
    env_u64("DNSDOC_BENCH_SECONDS", 10, 1..=50)
}

/// True when the benchmark was asked for. `cargo test --all-targets` also runs
/// harness-less benches, without `--bench`; a benchmark takes minutes, so it only runs
/// under `cargo bench` (`make bench`).
pub fn asked_to_run(name: &str) -> bool {
    if std::env::args().any(|a| a == "--bench") {
        return true;
    }
    eprintln!("{name}: run with `make bench` (cargo bench --bench {name})");
    false
}

/// The median (mean of the middle two for an even count); NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The 1-minute load average, to tell a reader whether something else was running.
pub fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}
