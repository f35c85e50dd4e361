//! The node's own DNS servers, live: a real dnsmasq forwarding to a real unbound (both
//! recognised, both hops timed), a dnsmasq whose upstream never answers (the failing
//! upstream finding), and a bounded forwarder pointed at its own address (the loop
//! finding). Everything on 127.0.0.1, in the test's cgroup.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use dnsdoc::snapshot::{LocalServer, Snapshot};

/// A UDP "upstream" on 127.0.0.1:PORT that reads every query and never answers; it
/// exits by itself after 60 s.
const SILENT_UPSTREAM: &str = "\
import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(('127.0.0.1', int(sys.argv[1])))
u.settimeout(0.2)
print('ready', flush=True)
end = time.time() + 60
while time.time() < end:
    try:
        u.recvfrom(4096)
    except socket.timeout:
        pass
";

/// A forwarder on 127.0.0.1:PORT whose upstream is its own listening address: every
/// query it receives it forwards, from a socket of its own, to itself. Bounded: each
/// query goes round at most 10 times and 100 forwards in all, it never answers, and it
/// exits after 60 s.
const SELF_FORWARDER: &str = "\
import socket, sys, time
port = int(sys.argv[1])
listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
listen.bind(('127.0.0.1', port))
listen.settimeout(0.2)
upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
upstream.bind(('127.0.0.1', 0))
print('ready', flush=True)
rounds, total, end = {}, 0, time.time() + 60
while time.time() < end:
    try:
        data, peer = listen.recvfrom(4096)
    except socket.timeout:
        continue
    if rounds.get(data, 0) < 10 and total < 100:
        rounds[data] = rounds.get(data, 0) + 1
        total += 1
        upstream.sendto(data, ('127.0.0.1', port))
";

/// Runs a python server script in the cgroup and waits for its "ready".
fn start_python(cg: &TestCgroup, script: &str, port: u16) -> Guard {
    let mut child = cg
        .command("python3", &["-c", script, &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    Guard(child)
}

/// dnsmasq on 127.0.0.1:PORT answering nothing itself, forwarding everything to
/// 127.0.0.1:UPSTREAM, without a cache (every query is a trip upstream).
fn start_forwarding_dnsmasq(cg: &TestCgroup, port: u16, upstream: u16) -> Guard {
    let server = format!("--server=127.0.0.1#{upstream}");
    start_dnsmasq_with(
        cg,
        port,
        &Dnsmasq {
            zone: &[],
            listen: "127.0.0.1",
            extra: &[&server, "--cache-size=0"],
            ..Dnsmasq::default()
        },
    )
}

fn server<'a>(s: &'a Snapshot, kind: &str) -> &'a LocalServer {
    s.local_servers
        .iter()
        .find(|l| l.kind == kind)
        .unwrap_or_else(|| panic!("no local server of kind {kind}: {:#?}", s.local_servers))
}

/// `dig` with one query per name, each tried once.
fn dig_names(cg: &TestCgroup, port: u16, names: &[String], wait_s: u32) {
    let port = port.to_string();
    let time = format!("+time={wait_s}");
    let mut args = vec!["@127.0.0.1", "-p", &port, "+tries=1", &time, "+short"];
    args.extend(names.iter().map(String::as_str));
    let (_, out) = cg.run("dig", &args);
    assert!(out.status.success() || wait_s > 0, "dig: {out:?}");
}

#[test]
fn a_forwarding_cache_and_its_upstream_are_recognised_with_both_hops_timed() {
    if !require_bpf("a_forwarding_cache_and_its_upstream_are_recognised_with_both_hops_timed") {
        return;
    }
    let cg = TestCgroup::new("hops");
    let dir = TempDir::new("hops");
    let (cache_port, upstream_port) = (free_port(), free_port());
    let _unbound = start_unbound(&cg, upstream_port, &dir, &[]);
    let _dnsmasq = start_forwarding_dnsmasq(&cg, cache_port, upstream_port);
    let watch = start_watch(&cg, &[cache_port, upstream_port], &["--timeout", "1s"]);
    let n = 30;
    let names: Vec<String> = (0..n).map(|i| format!("n{i}.good.test")).collect();
    dig_names(&cg, cache_port, &names, 2);
    let s = watch.stop().snapshot;

    let cache = server(&s, "dnsmasq");
    let upstream = server(&s, "unbound");
    assert_eq!(cache.comm, "dnsmasq");
    assert!(
        cache
            .listens
            .contains(&format!("127.0.0.1:{cache_port}/udp")),
        "{cache:#?}"
    );
    assert_eq!(cache.counts.queries, n, "client-facing hop: {cache:#?}");
    assert_eq!(cache.counts.rcodes.NOERROR, n);
    assert_eq!(cache.latency.samples, n);
    assert_eq!(cache.upstream.counts.queries, n, "upstream hop: {cache:#?}");
    assert_eq!(cache.upstream.latency.samples, n);
    assert_eq!(
        cache.upstream.servers,
        vec![format!("127.0.0.1:{upstream_port}")]
    );
    assert_eq!((cache.loops.self_queries, cache.loops.returned), (0, 0));
    assert_eq!(upstream.counts.queries, n, "{upstream:#?}");
    assert_eq!(
        upstream.upstream.counts.queries, 0,
        "unbound answers locally"
    );
    // Each hop contains the next one: dnsmasq answers its clients only after unbound
    // answered it, and its wait for unbound includes unbound's own time.
    let p50 = |l: &dnsdoc::snapshot::Latency| l.p50_ms.unwrap();
    assert!(
        p50(&cache.latency) >= p50(&cache.upstream.latency) * 0.99,
        "{cache:#?}"
    );
    assert!(
        p50(&cache.upstream.latency) >= p50(&upstream.latency) * 0.99,
        "{cache:#?} {upstream:#?}"
    );
    // The summary shows the forwarder's two hops.
    let text = dnsdoc::render::summary::render(&s);
    let hops = text
        .split("Local DNS server hops")
        .nth(1)
        .unwrap_or_else(|| panic!("no hops table: {text}"));
    assert!(hops.contains(&format!("dnsmasq ({})", cache.pid)), "{text}");
    assert!(
        hops.contains(&format!("127.0.0.1:{upstream_port}")),
        "{text}"
    );
}

#[test]
fn an_upstream_that_never_answers_is_the_caches_failing_upstream() {
    if !require_bpf("an_upstream_that_never_answers_is_the_caches_failing_upstream") {
        return;
    }
    let cg = TestCgroup::new("upstream-down");
    let (cache_port, upstream_port) = (free_port(), free_port());
    let _silent = start_python(&cg, SILENT_UPSTREAM, upstream_port);
    let _dnsmasq = start_forwarding_dnsmasq(&cg, cache_port, upstream_port);
    let dir = TempDir::new("upstream-down");
    let n = 15;
    let names: String = (0..n).map(|i| format!("n{i}.down.test A\n")).collect();
    let data = dir.write("queries.txt", &names);
    let watch = start_watch(&cg, &[cache_port, upstream_port], &["--timeout", "1s"]);
    let port = cache_port.to_string();
    let (_, out) = cg.run(
        "dnsperf",
        &[
            "-s",
            "127.0.0.1",
            "-p",
            &port,
            "-d",
            &data,
            "-n",
            "1",
            "-c",
            "1",
            "-t",
            "1",
        ],
    );
    assert!(out.status.success(), "dnsperf: {out:?}");
    // Past the capture timeout, so every upstream query is a timeout, not pending.
    std::thread::sleep(Duration::from_millis(2500));
    let s = watch.stop().snapshot;

    let cache = server(&s, "dnsmasq");
    assert_eq!(cache.upstream.counts.queries, n, "{cache:#?}");
    assert_eq!(cache.upstream.counts.timeouts, n, "{cache:#?}");
    assert_eq!(
        cache.upstream.servers,
        vec![format!("127.0.0.1:{upstream_port}")]
    );
    assert_eq!(cache.counts.queries, n, "the clients waited on the cache");
    assert_eq!(cache.counts.responses, 0, "{cache:#?}");

    let rule = builtin_rule("dns_local_server_upstream_failing");
    let f = doctor_finding(&s, "dns_local_server_upstream_failing");
    let expected = rule.classify(1.0).unwrap().0;
    assert_eq!(f["severity"], serde_json::to_value(expected).unwrap());
    let subject = f["subject"].as_str().unwrap();
    assert!(
        subject.contains("dnsmasq") && subject.contains(&port),
        "{subject}"
    );
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("{n} timed out")), "{summary}");
}

#[test]
fn a_forwarder_pointed_at_its_own_address_is_a_loop() {
    if !require_bpf("a_forwarder_pointed_at_its_own_address_is_a_loop") {
        return;
    }
    let cg = TestCgroup::new("loop");
    let port = free_port();
    let _fwd = start_python(&cg, SELF_FORWARDER, port);
    let watch = start_watch(&cg, &[port], &["--timeout", "1s"]);
    let names: Vec<String> = (0..3).map(|i| format!("n{i}.loop.test")).collect();
    dig_names(&cg, port, &names, 1);
    std::thread::sleep(Duration::from_millis(1200));
    let s = watch.stop().snapshot;

    let fwd = server(&s, "other");
    assert_eq!(fwd.comm, "python3");
    // One forwarded query per client query (its re-sends are retransmissions), each
    // aimed at its own address and each arriving back.
    assert_eq!(fwd.loops.self_queries, 3, "{fwd:#?}");
    assert_eq!(fwd.loops.returned, 3, "{fwd:#?}");
    assert_eq!(fwd.upstream.servers, vec![format!("127.0.0.1:{port}")]);

    let f = doctor_finding(&s, "dns_local_server_loop");
    assert!(f["subject"].as_str().unwrap().contains("python3"), "{f:#}");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains("sent 3 upstream queries to its own address"),
        "{summary}"
    );
    let fix = f["remediation"].to_string();
    assert!(fix.contains("loop plugin"), "{fix}");
}
