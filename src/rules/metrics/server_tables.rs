//! The metrics of the node's own DNS servers, as data (like [`super::tables`]): a
//! local server's loop signs and hops compared ([`LOCAL_SERVER`]), and what a CoreDNS
//! /metrics page said ([`COREDNS`], node metrics). Only ever read by
//! [`registry`](mod@super::registry).

use super::registry::{LocalServerFn, NodeFn, Read, Read::*};
use super::tables::ratio;
use super::Unit;

/// A local server's own: loop signs and its hops compared. (name, unit, samples, help,
/// getter)
pub(super) const LOCAL_SERVER: &[(&str, Unit, &str, &str, Read<LocalServerFn>)] = &[
    (
        "loop.self_queries",
        Unit::Count,
        "upstream.queries",
        "Upstream queries it sent to an address it listens on itself.",
        Field,
    ),
    (
        "loop.returned",
        Unit::Count,
        "queries",
        "Queries it received from a local server's upstream socket while its own upstream query for the same question was in flight: its forwarded query came back.",
        Field,
    ),
    (
        "loop.queries",
        Unit::Count,
        "queries",
        "loop.self_queries + loop.returned: the signs of a forwarding loop.",
        Computed(|l| Some((l.loops.self_queries + l.loops.returned) as f64)),
    ),
    (
        "upstream.forwarded_ratio",
        Unit::Ratio,
        "queries",
        "upstream.queries / queries: how much of what it receives it sends upstream (a cache's miss share, roughly).",
        Computed(|l| ratio(l.upstream.counts.queries, l.counts.queries)),
    ),
];

/// CoreDNS's counters (`doctor --coredns-metrics`), node metrics: null without a page.
/// (name, unit, samples, help, getter)
#[allow(clippy::type_complexity)]
pub(super) const COREDNS: &[(&str, Unit, &str, &str, Read<NodeFn>)] = &[
    (
        "coredns.span_s",
        Unit::Seconds,
        "coredns.cache_requests",
        "Seconds between the two CoreDNS scrapes the coredns.* counters are the increase over; 0 when they are totals since CoreDNS started (one scrape, doctor --snapshot).",
        Field,
    ),
    (
        "coredns.forward_healthcheck_broken",
        Unit::Count,
        "coredns.forward_healthcheck_broken",
        "coredns_forward_healthcheck_broken_total: times every upstream of forward was unhealthy; null without --coredns-metrics.",
        Field,
    ),
    (
        "coredns.forward_max_concurrent_rejects",
        Unit::Count,
        "coredns.forward_max_concurrent_rejects",
        "coredns_forward_max_concurrent_rejects_total: queries forward refused at max_concurrent.",
        Field,
    ),
    (
        "coredns.cache_served_stale",
        Unit::Count,
        "coredns.cache_requests",
        "coredns_cache_served_stale_total: answers served from expired cache entries (serve_stale) because the upstream did not answer.",
        Field,
    ),
    (
        "coredns.panics",
        Unit::Count,
        "coredns.panics",
        "coredns_panics_total: panics CoreDNS recovered from.",
        Field,
    ),
    (
        "coredns.cache_hits",
        Unit::Count,
        "coredns.cache_requests",
        "coredns_cache_hits_total, all cache types, servers and zones.",
        Field,
    ),
    (
        "coredns.cache_requests",
        Unit::Count,
        "coredns.cache_requests",
        "coredns_cache_requests_total, all servers and zones.",
        Field,
    ),
    (
        "coredns.cache_hit_ratio",
        Unit::Ratio,
        "coredns.cache_requests",
        "coredns.cache_hits / coredns.cache_requests; null without cache requests.",
        Field,
    ),
    (
        "coredns.nodecache_setup_errors",
        Unit::Count,
        "coredns.nodecache_setup_errors",
        "coredns_nodecache_setup_errors_total (NodeLocal DNSCache: iptables rules, interface, configmap), all errortypes; null when the page is not NodeLocal DNSCache's.",
        Field,
    ),
];
