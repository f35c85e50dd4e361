use super::*;

const MS: u64 = 1_000_000;

fn k8s() -> ResolvConf {
    ResolvConf::parse(
        "search default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
    )
}

fn answered(rcode: u16) -> Outcome {
    Outcome::Answered {
        rcode,
        truncated: false,
        latency_ns: MS,
    }
}

/// Feeds (tgid, ms, name, qtype, outcome) in order.
fn run(tries: &[(u32, u64, &str, u16, Outcome)], resolv: Option<&ResolvConf>) -> Vec<Lookup> {
    let mut t = LookupTracker::new(5_000 * MS);
    for &(tgid, ms, name, qtype, outcome) in tries {
        let name: Rc<str> = name.into();
        t.add(
            Try {
                tgid,
                query_ts_ns: ms * MS,
                name: &name,
                qtype,
                // glibc opens a socket per name tried; siblings share it.
                cookie: u64::from(tgid) << 32 | ms,
                outcome,
            },
            resolv,
        );
    }
    t.finish_all()
}

/// glibc's getaddrinfo for `api.example.com` under ndots:5: A and AAAA for each suffix
/// (NXDOMAIN), then the name itself, answered.
fn ndots_chain(tgid: u32, start_ms: u64) -> Vec<(u32, u64, &'static str, u16, Outcome)> {
    let mut v = Vec::new();
    for (i, n) in [
        "api.example.com.default.svc.cluster.local.",
        "api.example.com.svc.cluster.local.",
        "api.example.com.cluster.local.",
    ]
    .into_iter()
    .enumerate()
    {
        let ms = start_ms + 2 * i as u64;
        v.push((tgid, ms, n, 1, answered(3)));
        v.push((tgid, ms, n, 28, answered(3)));
    }
    v.push((tgid, start_ms + 6, "api.example.com.", 1, answered(0)));
    v.push((tgid, start_ms + 6, "api.example.com.", 28, answered(0)));
    v
}

#[test]
fn a_search_chain_is_one_lookup_with_or_without_the_search_list() {
    for resolv in [Some(k8s()), None] {
        let l = run(&ndots_chain(7, 100), resolv.as_ref());
        assert_eq!(l.len(), 1, "{resolv:?}: {l:#?}");
        let l = &l[0];
        assert_eq!(&*l.base, "api.example.com.");
        assert_eq!(l.queries, 8);
        assert_eq!(
            l.suffixes,
            [
                "default.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(l.expansion_nxdomain, 6);
        assert_eq!(l.time_lost_ns, 6 * MS);
        assert!(l.answered);
    }
}

#[test]
fn the_first_suffix_answering_is_one_lookup_without_loss() {
    let tries = [
        (1, 0, "web.default.svc.cluster.local.", 1, answered(0)),
        (1, 0, "web.default.svc.cluster.local.", 28, answered(0)),
    ];
    let l = run(&tries, Some(&k8s()));
    assert_eq!(l.len(), 1);
    assert_eq!((l[0].queries, l[0].time_lost_ns), (2, 0));
    assert_eq!(&*l[0].base, "web.");
    assert_eq!(l[0].suffixes, ["default.svc.cluster.local"]);
}

#[test]
fn repeated_lookups_processes_and_gaps_split() {
    for resolv in [Some(k8s()), None] {
        // The same lookup twice in a row (a loop), by one process.
        let mut tries = ndots_chain(1, 0);
        tries.extend(ndots_chain(1, 10));
        assert_eq!(run(&tries, resolv.as_ref()).len(), 2, "{resolv:?}");
        // Two processes at once.
        let mut tries = ndots_chain(1, 0);
        tries.extend(ndots_chain(2, 0));
        let l = run(&tries, resolv.as_ref());
        assert_eq!(l.len(), 2);
        assert!(l.iter().all(|l| l.queries == 8));
        // A pause longer than the gap between two tries.
        let tries = [
            (1, 0, "db.default.svc.cluster.local.", 1, answered(3)),
            (1, 2_000, "db.svc.cluster.local.", 1, answered(0)),
        ];
        assert_eq!(run(&tries, resolv.as_ref()).len(), 2);
    }
}

#[test]
fn unrelated_names_are_not_chained() {
    let tries = [
        (1, 0, "www.a.test.", 1, answered(0)),
        (1, 1, "www.b.test.", 1, answered(3)),
        (1, 2, "other.test.", 1, answered(3)),
        (1, 3, "www.c.test.", 1, answered(0)),
    ];
    let l = run(&tries, None);
    assert_eq!(l.len(), 3, "{l:#?}");
    // www.b.test failed, then www.c.test shares its first label: without a search list
    // that reads as a chain (base www.): the search list is what makes it exact.
    let l = run(&tries, Some(&k8s()));
    assert_eq!(l.len(), 4, "{l:#?}");
}

#[test]
fn a_lookup_that_never_succeeds() {
    let tries = [
        (1, 0, "nope.default.svc.cluster.local.", 1, answered(3)),
        (1, 1, "nope.svc.cluster.local.", 1, answered(3)),
        (1, 2, "nope.cluster.local.", 1, Outcome::TimedOut),
        (1, 5_003, "nope.", 1, answered(3)),
    ];
    let l = run(&tries, Some(&k8s()));
    assert_eq!(
        l.len(),
        1,
        "a timed-out try may be followed a timeout later: {l:#?}"
    );
    let l = &l[0];
    assert!(!l.answered);
    assert_eq!((l.queries, l.expansion_nxdomain, l.timeouts), (4, 2, 1));
    assert_eq!(l.time_lost_ns, 5_003 * MS);
}

#[test]
fn the_conntrack_race_fingerprint() {
    let late = Outcome::Answered {
        rcode: 0,
        truncated: false,
        latency_ns: 1_020 * MS,
    };
    // A answered at once, AAAA (sent with it) only after glibc's 1 s timeout and a
    // resend; glibc also resends A on the same socket: one lookup, one race.
    let mut t = LookupTracker::new(5_000 * MS);
    let name: Rc<str> = "race.test.".into();
    for (ms, qtype, outcome) in [(0, 1, answered(0)), (1_000, 1, answered(0)), (0, 28, late)] {
        t.add(
            Try {
                tgid: 1,
                query_ts_ns: ms * MS,
                name: &name,
                qtype,
                cookie: 42,
                outcome,
            },
            None,
        );
    }
    let l = t.finish_all();
    assert_eq!(l.len(), 1, "{l:#?}");
    assert!(l[0].race);
    assert_eq!((l[0].queries, l[0].resends), (3, 1));

    // Both answered at once, or one just slower: no race.
    for second in [
        answered(0),
        Outcome::Answered {
            rcode: 0,
            truncated: false,
            latency_ns: 80 * MS,
        },
    ] {
        let l = run(
            &[
                (1, 0, "ok.test.", 1, answered(0)),
                (1, 0, "ok.test.", 28, second),
            ],
            None,
        );
        assert!(!l[0].race, "{l:#?}");
    }
    // Sent 30 ms apart while the first was in flight for 40 ms (an emulated CPU):
    // together. Sent after the first was answered (`single-request`): not a race. The
    // answered sibling slow too (200 ms behind a relay): still a race.
    for (first_ms, gap_ms, raced) in [(40, 30, true), (1, 5, false), (200, 0, true)] {
        let mut t = LookupTracker::new(5_000 * MS);
        let name: Rc<str> = "slow.test.".into();
        let first = Outcome::Answered {
            rcode: 0,
            truncated: false,
            latency_ns: first_ms * MS,
        };
        for (ms, qtype, outcome) in [(0, 1, first), (gap_ms, 28, late)] {
            t.add(
                Try {
                    tgid: 1,
                    query_ts_ns: ms * MS,
                    name: &name,
                    qtype,
                    cookie: 42,
                    outcome,
                },
                None,
            );
        }
        let l = t.finish_all();
        assert_eq!(l[0].race, raced, "gap {gap_ms} ms: {l:#?}");
    }
    // The sibling never answered at all: a race too.
    let l = run(
        &[
            (1, 0, "lost.test.", 1, answered(0)),
            (1, 0, "lost.test.", 28, Outcome::TimedOut),
        ],
        None,
    );
    assert!(l[0].race);
}

#[test]
fn idle_lookups_finish_by_the_clock_and_open_ones_wait() {
    let mut t = LookupTracker::new(5_000 * MS);
    for (tgid, ms, name, qtype, outcome) in ndots_chain(7, 100) {
        let name: Rc<str> = name.into();
        t.add(
            Try {
                tgid,
                query_ts_ns: ms * MS,
                name: &name,
                qtype,
                cookie: u64::from(tgid) << 32 | ms,
                outcome,
            },
            Some(&k8s()),
        );
    }
    // A query sent just now (still in flight) could still join it: not finished.
    t.finish_idle(106 * MS + 5_000 * MS);
    assert!(t.take_done().is_empty(), "finished while it could grow");
    // Long after anything in flight could join it: finished, whole, without a query.
    t.finish_idle(106 * MS + 60_000 * MS);
    let done = t.take_done();
    assert_eq!(done.len(), 1, "{done:#?}");
    assert_eq!(done[0].queries, 8);
    assert!(t.finish_all().is_empty(), "counted once");
}
