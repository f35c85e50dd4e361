//! Unit tests of the aggregator: pure logic over hand-built transactions.

use super::*;
use crate::analysis::matcher::Transaction;
use crate::analysis::owners::Owner;

fn tx(tgid: u32, proto: Protocol, name: &str, outcome: Outcome) -> Attributed {
    Attributed {
        tx: Transaction {
            role: Role::Client,
            cookie: 1,
            protocol: proto,
            server: "127.0.0.1:53".parse().unwrap(),
            client: "127.0.0.1:40000".parse().unwrap(),
            question: Some(Question {
                name: name.into(),
                qtype: 1,
                qclass: 1,
            }),
            query_ts_ns: 0,
            outcome,
            response_bytes: 0,
        },
        owner: (tgid != 0).then(|| Owner {
            tgid,
            thread_comm: "worker-1".into(),
        }),
    }
}

/// A NOERROR answer with the TC bit.
fn truncated() -> Outcome {
    Outcome::Answered {
        rcode: 0,
        truncated: true,
        latency_ns: 1,
    }
}

fn answered(rcode: u16, ms: u64) -> Outcome {
    Outcome::Answered {
        rcode,
        truncated: false,
        latency_ns: ms * 1_000_000,
    }
}

#[test]
fn counts_ratios_and_percentiles() {
    let mut agg = Aggregator::new();
    for i in 0..96 {
        agg.add(&tx(10, Protocol::Udp, "ok.test.", answered(0, 1 + i % 4)));
    }
    agg.add(&tx(10, Protocol::Udp, "nx.test.", answered(3, 2)));
    agg.add(&tx(10, Protocol::Udp, "fail.test.", answered(2, 2)));
    agg.add(&tx(20, Protocol::Udp, "lost.test.", Outcome::TimedOut));
    agg.add(&tx(20, Protocol::Udp, "later.test.", Outcome::Pending));
    let t = agg.totals(10.0, 0);
    assert_eq!(t.counts.queries, 100);
    assert_eq!(t.counts.responses, 98);
    assert_eq!(t.counts.timeouts, 1);
    assert_eq!(t.counts.rcodes.NXDOMAIN, 1);
    assert_eq!(
        t.counts.failures, 2,
        "SERVFAIL + timeout; NXDOMAIN is an answer"
    );
    assert_eq!(t.counts.failure_ratio, round6(2.0 / 99.0));
    assert_eq!(t.counts.nxdomain_ratio, round6(1.0 / 98.0));
    assert_eq!(t.counts.queries_per_s, 10.0);
    let l = agg.latency();
    assert_eq!(l.samples, 98);
    assert!((l.p50_ms.unwrap() - 2.0).abs() < 0.02, "{l:?}");
    assert!((l.max_ms.unwrap() - 4.0).abs() < 1e-9);

    let procs: HashMap<u32, ProcessInfo> = HashMap::from_iter([(
        10,
        ProcessInfo {
            comm: "app".into(),
            cgroup: Some("/svc".into()),
            resolv: None,
            exe: None,
        },
    )]);
    let rows = agg.processes(10.0, &procs);
    assert_eq!(rows[0].pid, 10);
    assert_eq!(rows[0].comm, "app", "/proc name wins over the thread name");
    assert_eq!(
        rows[1].comm, "worker-1",
        "thread name when /proc had nothing"
    );
    assert_eq!(rows[1].counts.timeouts, 1);

    let names = agg.names(10.0);
    assert_eq!(names.by_volume[0].name, "ok.test.");
    assert_eq!(names.by_failures.len(), 3);
    assert!(names.by_failures.iter().all(|n| n.name != "ok.test."));
}

#[test]
fn truncated_udp_then_tcp_is_a_retry_only_for_the_same_process() {
    let mut agg = Aggregator::new();
    let tc = truncated();
    agg.add(&tx(1, Protocol::Udp, "big.test.", tc));
    agg.add(&tx(2, Protocol::Udp, "big.test.", tc));
    agg.add(&tx(1, Protocol::Tcp, "big.test.", answered(0, 1)));
    agg.add(&tx(1, Protocol::Tcp, "big.test.", answered(0, 1)));
    let t = agg.totals(1.0, 0);
    assert_eq!(t.truncated, 2);
    assert_eq!(t.truncated_retried_tcp, 1);
    assert_eq!((t.udp_queries, t.tcp_queries), (2, 2));
}

#[test]
fn a_tcp_retry_in_the_next_window_still_counts() {
    let mut first = Aggregator::new();
    let tc = truncated();
    first.add(&tx(1, Protocol::Udp, "big.test.", tc));
    let mut next = first.next_window();
    next.add(&tx(1, Protocol::Tcp, "big.test.", answered(0, 1)));
    let t = next.totals(1.0, 0);
    assert_eq!((t.truncated, t.truncated_retried_tcp), (0, 1));
    assert_eq!(t.tcp_queries, 1, "nothing else carried over");
    assert_eq!(first.totals(1.0, 0).truncated, 1);
}

#[test]
fn a_client_active_for_part_of_the_window_has_its_own_rate() {
    let mut agg = Aggregator::new();
    for (i, ts) in [0u64, 1_000_000_000, 2_000_000_000].into_iter().enumerate() {
        let mut t = tx(7, Protocol::Udp, &format!("n{i}.test."), answered(0, 1));
        t.tx.query_ts_ns = 50_000_000_000 + ts;
        agg.add(&t);
    }
    // A lone query: at least 1 s, not a rate of thousands per second.
    agg.add(&tx(8, Protocol::Udp, "one.test.", answered(0, 1)));
    let procs = std::collections::HashMap::new();
    let rows = agg.processes(60.0, &procs);
    let busy = rows.iter().find(|r| r.pid == 7).unwrap();
    assert_eq!(busy.counts.active_s, 2.0);
    assert_eq!(busy.counts.queries_per_active_s, 1.5);
    assert_eq!(busy.counts.queries_per_s, 0.05, "over the 60 s window");
    let lone = rows.iter().find(|r| r.pid == 8).unwrap();
    assert_eq!(
        (lone.counts.active_s, lone.counts.queries_per_active_s),
        (1.0, 1.0)
    );
}

#[test]
fn a_group_of_processes_is_active_from_its_first_query_to_its_last() {
    let mut agg = Aggregator::new();
    // Two processes of one pod, 10 s apart: the pod's rate is over those 10 s.
    for (tgid, s) in [(7, 0u64), (7, 4), (9, 10)] {
        let mut t = tx(tgid, Protocol::Udp, "a.test.", answered(0, 1));
        t.tx.query_ts_ns = s * 1_000_000_000;
        agg.add(&t);
    }
    let groups = agg.process_groups(60.0, |pid| (pid != 0).then_some("pod"));
    let [(_, counts, _, members)] = &groups[..] else {
        panic!("one group: {}", groups.len())
    };
    assert_eq!((counts.queries, *members), (3, 2));
    assert_eq!(counts.active_s, 10.0);
    assert_eq!(counts.queries_per_active_s, 0.3);
}

#[test]
fn a_listener_known_late_is_one_row_with_its_owner() {
    // dnsmasq's socket answered twice before its owner was learned, then once after.
    let server = |tgid: u32| {
        let mut t = tx(tgid, Protocol::Udp, "a.test.", answered(0, 1));
        t.tx.role = Role::Server;
        t
    };
    let mut agg = Aggregator::new();
    agg.add(&server(0));
    agg.add(&server(0));
    agg.add(&server(42));
    let procs = std::collections::HashMap::new();
    let ss = agg.server_side(1.0, &procs, 0);
    assert_eq!(ss.listeners.len(), 1, "{:?}", ss.listeners);
    assert_eq!(
        (ss.listeners[0].pid, ss.listeners[0].counts.queries),
        (42, 3)
    );
    // Two owners on one address (SO_REUSEPORT): the unknown row cannot be placed.
    agg.add(&server(43));
    assert_eq!(agg.server_side(1.0, &procs, 0).listeners.len(), 3);
}

#[test]
fn concurrent_truncations_of_one_process_each_count_their_retry() {
    // Two workers of one process truncated on the same question, both retry.
    let mut agg = Aggregator::new();
    let tc = truncated();
    agg.add(&tx(1, Protocol::Udp, "big.test.", tc));
    agg.add(&tx(1, Protocol::Udp, "big.test.", tc));
    agg.add(&tx(1, Protocol::Tcp, "big.test.", answered(0, 1)));
    agg.add(&tx(1, Protocol::Tcp, "big.test.", answered(0, 1)));
    agg.add(&tx(1, Protocol::Tcp, "big.test.", answered(0, 1)));
    let t = agg.totals(1.0, 0);
    assert_eq!((t.truncated, t.truncated_retried_tcp), (2, 2));
}

#[test]
fn unknown_owner_is_labelled() {
    let mut agg = Aggregator::new();
    agg.add(&tx(0, Protocol::Udp, "a.test.", answered(0, 1)));
    assert_eq!(agg.processes(1.0, &HashMap::default())[0].comm, "(unknown)");
}

#[test]
fn name_table_is_bounded() {
    let mut agg = Aggregator::new();
    for i in 0..MAX_NAMES + 5 {
        agg.add(&tx(
            1,
            Protocol::Udp,
            &format!("n{i}.test."),
            answered(0, 1),
        ));
    }
    let n = agg.names(1.0);
    assert_eq!(n.distinct, MAX_NAMES as u64);
    assert_eq!(n.untracked_queries, 5);
    assert_eq!(agg.totals(1.0, 0).counts.queries, MAX_NAMES as u64 + 5);
}
