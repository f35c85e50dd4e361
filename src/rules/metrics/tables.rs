//! The plain metrics as data: the counts every group carries ([`COUNTS`]), latency
//! summaries ([`LATENCY`]) and node-only facts ([`NODE`]), each with its unit, sample
//! count and help text. Most read the snapshot field their name names (`Field`: a new
//! snapshot field is one row here, whose help is its documentation); the rest say where
//! (`At`) or how (`Computed`). A unit test checks that every numeric snapshot field has
//! a row. Only ever read by [`registry`](mod@super::registry).

use super::registry::{CountsFn, LatencyFn, LookupsFn, NodeFn, Read, Read::*};
use super::Unit;
use crate::snapshot::Counts;

/// `num / den`, or None without a denominator.
pub(super) fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Queries answered or timed out.
pub(super) fn completed(c: &Counts) -> u64 {
    c.responses + c.timeouts
}

/// The counts every group carries. (name, unit, samples, help, getter)
pub(super) const COUNTS: &[(&str, Unit, &str, &str, Read<CountsFn>)] = &[
    (
        "queries",
        Unit::Count,
        "queries",
        "Queries sent (client view) or received (server view).",
        Field,
    ),
    (
        "queries_per_s",
        Unit::PerSecond,
        "queries",
        "Queries per second over the window.",
        Field,
    ),
    (
        "active_s",
        Unit::Seconds,
        "queries",
        "Seconds from the first query to the last (at least 1 s, at most the window).",
        Field,
    ),
    (
        "queries_per_active_s",
        Unit::PerSecond,
        "queries",
        "Queries per second while active (queries / active_s).",
        Field,
    ),
    (
        "responses",
        Unit::Count,
        "queries",
        "Queries answered.",
        Field,
    ),
    (
        "timeouts",
        Unit::Count,
        "queries",
        "Queries unanswered after the capture timeout.",
        Field,
    ),
    (
        "completed",
        Unit::Count,
        "queries",
        "Queries answered or timed out (the denominator of the failure ratios).",
        Computed(|c| Some(completed(c) as f64)),
    ),
    (
        "failures",
        Unit::Count,
        "queries",
        "Timeouts plus SERVFAIL, REFUSED, FORMERR, NOTIMP and other error RCODEs (not NXDOMAIN).",
        Field,
    ),
    (
        "failure_ratio",
        Unit::Ratio,
        "completed",
        "failures / completed.",
        Computed(|c| ratio(c.failures, completed(c))),
    ),
    (
        "timeout_ratio",
        Unit::Ratio,
        "completed",
        "timeouts / completed.",
        Computed(|c| ratio(c.timeouts, completed(c))),
    ),
    (
        "servfail_ratio",
        Unit::Ratio,
        "completed",
        "SERVFAIL answers / completed.",
        Computed(|c| ratio(c.rcodes.SERVFAIL, completed(c))),
    ),
    (
        "refused_ratio",
        Unit::Ratio,
        "completed",
        "REFUSED answers / completed.",
        Computed(|c| ratio(c.rcodes.REFUSED, completed(c))),
    ),
    (
        "nxdomain_ratio",
        Unit::Ratio,
        "responses",
        "NXDOMAIN answers / responses.",
        Computed(|c| ratio(c.rcodes.NXDOMAIN, c.responses)),
    ),
    (
        "rcodes.NOERROR",
        Unit::Count,
        "queries",
        "Answers with RCODE NOERROR.",
        Field,
    ),
    (
        "rcodes.NXDOMAIN",
        Unit::Count,
        "queries",
        "Answers with RCODE NXDOMAIN.",
        Field,
    ),
    (
        "rcodes.SERVFAIL",
        Unit::Count,
        "queries",
        "Answers with RCODE SERVFAIL.",
        Field,
    ),
    (
        "rcodes.REFUSED",
        Unit::Count,
        "queries",
        "Answers with RCODE REFUSED.",
        Field,
    ),
    (
        "rcodes.FORMERR",
        Unit::Count,
        "queries",
        "Answers with RCODE FORMERR.",
        Field,
    ),
    (
        "rcodes.NOTIMP",
        Unit::Count,
        "queries",
        "Answers with RCODE NOTIMP.",
        Field,
    ),
    (
        "rcodes.other",
        Unit::Count,
        "queries",
        "Answers with any other RCODE.",
        Field,
    ),
];

/// Latency summary fields. (name, unit, help, getter)
pub(super) const LATENCY: &[(&str, Unit, &str, Read<LatencyFn>)] = &[
    (
        "latency.samples",
        Unit::Count,
        "Answered queries with a latency sample.",
        Field,
    ),
    ("latency.p50_ms", Unit::Ms, "Median latency.", Field),
    (
        "latency.p90_ms",
        Unit::Ms,
        "90th percentile latency.",
        Field,
    ),
    (
        "latency.p95_ms",
        Unit::Ms,
        "95th percentile latency.",
        Field,
    ),
    (
        "latency.p99_ms",
        Unit::Ms,
        "99th percentile latency.",
        Field,
    ),
    (
        "latency.p999_ms",
        Unit::Ms,
        "99.9th percentile latency.",
        Field,
    ),
    ("latency.max_ms", Unit::Ms, "Slowest answer.", Field),
    ("latency.mean_ms", Unit::Ms, "Mean latency.", Field),
];

/// Lookups: search-list chains grouped into the lookup they served (node, process,
/// pod, looked-up name). (name, unit, samples, help, getter)
pub(super) const LOOKUPS: &[(&str, Unit, &str, &str, Read<LookupsFn>)] = &[
    (
        "lookups.lookups",
        Unit::Count,
        "lookups.lookups",
        "Lookups: a name and the search-suffix expansions the resolver tried for it, counted once.",
        Field,
    ),
    (
        "lookups.queries",
        Unit::Count,
        "lookups.lookups",
        "Queries those lookups sent (A and AAAA both count, re-sends too).",
        Field,
    ),
    (
        "lookups.resends",
        Unit::Count,
        "lookups.lookups",
        "Of lookups.queries, the same name and type asked again in one lookup (the resolver's re-send after its timeout): loss, not amplification.",
        Field,
    ),
    (
        "lookups.queries_per_lookup",
        Unit::Count,
        "lookups.lookups",
        "(lookups.queries - lookups.resends) / lookups.lookups: the search-path amplification (2.0 for a plain A+AAAA lookup, however often it was re-sent).",
        Field,
    ),
    (
        "lookups.expanded",
        Unit::Count,
        "lookups.lookups",
        "Lookups that tried more than one name.",
        Field,
    ),
    (
        "lookups.expansion_nxdomain",
        Unit::Count,
        "lookups.lookups",
        "NXDOMAIN answers to search-suffix expansions.",
        Field,
    ),
    (
        "lookups.unanswered",
        Unit::Count,
        "lookups.lookups",
        "Lookups whose every name failed.",
        Field,
    ),
    (
        "lookups.race_suspects",
        Unit::Count,
        "lookups.lookups",
        "Lookups with the conntrack-race fingerprint: A and AAAA sent together from one socket, one answered and the other only after a resend (or never).",
        Field,
    ),
    (
        "lookups.time_lost_ms",
        Unit::Ms,
        "lookups.lookups",
        "Time spent on names before the one each lookup ended on, summed.",
        Field,
    ),
    (
        "lookups.time_lost_mean_ms",
        Unit::Ms,
        "lookups.lookups",
        "Time lost per lookup, on average.",
        Field,
    ),
    (
        "lookups.time_lost_max_ms",
        Unit::Ms,
        "lookups.lookups",
        "Time lost by the worst lookup.",
        Field,
    ),
];

/// Node-only facts. (name, unit, samples, help, getter)
#[allow(clippy::type_complexity)]
pub(super) const NODE: &[(&str, Unit, &str, &str, Read<NodeFn>)] = &[
    (
        "observed_queries",
        Unit::Count,
        "observed_queries",
        "Client queries plus queries received by local servers: all DNS traffic seen.",
        Computed(|s| Some((s.totals.counts.queries + s.server_side.counts.queries) as f64)),
    ),
    (
        "observed_timeouts",
        Unit::Count,
        "observed_queries",
        "Client timeouts plus queries local servers received and never answered.",
        Computed(|s| Some((s.totals.counts.timeouts + s.server_side.counts.timeouts) as f64)),
    ),
    (
        "node_counters.udp_rcvbuf_errors",
        Unit::Count,
        "observed_queries",
        "UDP datagrams the node dropped for a full socket receive buffer during the window (IPv4 and IPv6; dnsdoc's network namespace); null when not read (a capture file).",
        Field,
    ),
    (
        "node_counters.udp_in_errors",
        Unit::Count,
        "observed_queries",
        "UDP datagrams the node could not deliver during the window (includes receive-buffer drops).",
        Field,
    ),
    (
        "node_counters.udp_sndbuf_errors",
        Unit::Count,
        "observed_queries",
        "UDP sends that failed for a full send buffer during the window.",
        Field,
    ),
    (
        "node_counters.ip_reasm_fails",
        Unit::Count,
        "observed_queries",
        "IP datagrams whose fragments could not be reassembled during the window (large UDP answers lost).",
        Field,
    ),
    (
        "node_counters.conntrack_insert_failed",
        Unit::Count,
        "observed_queries",
        "Connections conntrack failed to insert during the window (/proc/net/stat/nf_conntrack insert_failed, all CPUs); null without conntrack.",
        Field,
    ),
    (
        "node_counters.conntrack_drop",
        Unit::Count,
        "observed_queries",
        "Packets conntrack dropped during the window; null without conntrack.",
        Field,
    ),
    (
        "truncated",
        Unit::Count,
        "responses",
        "Answers with the TC (truncated) bit.",
        At("totals.truncated"),
    ),
    (
        "truncated_retried_tcp",
        Unit::Count,
        "responses",
        "Truncated answers the same process then asked again over TCP.",
        At("totals.truncated_retried_tcp"),
    ),
    (
        "truncated_not_retried",
        Unit::Count,
        "responses",
        "Truncated answers never retried over TCP: the client kept a partial answer or gave up.",
        Computed(|s| {
            Some(
                s.totals
                    .truncated
                    .saturating_sub(s.totals.truncated_retried_tcp) as f64,
            )
        }),
    ),
    (
        "truncation_ratio",
        Unit::Ratio,
        "responses",
        "truncated / responses.",
        Computed(|s| ratio(s.totals.truncated, s.totals.counts.responses)),
    ),
    (
        "retransmissions",
        Unit::Count,
        "queries",
        "The same query sent again before an answer.",
        At("totals.retransmissions"),
    ),
    (
        "retransmission_ratio",
        Unit::Ratio,
        "queries",
        "retransmissions / queries.",
        Computed(|s| ratio(s.totals.retransmissions, s.totals.counts.queries)),
    ),
    (
        "udp_queries",
        Unit::Count,
        "queries",
        "Queries over UDP.",
        At("totals.udp_queries"),
    ),
    (
        "tcp_queries",
        Unit::Count,
        "queries",
        "Queries over TCP.",
        At("totals.tcp_queries"),
    ),
    (
        "tcp_ratio",
        Unit::Ratio,
        "queries",
        "tcp_queries / queries.",
        Computed(|s| ratio(s.totals.tcp_queries, s.totals.counts.queries)),
    ),
    (
        "ipv4_queries",
        Unit::Count,
        "queries",
        "Queries over IPv4.",
        At("totals.ipv4_queries"),
    ),
    (
        "ipv6_queries",
        Unit::Count,
        "queries",
        "Queries over IPv6.",
        At("totals.ipv6_queries"),
    ),
    (
        "names.distinct",
        Unit::Count,
        "queries",
        "Distinct names queried.",
        Field,
    ),
    (
        "names.untracked_queries",
        Unit::Count,
        "queries",
        "Queries for names beyond the tracking limit.",
        Field,
    ),
    (
        "window.duration_s",
        Unit::Seconds,
        "observed_queries",
        "Length of the observation window.",
        Field,
    ),
    (
        "capture.packets",
        Unit::Count,
        "capture.packets",
        "DNS packets the kernel hooks saw.",
        Field,
    ),
    (
        "capture.events",
        Unit::Count,
        "capture.packets",
        "Ring-buffer records received.",
        Field,
    ),
    (
        "capture.messages",
        Unit::Count,
        "capture.packets",
        "DNS messages decoded.",
        Field,
    ),
    (
        "capture.dropped.total",
        Unit::Count,
        "capture.packets",
        "Events lost for any reason: every other number is a lower bound.",
        Field,
    ),
    (
        "capture.dropped.ringbuf_full",
        Unit::Count,
        "capture.packets",
        "Events lost because the ring buffer was full.",
        Field,
    ),
    (
        "capture.dropped.load_error",
        Unit::Count,
        "capture.packets",
        "Packets whose payload the kernel could not read.",
        Field,
    ),
    (
        "capture.dropped.decode_error",
        Unit::Count,
        "capture.packets",
        "Records that could not be decoded.",
        Field,
    ),
    (
        "capture.dropped.pending_evicted",
        Unit::Count,
        "capture.packets",
        "In-flight queries evicted because the tracking table was full.",
        Field,
    ),
    (
        "capture.dropped_ratio",
        Unit::Ratio,
        "capture.packets",
        "dropped.total / (events + dropped.total).",
        Computed(|s| {
            ratio(
                s.capture.dropped.total,
                s.capture.events + s.capture.dropped.total,
            )
        }),
    ),
    (
        "capture.payload_cut",
        Unit::Count,
        "capture.packets",
        "DNS messages not captured whole (over 64 KiB in one packet, or a continuation record lost), once per message.",
        Field,
    ),
    (
        "capture.owner_unrecorded",
        Unit::Count,
        "capture.packets",
        "Packets whose socket owner the kernel could not store (socket storage full): their process may show as (unknown).",
        Field,
    ),
    (
        "capture.parse_errors",
        Unit::Count,
        "capture.packets",
        "Records whose DNS message could not be parsed.",
        Field,
    ),
    (
        "capture.tcp_desyncs",
        Unit::Count,
        "capture.packets",
        "TCP streams that lost their framing.",
        Field,
    ),
    (
        "capture.unmatched_responses",
        Unit::Count,
        "capture.packets",
        "Responses with no matching query.",
        Field,
    ),
    (
        "capture.pending_at_end",
        Unit::Count,
        "capture.packets",
        "Client queries still in flight at the end.",
        Field,
    ),
    (
        "capture.server_pending_at_end",
        Unit::Count,
        "capture.packets",
        "Server-side queries still unanswered at the end.",
        Field,
    ),
];
