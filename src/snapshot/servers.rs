//! The node's own DNS servers: each local server process with its two hops (what its
//! clients see, what its upstreams cost it), and what a CoreDNS or NodeLocal DNSCache
//! /metrics page said during the window. Both are additions within schema 2.

use serde::{Deserialize, Serialize};

use super::{Counts, Latency};

/// One local DNS server process (dnsmasq, unbound, CoreDNS, NodeLocal DNSCache,
/// systemd-resolved, or any other process that answered queries on this node).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalServer {
    pub pid: u32,
    pub comm: String,
    /// What it is, from its name or executable: `coredns`, `node-cache` (NodeLocal
    /// DNSCache), `systemd-resolved`, `dnsmasq`, `unbound`, or `other`.
    pub kind: String,
    /// Where it answered: `ADDR:PORT/PROTO`.
    pub listens: Vec<String>,
    /// The client-facing hop: queries it received, timed from arrival to its answer.
    #[serde(flatten)]
    pub counts: Counts,
    pub latency: Latency,
    /// The upstream hop: queries it sent itself (forwarded or recursive), timed from
    /// its send to the upstream's answer.
    pub upstream: UpstreamHop,
    /// Signs that it forwards to itself.
    #[serde(rename = "loop")]
    pub loops: LoopStats,
}

/// A local server's own queries to its upstreams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UpstreamHop {
    #[serde(flatten)]
    pub counts: Counts,
    pub latency: Latency,
    /// The upstream addresses it queried (`ADDR:PORT`), busiest first, at most 8.
    pub servers: Vec<String>,
}

/// How a local server's queries came back to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LoopStats {
    /// Upstream queries it sent to an address it listens on itself.
    pub self_queries: u64,
    /// Queries it received from a local server's upstream socket while its own upstream
    /// query for the same question was still in flight: its forwarded query came back.
    pub returned: u64,
}

/// What a CoreDNS (or NodeLocal DNSCache) /metrics page said (`doctor --coredns-metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CorednsMetrics {
    /// The page read.
    pub url: String,
    /// `delta`: the increase between a scrape at the window's start and one at its end
    /// (a counter that went down, CoreDNS restarted, counts from zero); `total`: one
    /// scrape, counters since CoreDNS started.
    pub mode: String,
    /// Seconds between the two scrapes (0 for one scrape).
    pub span_s: f64,
    /// Whether the page had NodeLocal DNSCache's own metrics (`coredns_nodecache_*`).
    pub nodecache: bool,
    /// `coredns_forward_healthcheck_broken_total`: every upstream was unhealthy and
    /// queries were sprayed at random ones.
    pub forward_healthcheck_broken: f64,
    /// `coredns_forward_max_concurrent_rejects_total`: queries refused at max_concurrent.
    pub forward_max_concurrent_rejects: f64,
    /// `coredns_cache_served_stale_total`: answers served from expired entries.
    pub cache_served_stale: f64,
    /// `coredns_panics_total`.
    pub panics: f64,
    /// `coredns_cache_hits_total` (all types, servers and zones).
    pub cache_hits: f64,
    /// `coredns_cache_requests_total`.
    pub cache_requests: f64,
    /// cache_hits / cache_requests; null without requests.
    pub cache_hit_ratio: Option<f64>,
    /// `coredns_nodecache_setup_errors_total` (all `errortype`s); null when the page is
    /// not NodeLocal DNSCache's.
    pub nodecache_setup_errors: Option<f64>,
    /// `coredns_dns_responses_total` per zone, busiest first.
    pub zones: Vec<CorednsZone>,
}

/// One zone's answers from `coredns_dns_responses_total{zone, rcode}` (servers summed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorednsZone {
    pub zone: String,
    /// Responses by RCODE; `queries` = `responses` (CoreDNS counts answers), no timeouts.
    #[serde(flatten)]
    pub counts: Counts,
}
