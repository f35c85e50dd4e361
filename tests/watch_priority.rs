//! `--cpu-priority`: at a high packet rate the analysis yields the CPU (SCHED_IDLE) and
//! takes normal priority again when the rate falls, without losing a packet; with
//! `normal` it never yields. Real dnsperf load on loopback, scoped to a test cgroup.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The scheduling policy of thread `pid` (its main thread): field 41 of
/// /proc/PID/stat (0 SCHED_OTHER, 5 SCHED_IDLE).
fn policy(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(41 - 3)?.parse().ok()
}

const SCHED_IDLE: u32 = 5;

/// Runs dnsperf at `rate` q/s for `seconds` in the cgroup while sampling dnsdoc's
/// policy every 20 ms; returns (queries completed, policies seen during the load).
fn load_and_sample(cg: &TestCgroup, port: u16, file: &str, pid: u32, rate: u32) -> (u64, Vec<u32>) {
    let (cg_path, file) = (cg.path.clone(), file.to_string());
    let port_s = port.to_string();
    let rate_s = rate.to_string();
    let perf = std::thread::spawn(move || {
        let args = [
            "-s",
            "127.0.0.1",
            "-p",
            &port_s,
            "-d",
            &file,
            "-l",
            "3",
            "-Q",
            &rate_s,
            "-c",
            "4",
            "-t",
            "5",
        ];
        let out = command_in_cgroup(&cg_path, "dnsperf", &args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find_map(|l| l.trim().strip_prefix("Queries completed:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no completed count in dnsperf output:\n{text}"))
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !perf.is_finished() && Instant::now() < deadline {
        if let Some(p) = policy(pid) {
            seen.push(p);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (perf.join().unwrap(), seen)
}

fn query_file(dir: &TempDir) -> String {
    let path = dir.path().join("queries");
    let lines: String = (0..100).map(|i| format!("h{i}.good.test A\n")).collect();
    std::fs::write(&path, lines).unwrap();
    path.display().to_string()
}

#[test]
fn auto_yields_at_high_rates_comes_back_after_and_loses_nothing() {
    if !require_bpf("auto_yields_at_high_rates_comes_back_after_and_loses_nothing") {
        return;
    }
    let cg = TestCgroup::new("prio");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let dir = TempDir::new("prio");
    let file = query_file(&dir);
    let watch = start_watch(&cg, &[port], &[]);
    let pid = watch.pid();
    assert_eq!(policy(pid), Some(0), "normal priority before any load");
    // 10K q/s is 40K packets/s on loopback: twice the rate at which dnsdoc yields.
    let (completed, seen) = load_and_sample(&cg, port, &file, pid, 10_000);
    if require_native_speed(
        "auto_yields_at_high_rates_comes_back_after_and_loses_nothing",
        "the load must reach 40K packets/s for dnsdoc to yield",
    ) {
        assert!(
            seen.contains(&SCHED_IDLE),
            "never at SCHED_IDLE during the load: {seen:?}"
        );
    }
    // The rate is measured over quarter-second windows: give it a few.
    let back = Instant::now();
    while policy(pid) != Some(0) && back.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        policy(pid),
        Some(0),
        "normal priority again once the load stopped"
    );
    let s = watch.stop().snapshot;
    assert_eq!(s.capture.dropped.total, 0);
    assert_eq!(s.totals.counts.responses, completed);
}

#[test]
fn normal_never_yields() {
    if !require_bpf("normal_never_yields") {
        return;
    }
    let cg = TestCgroup::new("prio-normal");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let dir = TempDir::new("prio-normal");
    let file = query_file(&dir);
    let watch = start_watch(&cg, &[port], &["--cpu-priority", "normal"]);
    let pid = watch.pid();
    let (completed, seen) = load_and_sample(&cg, port, &file, pid, 10_000);
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|&p| p == 0), "yielded: {seen:?}");
    let s = watch.stop().snapshot;
    assert_eq!(s.totals.counts.responses, completed);
}
