//! `dnsdoc watch` against the real kernel, a real dnsmasq and real clients (dig, glibc
//! getaddrinfo via getent, dnsperf). Counts must equal exactly what the clients saw.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use dnsdoc::snapshot::{Rcodes, Snapshot};

/// Adds one rcode by name to a tally.
fn tally(r: &mut Rcodes, status: &str) {
    match status {
        "NOERROR" => r.NOERROR += 1,
        "NXDOMAIN" => r.NXDOMAIN += 1,
        "SERVFAIL" => r.SERVFAIL += 1,
        "REFUSED" => r.REFUSED += 1,
        "FORMERR" => r.FORMERR += 1,
        "NOTIMP" => r.NOTIMP += 1,
        other => panic!("unexpected status {other}"),
    }
}

fn assert_clean_capture(s: &Snapshot) {
    let c = &s.capture;
    let servers: Vec<_> = s
        .servers
        .iter()
        .map(|v| (&v.server, &v.protocol, v.counts.queries, v.counts.responses))
        .collect();
    eprintln!("capture: {c:?}\nservers: {servers:?}");
    assert_eq!(c.dropped.total, 0, "dropped: {:?}", c.dropped);
    assert_eq!(c.parse_errors, 0, "parse errors");
    assert_eq!(c.unmatched_responses, 0, "unmatched responses");
    assert_eq!(c.tcp_desyncs, 0, "tcp desyncs");
    assert_eq!(c.pending_at_end, 0, "pending at end");
    assert_eq!(
        c.packets, c.events,
        "every packet the kernel saw reached user space"
    );
}

#[test]
fn dig_over_udp_tcp_ipv4_ipv6_counts_match_exactly() {
    if !require_bpf("dig_over_udp_tcp_ipv4_ipv6_counts_match_exactly") {
        return;
    }
    let cg = TestCgroup::new("dig");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let watch = start_watch(&cg, &[port], &[]);

    // (server, name, type, tcp)
    let plan = [
        ("127.0.0.1", "a.good.test", "A", false),
        ("127.0.0.1", "b.good.test", "A", false),
        ("127.0.0.1", "missing.test", "A", false),
        ("127.0.0.1", "example.com", "A", false),
        ("127.0.0.1", "c.good.test", "A", true),
        ("127.0.0.1", "gone.test", "A", true),
        ("::1", "d.good.test", "AAAA", false),
        ("::1", "other.test", "AAAA", false),
        ("::1", "e.good.test", "A", true),
        ("::1", "example.org", "A", true),
    ];
    let port_s = port.to_string();
    let mut expected = Rcodes::default();
    let mut by_pid = BTreeMap::new();
    for (server, name, qtype, tcp) in plan {
        let at = format!("@{server}");
        let mut args = vec![
            at.as_str(),
            "-p",
            &port_s,
            name,
            qtype,
            "+tries=1",
            "+timeout=3",
        ];
        if tcp {
            args.push("+tcp");
        }
        let (pid, out) = cg.run("dig", &args);
        let status = dig_status(&out).unwrap_or_else(|| panic!("dig {name}: no answer"));
        tally(&mut expected, &status);
        by_pid.insert(pid, status);
    }
    let r = watch.stop();
    let s = &r.snapshot;
    assert_eq!(
        s, &r.stdout_snapshot,
        "stdout and -o carry the same snapshot"
    );
    assert_clean_capture(s);

    let t = &s.totals;
    assert_eq!(t.counts.queries, 10);
    assert_eq!(t.counts.responses, 10);
    assert_eq!(t.counts.timeouts, 0);
    assert_eq!(t.counts.rcodes, expected);
    assert!(
        expected.NXDOMAIN >= 3 && expected.REFUSED >= 2,
        "{expected:?}"
    );
    assert_eq!((t.udp_queries, t.tcp_queries), (6, 4));
    assert_eq!((t.ipv4_queries, t.ipv6_queries), (6, 4));
    assert_eq!(s.latency.samples, 10);
    assert!(s.latency.p50_ms.unwrap() > 0.0);
    assert!(s.latency.max_ms.unwrap() >= s.latency.p99_ms.unwrap());

    // Each dig is its own process: every answer belongs to the right one.
    assert_eq!(s.processes.len(), 10, "{:#?}", s.processes);
    // The name is read from /proc while dig lives: a race an emulated CPU loses, and
    // then the kernel's thread name stands in.
    let proc_names = require_native_speed(
        "dig_over_udp_tcp_ipv4_ipv6_counts_match_exactly (process names)",
        "reads /proc/PID/comm before a one-query dig exits",
    );
    let mut named_from_proc = 0;
    for (pid, status) in &by_pid {
        let p = s
            .processes
            .iter()
            .find(|p| p.pid == *pid)
            .unwrap_or_else(|| panic!("no row for dig pid {pid}: {:#?}", s.processes));
        assert!(p.comm == "dig" || p.comm.starts_with("isc-net"), "{p:?}");
        named_from_proc += usize::from(p.comm == "dig");
        assert_eq!(p.counts.queries, 1);
        let mut want = Rcodes::default();
        tally(&mut want, status);
        assert_eq!(p.counts.rcodes, want, "pid {pid}");
        assert!(p.cgroup.as_deref().unwrap().contains("dnsdoc-test-dig"));
    }
    // dnsdoc is woken by a new process's first packet and reads /proc while dig waits
    // for its answer (~100 us on loopback): on a loaded 2-core box it can lose that race
    // for a dig or two (seen under a parallel build), never for most.
    if proc_names {
        assert!(
            named_from_proc * 2 > by_pid.len(),
            "most digs named from /proc, not by their thread name: {:#?}",
            s.processes
        );
    }

    // Per server and protocol.
    let row = |srv: String, proto: &str| {
        s.servers
            .iter()
            .find(|v| v.server == srv && v.protocol == proto)
            .unwrap_or_else(|| panic!("no server row {srv} {proto}"))
            .counts
            .queries
    };
    assert_eq!(row(format!("127.0.0.1:{port}"), "udp"), 4);
    assert_eq!(row(format!("127.0.0.1:{port}"), "tcp"), 2);
    assert_eq!(row(format!("[::1]:{port}"), "udp"), 2);
    assert_eq!(row(format!("[::1]:{port}"), "tcp"), 2);

    let qt: BTreeMap<_, _> = s
        .qtypes
        .iter()
        .map(|q| (q.qtype.as_str(), q.counts.queries))
        .collect();
    assert_eq!(qt, BTreeMap::from([("A", 8), ("AAAA", 2)]));
    let missing = s
        .names
        .by_failures
        .iter()
        .find(|n| n.name == "missing.test.")
        .expect("missing.test. among failing names");
    assert_eq!(missing.counts.rcodes.NXDOMAIN, 1);

    // The server side sees the same 10 queries, answered by dnsmasq, counted apart.
    let ss = &s.server_side;
    assert_eq!(ss.counts.queries, 10);
    assert_eq!(ss.counts.responses, 10);
    assert_eq!(ss.counts.rcodes, expected);
    assert!(!ss.listeners.is_empty());
    for l in &ss.listeners {
        assert_eq!(l.comm, "dnsmasq", "{l:?}");
    }
    assert!(ss.latency.p50_ms.unwrap() > 0.0);
}

#[test]
fn truncated_answer_is_retried_over_tcp() {
    if !require_bpf("truncated_answer_is_retried_over_tcp") {
        return;
    }
    let cg = TestCgroup::new("tc");
    let port = free_port();
    let big = "x".repeat(250);
    let txt = format!("--txt-record=big.test,{big},{big},{big}");
    let _dnsmasq = start_dnsmasq(&cg, port, &[&txt]);
    let watch = start_watch(&cg, &[port], &[]);
    let (pid, out) = cg.run(
        "dig",
        &[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "big.test",
            "TXT",
            "+noedns",
            "+tries=1",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Truncated, retrying in TCP mode"), "{text}");
    let s = watch.stop().snapshot;
    assert_clean_capture(&s);
    assert_eq!(s.totals.counts.queries, 2, "UDP then TCP");
    assert_eq!((s.totals.udp_queries, s.totals.tcp_queries), (1, 1));
    assert_eq!(s.totals.truncated, 1);
    assert_eq!(s.totals.truncated_retried_tcp, 1);
    assert_eq!(s.processes[0].pid, pid);
    // The TCP answer is ~800 bytes: reassembled from the stream and parsed.
    assert_eq!(s.totals.counts.rcodes.NOERROR, 2);
}

#[test]
fn unanswered_query_becomes_a_timeout() {
    if !require_bpf("unanswered_query_becomes_a_timeout") {
        return;
    }
    let cg = TestCgroup::new("timeout");
    let port = free_port(); // nothing listens here
    let watch = start_watch(&cg, &[port], &["--timeout", "1s"]);
    let (pid, _out) = cg.run(
        "dig",
        &[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "lost.test",
            "+tries=1",
            "+timeout=1",
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let s = watch.stop().snapshot;
    assert_eq!(s.totals.counts.queries, 1);
    assert_eq!(s.totals.counts.responses, 0);
    assert_eq!(s.totals.counts.timeouts, 1);
    assert_eq!(s.totals.counts.failure_ratio, 1.0);
    assert_eq!(s.capture.pending_at_end, 0);
    let p = &s.processes[0];
    assert_eq!((p.pid, p.counts.timeouts), (pid, 1));
    // Named from /proc, or by the kernel's thread name when that read lost the race (seen
    // once on a fresh clone's run; the naming itself is dig_over_udp_...'s subject).
    assert!(p.comm == "dig" || p.comm.starts_with("isc-net"), "{p:?}");
    let n = &s.names.by_failures[0];
    assert_eq!((n.name.as_str(), n.counts.timeouts), ("lost.test.", 1));
}

#[test]
fn glibc_getaddrinfo_is_seen_and_attributed() {
    if !require_bpf("glibc_getaddrinfo_is_seen_and_attributed") {
        return;
    }
    let cg = TestCgroup::new("glibc");
    let ns = Netns::new(
        "glibc",
        "nameserver 127.0.0.1\noptions attempts:1 timeout:2\n",
    );
    // dnsmasq on 127.0.0.1:53 inside the namespace: glibc only ever uses port 53.
    let _dnsmasq = start_dnsmasq_with(
        &cg,
        53,
        &Dnsmasq {
            listen: "127.0.0.1",
            netns: Some(&ns),
            ..Dnsmasq::default()
        },
    );
    let watch = start_watch(&cg, &[53], &[]);
    let (ok_pid, ok) = cg.run("ip", &ns.wrap("getent", &["ahosts", "host1.good.test"]));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("10.0.0.1"),
        "{ok:?}"
    );
    let (nx_pid, nx) = cg.run("ip", &ns.wrap("getent", &["ahosts", "nothere.test"]));
    assert_eq!(nx.status.code(), Some(2), "getent: key not found");
    let s = watch.stop().snapshot;
    assert_clean_capture(&s);

    // getaddrinfo(AF_UNSPEC) sends A and AAAA together (sendmmsg) on one socket.
    let ok_row = s
        .processes
        .iter()
        .find(|p| p.pid == ok_pid)
        .expect("getent row");
    assert_eq!(ok_row.comm, "getent");
    assert_eq!(ok_row.counts.queries, 2);
    assert_eq!(ok_row.counts.rcodes.NOERROR, 2);
    let nx_row = s
        .processes
        .iter()
        .find(|p| p.pid == nx_pid)
        .expect("getent row");
    assert_eq!(nx_row.counts.queries, 2);
    assert_eq!(nx_row.counts.rcodes.NXDOMAIN, 2);
    assert_eq!(s.totals.counts.queries, 4);
    let qt: BTreeMap<_, _> = s
        .qtypes
        .iter()
        .map(|q| (q.qtype.as_str(), q.counts.queries))
        .collect();
    assert_eq!(qt, BTreeMap::from([("A", 2), ("AAAA", 2)]));
    assert_eq!(s.server_side.counts.queries, 4);
    assert_eq!(s.server_side.listeners[0].comm, "dnsmasq");
}

/// Runs dnsperf once through a query file and returns (sent, completed, rcodes).
fn dnsperf(cg: &TestCgroup, server: &str, port: u16, file: &str) -> (u64, u64, Rcodes) {
    let port_s = port.to_string();
    let args = [
        "-s", server, "-p", &port_s, "-d", file, "-n", "1", "-Q", "1000", "-t", "10",
    ];
    let (_, out) = cg.run("dnsperf", &args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let num = |label: &str| -> u64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no '{label}' in dnsperf output:\n{text}"))
    };
    let mut rcodes = Rcodes::default();
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Response codes:"))
        .unwrap_or_else(|| panic!("no response codes:\n{text}"));
    for part in line.split(',') {
        let mut w = part.split_whitespace();
        let (name, n) = (w.next().unwrap(), w.next().unwrap().parse::<u64>().unwrap());
        for _ in 0..n {
            tally(&mut rcodes, name);
        }
    }
    (num("Queries sent:"), num("Queries completed:"), rcodes)
}

#[test]
fn dnsperf_over_udp_and_dig_keepopen_over_tcp_counts_match() {
    if !require_bpf("dnsperf_over_udp_and_dig_keepopen_over_tcp_counts_match") {
        return;
    }
    let cg = TestCgroup::new("dnsperf");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let dir = TempDir::new("dnsperf");
    let file = dir.path().join("queries.txt");
    let mut lines = String::new();
    for i in 0..300 {
        match i % 3 {
            0 => lines.push_str(&format!("h{i}.good.test A\n")),
            1 => lines.push_str(&format!("n{i}.test AAAA\n")),
            _ => lines.push_str(&format!("r{i}.example A\n")),
        }
    }
    std::fs::write(&file, lines).unwrap();
    let file = file.to_str().unwrap();
    // 60 queries from one dig over one TCP connection (+keepopen). Not dnsperf's TCP
    // mode: dnsmasq closes a TCP connection after 100 queries (TCP_MAX_QUERIES) and
    // dnsperf loses what it had in flight then, so exact counts would be a coin toss.
    let names: Vec<String> = (0..60)
        .map(|i| match i % 3 {
            0 => format!("t{i}.good.test"),
            1 => format!("t{i}.test"),
            _ => format!("t{i}.example"),
        })
        .collect();

    let watch = start_watch(&cg, &[port], &[]);
    let (sent, done, mut want) = dnsperf(&cg, "127.0.0.1", port, file);
    let port_s = port.to_string();
    let mut args = vec![
        "+tcp",
        "+keepopen",
        "+tries=1",
        "+timeout=5",
        "@::1",
        "-p",
        &port_s,
    ];
    args.extend(names.iter().map(String::as_str));
    let (dig_pid, out) = cg.run("dig", &args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let statuses: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap())
        .collect();
    let s = watch.stop().snapshot;
    assert_eq!((sent, done), (300, 300), "dnsperf over UDP");
    assert_eq!(statuses.len(), 60, "dig answered every TCP query:\n{text}");
    for st in &statuses {
        tally(&mut want, st);
    }
    assert_clean_capture(&s);

    let t = &s.totals;
    assert_eq!(t.counts.queries, 360);
    assert_eq!(t.counts.responses, 360);
    assert_eq!(t.counts.rcodes, want);
    assert_eq!((want.NOERROR, want.NXDOMAIN, want.REFUSED), (120, 120, 120));
    assert_eq!((t.udp_queries, t.tcp_queries), (300, 60));
    assert_eq!(t.retransmissions, 0);
    let perf = s
        .processes
        .iter()
        .find(|p| p.comm == "dnsperf")
        .expect("dnsperf row");
    assert_eq!(perf.counts.queries, 300);
    let dig = s
        .processes
        .iter()
        .find(|p| p.pid == dig_pid)
        .expect("dig row");
    assert_eq!(dig.counts.queries, 60);
    // Named from /proc, or by the kernel's thread name when that read lost the race to
    // dig's exit (seen once on 5.10 under a loaded qemu; the naming itself is
    // dig_over_udp_...'s subject).
    assert!(
        dig.comm == "dig" || dig.comm.starts_with("isc-net"),
        "{dig:?}"
    );
    let tcp = s
        .servers
        .iter()
        .find(|v| v.protocol == "tcp")
        .expect("TCP server row");
    assert_eq!(
        (tcp.server.clone(), tcp.counts.queries),
        (format!("[::1]:{port}"), 60)
    );
    assert_eq!(s.server_side.counts.queries, 360);
    assert_eq!(s.server_side.counts.responses, 360);
}
