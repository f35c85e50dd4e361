//! The plain metrics as data: the counts every group carries ([`COUNTS`]), latency
//! summaries ([`LATENCY`]) and node-only facts ([`NODE`]), each with its unit, sample
//! count, help text and getter. Long, and only ever read by [`registry`](mod@super::registry).

use super::registry::{CountsFn, LatencyFn};
use super::Unit;
use crate::snapshot::{Counts, Snapshot};

/// `num / den`, or None without a denominator.
pub(super) fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Queries answered or timed out.
pub(super) fn completed(c: &Counts) -> u64 {
    c.responses + c.timeouts
}

/// The counts every group carries. (name, unit, samples, help, getter)
pub(super) const COUNTS: &[(&str, Unit, &str, &str, CountsFn)] = &[
    (
        "queries",
        Unit::Count,
        "queries",
        "Queries sent (client view) or received (server view).",
        |c| Some(c.queries as f64),
    ),
    (
        "queries_per_s",
        Unit::PerSecond,
        "queries",
        "Queries per second over the window.",
        |c| Some(c.queries_per_s),
    ),
    (
        "responses",
        Unit::Count,
        "queries",
        "Queries answered.",
        |c| Some(c.responses as f64),
    ),
    (
        "timeouts",
        Unit::Count,
        "queries",
        "Queries unanswered after the capture timeout.",
        |c| Some(c.timeouts as f64),
    ),
    (
        "completed",
        Unit::Count,
        "queries",
        "Queries answered or timed out (the denominator of the failure ratios).",
        |c| Some(completed(c) as f64),
    ),
    (
        "failures",
        Unit::Count,
        "queries",
        "Timeouts plus SERVFAIL, REFUSED, FORMERR, NOTIMP and other error RCODEs (not NXDOMAIN).",
        |c| Some(c.failures as f64),
    ),
    (
        "failure_ratio",
        Unit::Ratio,
        "completed",
        "failures / completed.",
        |c| ratio(c.failures, completed(c)),
    ),
    (
        "timeout_ratio",
        Unit::Ratio,
        "completed",
        "timeouts / completed.",
        |c| ratio(c.timeouts, completed(c)),
    ),
    (
        "servfail_ratio",
        Unit::Ratio,
        "completed",
        "SERVFAIL answers / completed.",
        |c| ratio(c.rcodes.SERVFAIL, completed(c)),
    ),
    (
        "refused_ratio",
        Unit::Ratio,
        "completed",
        "REFUSED answers / completed.",
        |c| ratio(c.rcodes.REFUSED, completed(c)),
    ),
    (
        "nxdomain_ratio",
        Unit::Ratio,
        "responses",
        "NXDOMAIN answers / responses.",
        |c| ratio(c.rcodes.NXDOMAIN, c.responses),
    ),
    (
        "rcodes.NOERROR",
        Unit::Count,
        "queries",
        "Answers with RCODE NOERROR.",
        |c| Some(c.rcodes.NOERROR as f64),
    ),
    (
        "rcodes.NXDOMAIN",
        Unit::Count,
        "queries",
        "Answers with RCODE NXDOMAIN.",
        |c| Some(c.rcodes.NXDOMAIN as f64),
    ),
    (
        "rcodes.SERVFAIL",
        Unit::Count,
        "queries",
        "Answers with RCODE SERVFAIL.",
        |c| Some(c.rcodes.SERVFAIL as f64),
    ),
    (
        "rcodes.REFUSED",
        Unit::Count,
        "queries",
        "Answers with RCODE REFUSED.",
        |c| Some(c.rcodes.REFUSED as f64),
    ),
    (
        "rcodes.FORMERR",
        Unit::Count,
        "queries",
        "Answers with RCODE FORMERR.",
        |c| Some(c.rcodes.FORMERR as f64),
    ),
    (
        "rcodes.NOTIMP",
        Unit::Count,
        "queries",
        "Answers with RCODE NOTIMP.",
        |c| Some(c.rcodes.NOTIMP as f64),
    ),
    (
        "rcodes.other",
        Unit::Count,
        "queries",
        "Answers with any other RCODE.",
        |c| Some(c.rcodes.other as f64),
    ),
];

/// Latency summary fields. (name, unit, help, getter)
pub(super) const LATENCY: &[(&str, Unit, &str, LatencyFn)] = &[
    (
        "latency.samples",
        Unit::Count,
        "Answered queries with a latency sample.",
        |l| Some(l.samples as f64),
    ),
    ("latency.p50_ms", Unit::Ms, "Median latency.", |l| l.p50_ms),
    (
        "latency.p90_ms",
        Unit::Ms,
        "90th percentile latency.",
        |l| l.p90_ms,
    ),
    (
        "latency.p95_ms",
        Unit::Ms,
        "95th percentile latency.",
        |l| l.p95_ms,
    ),
    (
        "latency.p99_ms",
        Unit::Ms,
        "99th percentile latency.",
        |l| l.p99_ms,
    ),
    (
        "latency.p999_ms",
        Unit::Ms,
        "99.9th percentile latency.",
        |l| l.p999_ms,
    ),
    ("latency.max_ms", Unit::Ms, "Slowest answer.", |l| l.max_ms),
    ("latency.mean_ms", Unit::Ms, "Mean latency.", |l| l.mean_ms),
];

/// Node-only facts. (name, unit, samples, help, getter)
#[allow(clippy::type_complexity)]
pub(super) const NODE: &[(&str, Unit, &str, &str, fn(&Snapshot) -> Option<f64>)] = &[
    (
        "observed_queries",
        Unit::Count,
        "observed_queries",
        "Client queries plus queries received by local servers: all DNS traffic seen.",
        |s| Some((s.totals.counts.queries + s.server_side.counts.queries) as f64),
    ),
    (
        "truncated",
        Unit::Count,
        "responses",
        "Answers with the TC (truncated) bit.",
        |s| Some(s.totals.truncated as f64),
    ),
    (
        "truncated_retried_tcp",
        Unit::Count,
        "responses",
        "Truncated answers the same process then asked again over TCP.",
        |s| Some(s.totals.truncated_retried_tcp as f64),
    ),
    (
        "truncated_not_retried",
        Unit::Count,
        "responses",
        "Truncated answers never retried over TCP: the client kept a partial answer or gave up.",
        |s| {
            Some(
                s.totals
                    .truncated
                    .saturating_sub(s.totals.truncated_retried_tcp) as f64,
            )
        },
    ),
    (
        "truncation_ratio",
        Unit::Ratio,
        "responses",
        "truncated / responses.",
        |s| ratio(s.totals.truncated, s.totals.counts.responses),
    ),
    (
        "retransmissions",
        Unit::Count,
        "queries",
        "The same query sent again before an answer.",
        |s| Some(s.totals.retransmissions as f64),
    ),
    (
        "retransmission_ratio",
        Unit::Ratio,
        "queries",
        "retransmissions / queries.",
        |s| ratio(s.totals.retransmissions, s.totals.counts.queries),
    ),
    (
        "udp_queries",
        Unit::Count,
        "queries",
        "Queries over UDP.",
        |s| Some(s.totals.udp_queries as f64),
    ),
    (
        "tcp_queries",
        Unit::Count,
        "queries",
        "Queries over TCP.",
        |s| Some(s.totals.tcp_queries as f64),
    ),
    (
        "tcp_ratio",
        Unit::Ratio,
        "queries",
        "tcp_queries / queries.",
        |s| ratio(s.totals.tcp_queries, s.totals.counts.queries),
    ),
    (
        "ipv4_queries",
        Unit::Count,
        "queries",
        "Queries over IPv4.",
        |s| Some(s.totals.ipv4_queries as f64),
    ),
    (
        "ipv6_queries",
        Unit::Count,
        "queries",
        "Queries over IPv6.",
        |s| Some(s.totals.ipv6_queries as f64),
    ),
    (
        "names.distinct",
        Unit::Count,
        "queries",
        "Distinct names queried.",
        |s| Some(s.names.distinct as f64),
    ),
    (
        "names.untracked_queries",
        Unit::Count,
        "queries",
        "Queries for names beyond the tracking limit.",
        |s| Some(s.names.untracked_queries as f64),
    ),
    (
        "window.duration_s",
        Unit::Seconds,
        "observed_queries",
        "Length of the observation window.",
        |s| Some(s.window.duration_s),
    ),
    (
        "capture.packets",
        Unit::Count,
        "capture.packets",
        "DNS packets the kernel hooks saw.",
        |s| Some(s.capture.packets as f64),
    ),
    (
        "capture.events",
        Unit::Count,
        "capture.packets",
        "Ring-buffer records received.",
        |s| Some(s.capture.events as f64),
    ),
    (
        "capture.messages",
        Unit::Count,
        "capture.packets",
        "DNS messages decoded.",
        |s| Some(s.capture.messages as f64),
    ),
    (
        "capture.dropped.total",
        Unit::Count,
        "capture.packets",
        "Events lost for any reason: every other number is a lower bound.",
        |s| Some(s.capture.dropped.total as f64),
    ),
    (
        "capture.dropped.ringbuf_full",
        Unit::Count,
        "capture.packets",
        "Events lost because the ring buffer was full.",
        |s| Some(s.capture.dropped.ringbuf_full as f64),
    ),
    (
        "capture.dropped.load_error",
        Unit::Count,
        "capture.packets",
        "Packets whose payload the kernel could not read.",
        |s| Some(s.capture.dropped.load_error as f64),
    ),
    (
        "capture.dropped.decode_error",
        Unit::Count,
        "capture.packets",
        "Records that could not be decoded.",
        |s| Some(s.capture.dropped.decode_error as f64),
    ),
    (
        "capture.dropped.pending_evicted",
        Unit::Count,
        "capture.packets",
        "In-flight queries evicted because the tracking table was full.",
        |s| Some(s.capture.dropped.pending_evicted as f64),
    ),
    (
        "capture.dropped.nested",
        Unit::Count,
        "capture.packets",
        "Events lost because kernel hooks nested deeper than their scratch buffers (expected 0).",
        |s| Some(s.capture.dropped.nested as f64),
    ),
    (
        "capture.dropped_ratio",
        Unit::Ratio,
        "capture.packets",
        "dropped.total / (events + dropped.total).",
        |s| {
            ratio(
                s.capture.dropped.total,
                s.capture.events + s.capture.dropped.total,
            )
        },
    ),
    (
        "capture.payload_cut",
        Unit::Count,
        "capture.packets",
        "Packets longer than the capture size.",
        |s| Some(s.capture.payload_cut as f64),
    ),
    (
        "capture.parse_errors",
        Unit::Count,
        "capture.packets",
        "Records whose DNS message could not be parsed.",
        |s| Some(s.capture.parse_errors as f64),
    ),
    (
        "capture.tcp_desyncs",
        Unit::Count,
        "capture.packets",
        "TCP streams that lost their framing.",
        |s| Some(s.capture.tcp_desyncs as f64),
    ),
    (
        "capture.unmatched_responses",
        Unit::Count,
        "capture.packets",
        "Responses with no matching query.",
        |s| Some(s.capture.unmatched_responses as f64),
    ),
    (
        "capture.pending_at_end",
        Unit::Count,
        "capture.packets",
        "Client queries still in flight at the end.",
        |s| Some(s.capture.pending_at_end as f64),
    ),
    (
        "capture.server_pending_at_end",
        Unit::Count,
        "capture.packets",
        "Server-side queries still unanswered at the end.",
        |s| Some(s.capture.server_pending_at_end as f64),
    ),
];
