//! Hops and loops over hand-built transactions: a healthy chain, a client re-sending,
//! a server forwarding to itself, and a loop through a second server.

use super::*;
use crate::analysis::owners::Owner;
use crate::analysis::Attributed;
use std::collections::HashMap as StdHashMap;

const MS: u64 = 1_000_000;

/// One transaction of `tgid` seen at its socket `local`, with `peer` at the other end.
fn tx(
    role: Role,
    tgid: u32,
    local: &str,
    peer: &str,
    name: &str,
    at_ms: u64,
    outcome: Outcome,
) -> Attributed {
    let (local, peer) = (local.parse().unwrap(), peer.parse().unwrap());
    let (server, client) = match role {
        Role::Client => (peer, local),
        Role::Server => (local, peer),
    };
    Attributed {
        tx: Transaction {
            role,
            cookie: 1,
            protocol: Protocol::Udp,
            server,
            client,
            question: Some(Question {
                name: name.into(),
                qtype: 1,
                qclass: 1,
            }),
            query_ts_ns: at_ms * MS,
            outcome,
            response_bytes: 0,
        },
        owner: Some(Owner {
            tgid,
            thread_comm: "srv".into(),
        }),
    }
}

fn answered(ms: u64) -> Outcome {
    Outcome::Answered {
        rcode: 0,
        truncated: false,
        latency_ns: ms * MS,
    }
}

fn servers(agg: &Aggregator) -> Vec<LocalServer> {
    agg.local_servers(10.0, &StdHashMap::<u32, ProcessInfo>::new())
}

#[test]
fn servers_are_recognised_by_name_or_executable() {
    assert_eq!(server_kind("coredns", None), "coredns");
    assert_eq!(server_kind("node-cache", None), "node-cache");
    assert_eq!(server_kind("systemd-resolve", None), "systemd-resolved");
    assert_eq!(server_kind("dnsmasq", None), "dnsmasq");
    assert_eq!(server_kind("worker", Some("unbound")), "unbound");
    assert_eq!(server_kind("python3", Some("python3.11")), "other");
}

#[test]
fn a_healthy_chain_has_two_hops_and_no_loop_even_when_clients_resend() {
    let mut agg = Aggregator::new();
    // A client asks the cache (pid 100) twice (a re-send while the cache waits); the
    // cache asks unbound (pid 200), which answers from its own data.
    let adds = [
        tx(
            Role::Server,
            100,
            "127.0.0.1:53",
            "127.0.0.1:40000",
            "a.test.",
            0,
            answered(30),
        ),
        tx(
            Role::Server,
            100,
            "127.0.0.1:53",
            "127.0.0.1:40000",
            "a.test.",
            10,
            answered(20),
        ),
        tx(
            Role::Client,
            100,
            "127.0.0.1:41000",
            "127.0.0.2:53",
            "a.test.",
            1,
            answered(25),
        ),
        tx(
            Role::Server,
            200,
            "127.0.0.2:53",
            "127.0.0.1:41000",
            "a.test.",
            2,
            answered(20),
        ),
    ];
    for a in &adds {
        agg.add(a);
    }
    let rows = servers(&agg);
    let cache = rows.iter().find(|s| s.pid == 100).unwrap();
    let unbound = rows.iter().find(|s| s.pid == 200).unwrap();
    assert_eq!(cache.counts.queries, 2);
    assert_eq!(cache.upstream.counts.queries, 1);
    assert_eq!(cache.upstream.servers, ["127.0.0.2:53"]);
    assert_eq!(cache.listens, ["127.0.0.1:53/udp"]);
    assert_eq!(cache.loops, LoopStats::default());
    assert_eq!(
        unbound.loops,
        LoopStats::default(),
        "it received before it could send"
    );
    assert_eq!(unbound.upstream.counts.queries, 0);
}

#[test]
fn forwarding_to_its_own_address_is_a_self_query_that_comes_back() {
    let mut agg = Aggregator::new();
    for a in [
        tx(
            Role::Server,
            100,
            "127.0.0.1:53",
            "127.0.0.1:40000",
            "a.test.",
            0,
            Outcome::TimedOut,
        ),
        tx(
            Role::Client,
            100,
            "127.0.0.1:41000",
            "127.0.0.1:53",
            "a.test.",
            1,
            Outcome::TimedOut,
        ),
        tx(
            Role::Server,
            100,
            "127.0.0.1:53",
            "127.0.0.1:41000",
            "a.test.",
            2,
            Outcome::TimedOut,
        ),
    ] {
        agg.add(&a);
    }
    let rows = servers(&agg);
    assert_eq!(
        rows[0].loops,
        LoopStats {
            self_queries: 1,
            returned: 1
        }
    );
}

#[test]
fn a_loop_through_a_second_server_comes_back_to_the_first() {
    let mut agg = Aggregator::new();
    // A (100) forwards to B (200), B forwards back to A while A still waits.
    for a in [
        tx(
            Role::Server,
            100,
            "127.0.0.1:53",
            "127.0.0.1:40000",
            "a.test.",
            0,
            Outcome::TimedOut,
        ),
        tx(
            Role::Client,
            100,
            "127.0.0.1:41000",
            "127.0.0.2:53",
            "a.test.",
            1,
            Outcome::TimedOut,
        ),
        tx(
            Role::Server,
            200,
            "127.0.0.2:53",
            "127.0.0.1:41000",
            "a.test.",
            2,
            Outcome::TimedOut,
        ),
        tx(
            Role::Client,
            200,
            "127.0.0.2:42000",
            "127.0.0.1:53",
            "a.test.",
            3,
            Outcome::TimedOut,
        ),
        tx(
            Role::Server,
            100,
            "127.0.0.1:53",
            "127.0.0.2:42000",
            "a.test.",
            4,
            Outcome::TimedOut,
        ),
    ] {
        agg.add(&a);
    }
    let rows = servers(&agg);
    let a = rows.iter().find(|s| s.pid == 100).unwrap();
    assert_eq!(
        a.loops,
        LoopStats {
            self_queries: 0,
            returned: 1
        }
    );
    // An answer that came back before the question returned ends the wait: no loop.
    let mut agg = Aggregator::new();
    for a in [
        tx(
            Role::Client,
            100,
            "127.0.0.1:41000",
            "127.0.0.2:53",
            "a.test.",
            1,
            answered(1),
        ),
        tx(
            Role::Server,
            200,
            "127.0.0.2:53",
            "127.0.0.1:41000",
            "a.test.",
            1,
            answered(1),
        ),
        tx(
            Role::Client,
            200,
            "127.0.0.2:42000",
            "127.0.0.1:53",
            "a.test.",
            5,
            answered(1),
        ),
        tx(
            Role::Server,
            100,
            "127.0.0.1:53",
            "127.0.0.2:42000",
            "a.test.",
            5,
            answered(1),
        ),
    ] {
        agg.add(&a);
    }
    assert_eq!(
        servers(&agg).iter().map(|s| s.loops.returned).sum::<u64>(),
        0
    );
}

#[test]
fn a_busy_client_neither_hides_a_loop_nor_grows_the_tables() {
    let mut agg = Aggregator::new();
    // A client that never answers queries floods the window first...
    for i in 0..(MAX_RECORDS as u64 * 3) {
        let name = format!("n{i}.test.");
        agg.add(&tx(
            Role::Client,
            300,
            "127.0.0.1:42000",
            "127.0.0.1:53",
            &name,
            i,
            answered(1),
        ));
    }
    // ...then a forwarder (100) sends its first upstream query before it is seen
    // answering, to its own address, and it comes back.
    for a in [
        tx(
            Role::Client,
            100,
            "127.0.0.1:41000",
            "127.0.0.1:53",
            "a.test.",
            90_000,
            Outcome::TimedOut,
        ),
        tx(
            Role::Server,
            100,
            "127.0.0.1:53",
            "127.0.0.1:41000",
            "a.test.",
            90_001,
            Outcome::TimedOut,
        ),
        tx(
            Role::Server,
            100,
            "127.0.0.1:53",
            "127.0.0.1:40000",
            "a.test.",
            90_000,
            Outcome::TimedOut,
        ),
    ] {
        agg.add(&a);
    }
    let rows = servers(&agg);
    let fwd = rows.iter().find(|s| s.pid == 100).unwrap();
    assert_eq!(fwd.loops.returned, 1, "{:?}", fwd.loops);
    assert!(agg.hops.sent.capacity() <= MAX_RECORDS);
    assert!(agg.hops.unsorted.len() <= MAX_UNSORTED);
}
