//! The metric registry: every number a rule may read from a snapshot, per scope.
//!
//! Rules name metrics by string (`latency.p99_ms`), so this table is what makes a typo
//! an error instead of a rule that silently never fires. It is also the reference for
//! `dnsdoc rules metrics` and docs/RULES.md (a test keeps the two in step).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::render::style;
use crate::snapshot::{Counts, Latency, Snapshot};

/// What a rule looks at: one subject per row of the snapshot table of that scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The whole node, client-side view (`totals`, `latency`), plus node-wide facts
    /// (capture health, truncation, `server_side.*`).
    Node,
    /// Each local process that sent queries (`processes[]`).
    Process,
    /// Each upstream server and protocol queried (`servers[]`).
    Server,
    /// Each query type (`qtypes[]`).
    Qtype,
    /// Each name in the top lists (`names.by_failures[]`, `names.by_volume[]`).
    Name,
    /// Each local DNS server socket that answered (`server_side.listeners[]`).
    Listener,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Node,
        Scope::Process,
        Scope::Server,
        Scope::Qtype,
        Scope::Name,
        Scope::Listener,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Node => "node",
            Scope::Process => "process",
            Scope::Server => "server",
            Scope::Qtype => "qtype",
            Scope::Name => "name",
            Scope::Listener => "listener",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s)
    }

    /// How a subject of this scope is named for people: "process dig (pid 42)".
    pub fn describe(self, label: &str) -> String {
        match self {
            Scope::Node => "node".into(),
            Scope::Listener => format!("local server {label}"),
            _ => format!("{} {label}", self.as_str()),
        }
    }

    fn has_latency(self) -> bool {
        self != Scope::Name
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The unit of a metric: how it is printed and which thresholds make sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Count,
    /// A fraction between 0 and 1, printed as a percentage.
    Ratio,
    /// A difference of two ratios (-1 to 1), printed in percentage points.
    Points,
    Ms,
    PerSecond,
    /// A multiple ("4.0x").
    Factor,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Ratio => "ratio",
            Unit::Points => "points",
            Unit::Ms => "ms",
            Unit::PerSecond => "per_second",
            Unit::Factor => "factor",
            Unit::Seconds => "seconds",
        }
    }

    /// Formats a value of this unit for people.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Count => {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("{}", v as i64)
                } else {
                    format!("{v:.2}")
                }
            }
            Unit::Ratio => style::pct(v),
            Unit::Points => format!("{:+.1} points", v * 100.0),
            Unit::Ms => format!("{} ms", style::ms(Some(v))),
            Unit::PerSecond => format!("{v:.1}/s"),
            Unit::Factor => format!("{v:.1}x"),
            Unit::Seconds => format!("{v:.1} s"),
        }
    }

    /// The values a threshold of this unit may take. Ratios are fractions, so a
    /// threshold of 5 on a ratio is a percent-for-fraction mistake, not 500%.
    pub fn range(self) -> (f64, f64) {
        match self {
            Unit::Ratio => (0.0, 1.0),
            Unit::Points => (-1.0, 1.0),
            _ => (0.0, f64::INFINITY),
        }
    }
}

/// Which counts/latency of the node a node-scope metric reads.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The row itself (for the node: the client-side totals).
    Row,
    /// The node's server-side aggregate (`server_side`).
    ServerSide,
}

type CountsFn = fn(&Counts) -> Option<f64>;
type LatencyFn = fn(&Latency) -> Option<f64>;

#[derive(Debug, Clone, Copy)]
enum Get {
    Counts(Source, CountsFn),
    Latency(Source, LatencyFn),
    Node(fn(&Snapshot) -> Option<f64>),
    /// The same counts metric over all other traffic of the view (baseline minus row).
    Rest(CountsFn),
    /// The row's value minus the rest's.
    VsRest(CountsFn),
    /// Median p99 of the peers (other rows with enough samples).
    PeersP99,
    PeersCount,
    /// The row's p99 divided by the peers' median p99.
    P99VsPeers,
}

/// One metric a rule can read.
#[derive(Debug, Clone)]
pub struct Metric {
    pub name: String,
    pub unit: Unit,
    pub help: String,
    /// The count metric `min_samples` is measured on unless the rule says otherwise.
    pub samples: String,
    pub scopes: Vec<Scope>,
    get: Get,
}

impl Metric {
    pub fn applies_to(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Every metric, in documentation order.
#[derive(Debug)]
pub struct Registry {
    metrics: Vec<Metric>,
}

impl Registry {
    pub fn all(&self) -> &[Metric] {
        &self.metrics
    }

    pub fn find(&self, scope: Scope, name: &str) -> Option<&Metric> {
        self.metrics
            .iter()
            .find(|m| m.name == name && m.applies_to(scope))
    }

    pub fn for_scope(&self, scope: Scope) -> impl Iterator<Item = &Metric> {
        self.metrics.iter().filter(move |m| m.applies_to(scope))
    }

    /// The known metric of `scope` closest to a misspelt `name`, if any is close.
    pub fn suggest(&self, scope: Scope, name: &str) -> Option<&str> {
        self.for_scope(scope)
            .map(|m| (edit_distance(&m.name, name), m.name.as_str()))
            .filter(|(d, _)| *d <= 3.max(name.len() / 4))
            .min()
            .map(|(_, n)| n)
    }
}

/// Edit distance with adjacent transpositions (optimal string alignment), for "did
/// you mean" hints: "vaule" is one step from "value".
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn completed(c: &Counts) -> u64 {
    c.responses + c.timeouts
}

/// The counts every group carries. (name, unit, samples, help, getter)
const COUNTS: &[(&str, Unit, &str, &str, CountsFn)] = &[
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
const LATENCY: &[(&str, Unit, &str, LatencyFn)] = &[
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
const NODE: &[(&str, Unit, &str, &str, fn(&Snapshot) -> Option<f64>)] = &[
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

fn build() -> Registry {
    use Scope::*;
    let mut m = Vec::new();
    let all = Scope::ALL.to_vec();
    let with_latency: Vec<Scope> = Scope::ALL.into_iter().filter(|s| s.has_latency()).collect();
    let grouped = vec![Process, Server, Qtype, Name, Listener];
    let peers = vec![Process, Server, Qtype, Listener];

    for &(name, unit, samples, help, f) in COUNTS {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: all.clone(),
            get: Get::Counts(Source::Row, f),
        });
    }
    for &(name, unit, help, f) in LATENCY {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: "latency.samples".into(),
            scopes: with_latency.clone(),
            get: Get::Latency(Source::Row, f),
        });
    }
    for &(name, unit, samples, help, f) in NODE {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: vec![Node],
            get: Get::Node(f),
        });
    }
    for &(name, unit, samples, help, f) in COUNTS {
        m.push(Metric {
            name: format!("server_side.{name}"),
            unit,
            help: format!("All local DNS servers: {}", lower_first(help)),
            samples: format!("server_side.{samples}"),
            scopes: vec![Node],
            get: Get::Counts(Source::ServerSide, f),
        });
    }
    for &(name, unit, help, f) in LATENCY {
        m.push(Metric {
            name: format!("server_side.{name}"),
            unit,
            help: format!("Local DNS servers' processing time: {}", lower_first(help)),
            samples: "server_side.latency.samples".into(),
            scopes: vec![Node],
            get: Get::Latency(Source::ServerSide, f),
        });
    }
    let rest: &[(&str, Unit, &str, &str, CountsFn)] = &[
        ("queries", Unit::Count, "queries", "Queries of all other traffic in the same view (the node's client totals, or for listeners all local servers) minus this subject.", |c| Some(c.queries as f64)),
        ("completed", Unit::Count, "queries", "Completed queries of all other traffic.", |c| Some(completed(c) as f64)),
        ("failure_ratio", Unit::Ratio, "completed", "Failure ratio of all other traffic.", |c| ratio(c.failures, completed(c))),
        ("timeout_ratio", Unit::Ratio, "completed", "Timeout ratio of all other traffic.", |c| ratio(c.timeouts, completed(c))),
        ("nxdomain_ratio", Unit::Ratio, "responses", "NXDOMAIN ratio of all other traffic.", |c| ratio(c.rcodes.NXDOMAIN, c.responses)),
    ];
    for &(name, unit, samples, help, f) in rest {
        m.push(Metric {
            name: format!("rest.{name}"),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: grouped.clone(),
            get: Get::Rest(f),
        });
    }
    let vs_rest: &[(&str, &str, CountsFn)] = &[
        ("failure_ratio_vs_rest", "failure_ratio minus rest.failure_ratio: how much worse than all other traffic; null when there is no other traffic.", |c| ratio(c.failures, completed(c))),
        ("timeout_ratio_vs_rest", "timeout_ratio minus rest.timeout_ratio.", |c| ratio(c.timeouts, completed(c))),
        ("nxdomain_ratio_vs_rest", "nxdomain_ratio minus rest.nxdomain_ratio.", |c| ratio(c.rcodes.NXDOMAIN, c.responses)),
    ];
    for &(name, help, f) in vs_rest {
        m.push(Metric {
            name: name.into(),
            unit: Unit::Points,
            help: help.into(),
            samples: if name.starts_with("nxdomain") {
                "responses"
            } else {
                "completed"
            }
            .into(),
            scopes: grouped.clone(),
            get: Get::VsRest(f),
        });
    }
    m.push(Metric {
        name: "peers.count".into(),
        unit: Unit::Count,
        help: "Other subjects of the same scope with at least min_samples latency samples.".into(),
        samples: "latency.samples".into(),
        scopes: peers.clone(),
        get: Get::PeersCount,
    });
    m.push(Metric {
        name: "peers.latency.p99_ms".into(),
        unit: Unit::Ms,
        help: "Median p99 latency of the peers; null without peers.".into(),
        samples: "latency.samples".into(),
        scopes: peers.clone(),
        get: Get::PeersP99,
    });
    m.push(Metric {
        name: "latency.p99_vs_peers".into(),
        unit: Unit::Factor,
        help: "latency.p99_ms / peers.latency.p99_ms: how many times slower than a typical peer; null without peers.".into(),
        samples: "latency.samples".into(),
        scopes: peers,
        get: Get::P99VsPeers,
    });
    Registry { metrics: m }
}

/// Lower-cases the first letter to continue a sentence, but leaves an acronym
/// ("SERVFAIL answers") as it is.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match (c.next(), c.next()) {
        (Some(_), Some(second)) if second.is_uppercase() => s.to_string(),
        (Some(first), _) => first.to_lowercase().chain(s.chars().skip(1)).collect(),
        _ => String::new(),
    }
}

/// The registry (built once).
pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(build)
}

/// One subject: a row of a snapshot table.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// How the subject is named ("dig (pid 42)", "10.0.0.2:53/udp", "node").
    pub label: String,
    pub counts: &'a Counts,
    pub latency: Option<&'a Latency>,
}

/// All subjects of one scope in a snapshot, with what relative metrics compare against.
#[derive(Debug)]
pub struct View<'a> {
    pub snapshot: &'a Snapshot,
    pub rows: Vec<Row<'a>>,
    /// The traffic the rows partition: node client totals, or server_side for listeners.
    baseline: &'a Counts,
    /// Sorted p99s of the rows eligible as peers, per `min_samples`: computed once, so
    /// peer medians stay O(n log n) on nodes with thousands of short-lived processes.
    peers: RefCell<HashMap<u64, Vec<f64>>>,
}

impl<'a> View<'a> {
    pub fn new(snapshot: &'a Snapshot, scope: Scope) -> View<'a> {
        let s = snapshot;
        let rows: Vec<Row<'a>> = match scope {
            Scope::Node => vec![Row {
                label: "node".into(),
                counts: &s.totals.counts,
                latency: Some(&s.latency),
            }],
            Scope::Process => s
                .processes
                .iter()
                .map(|p| Row {
                    label: format!("{} (pid {})", p.comm, p.pid),
                    counts: &p.counts,
                    latency: Some(&p.latency),
                })
                .collect(),
            Scope::Server => s
                .servers
                .iter()
                .map(|v| Row {
                    label: format!("{}/{}", v.server, v.protocol),
                    counts: &v.counts,
                    latency: Some(&v.latency),
                })
                .collect(),
            Scope::Qtype => s
                .qtypes
                .iter()
                .map(|q| Row {
                    label: q.qtype.clone(),
                    counts: &q.counts,
                    latency: Some(&q.latency),
                })
                .collect(),
            Scope::Name => {
                // The two top lists overlap; each name once, failing names first.
                let mut seen = std::collections::HashSet::new();
                s.names
                    .by_failures
                    .iter()
                    .chain(&s.names.by_volume)
                    .filter(|n| seen.insert(n.name.as_str()))
                    .map(|n| Row {
                        label: n.name.clone(),
                        counts: &n.counts,
                        latency: None,
                    })
                    .collect()
            }
            Scope::Listener => s
                .server_side
                .listeners
                .iter()
                .map(|l| Row {
                    label: format!("{} (pid {}) on {}/{}", l.comm, l.pid, l.address, l.protocol),
                    counts: &l.counts,
                    latency: Some(&l.latency),
                })
                .collect(),
        };
        let baseline = if scope == Scope::Listener {
            &s.server_side.counts
        } else {
            &s.totals.counts
        };
        View {
            snapshot,
            rows,
            baseline,
            peers: RefCell::new(HashMap::new()),
        }
    }

    /// The value of `metric` for row `i`; None when it cannot be computed (no samples,
    /// no peers, no other traffic). `min_samples` decides who counts as a peer.
    pub fn value(&self, metric: &Metric, i: usize, min_samples: u64) -> Option<f64> {
        let row = &self.rows[i];
        let v = match metric.get {
            Get::Counts(Source::Row, f) => f(row.counts),
            Get::Counts(Source::ServerSide, f) => f(&self.snapshot.server_side.counts),
            Get::Latency(Source::Row, f) => row.latency.and_then(f),
            Get::Latency(Source::ServerSide, f) => f(&self.snapshot.server_side.latency),
            Get::Node(f) => f(self.snapshot),
            Get::Rest(f) => f(&minus(self.baseline, row.counts)),
            Get::VsRest(f) => match (f(row.counts), f(&minus(self.baseline, row.counts))) {
                (Some(a), Some(b)) => Some(a - b),
                _ => None,
            },
            Get::PeersCount => Some(self.peers_of(i, min_samples, |p| p.len() as f64)),
            Get::PeersP99 => self.peers_of(i, min_samples, median),
            Get::P99VsPeers => {
                let own = row.latency.and_then(|l| l.p99_ms);
                match (own, self.peers_of(i, min_samples, median)) {
                    (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                    _ => None,
                }
            }
        };
        v.filter(|v| v.is_finite())
    }

    /// This row's p99, if the row is eligible as a peer.
    fn eligible_p99(&self, i: usize, min_samples: u64) -> Option<f64> {
        self.rows[i]
            .latency
            .filter(|l| l.samples >= min_samples.max(1))
            .and_then(|l| l.p99_ms)
    }

    /// Applies `f` to the sorted p99s of row `i`'s peers: every eligible row but itself.
    fn peers_of<T>(&self, i: usize, min_samples: u64, f: impl Fn(&Peers) -> T) -> T {
        let mut cache = self.peers.borrow_mut();
        let all = cache.entry(min_samples).or_insert_with(|| {
            let mut v: Vec<f64> = (0..self.rows.len())
                .filter_map(|j| self.eligible_p99(j, min_samples))
                .collect();
            v.sort_by(f64::total_cmp);
            v
        });
        let skip = self
            .eligible_p99(i, min_samples)
            .and_then(|own| all.binary_search_by(|x| x.total_cmp(&own)).ok());
        f(&Peers { sorted: all, skip })
    }
}

/// A sorted list with at most one element left out (the subject itself).
struct Peers<'a> {
    sorted: &'a [f64],
    skip: Option<usize>,
}

impl Peers<'_> {
    fn len(&self) -> usize {
        self.sorted.len() - usize::from(self.skip.is_some())
    }

    fn get(&self, j: usize) -> f64 {
        match self.skip {
            Some(s) if j >= s => self.sorted[j + 1],
            _ => self.sorted[j],
        }
    }
}

/// Counts of `all` minus `part` (the rest of the traffic).
fn minus(all: &Counts, part: &Counts) -> Counts {
    let r = &all.rcodes;
    let p = &part.rcodes;
    Counts {
        queries: all.queries.saturating_sub(part.queries),
        queries_per_s: (all.queries_per_s - part.queries_per_s).max(0.0),
        responses: all.responses.saturating_sub(part.responses),
        timeouts: all.timeouts.saturating_sub(part.timeouts),
        rcodes: crate::snapshot::Rcodes {
            NOERROR: r.NOERROR.saturating_sub(p.NOERROR),
            NXDOMAIN: r.NXDOMAIN.saturating_sub(p.NXDOMAIN),
            SERVFAIL: r.SERVFAIL.saturating_sub(p.SERVFAIL),
            REFUSED: r.REFUSED.saturating_sub(p.REFUSED),
            FORMERR: r.FORMERR.saturating_sub(p.FORMERR),
            NOTIMP: r.NOTIMP.saturating_sub(p.NOTIMP),
            other: r.other.saturating_sub(p.other),
            other_by_name: r
                .other_by_name
                .iter()
                .map(|(k, &v)| {
                    let part = p.other_by_name.get(k).copied().unwrap_or(0);
                    (k.clone(), v.saturating_sub(part))
                })
                .filter(|&(_, v)| v > 0)
                .collect(),
        },
        failures: all.failures.saturating_sub(part.failures),
        failure_ratio: 0.0,
        nxdomain_ratio: 0.0,
    }
}

fn median(p: &Peers) -> Option<f64> {
    let n = p.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(p.get(n / 2)),
        _ => Some((p.get(n / 2 - 1) + p.get(n / 2)) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_scope_and_samples_are_counts() {
        let r = registry();
        for scope in Scope::ALL {
            let mut seen = std::collections::HashSet::new();
            for m in r.for_scope(scope) {
                assert!(seen.insert(&m.name), "{} twice in {scope}", m.name);
                let s = r
                    .find(scope, &m.samples)
                    .unwrap_or_else(|| panic!("{}: samples {} not in {scope}", m.name, m.samples));
                assert_eq!(s.unit, Unit::Count, "{}: samples must be a count", m.name);
            }
        }
        assert!(r.find(Scope::Name, "latency.p99_ms").is_none());
        assert!(r.find(Scope::Process, "capture.dropped.total").is_none());
        assert!(r.find(Scope::Node, "latency.p99_vs_peers").is_none());
    }

    #[test]
    fn suggests_close_names_only() {
        let r = registry();
        let hint = r.suggest(Scope::Node, "latency.p98_ms");
        assert!(
            matches!(hint, Some("latency.p90_ms" | "latency.p99_ms")),
            "{hint:?}"
        );
        assert_eq!(
            r.suggest(Scope::Node, "failure_rate"),
            Some("failure_ratio")
        );
        assert_eq!(r.suggest(Scope::Node, "zzzzzzzzzzzzzzzzzzzz"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("vaule", "value"), 1);
    }

    #[test]
    fn units_format_for_people() {
        assert_eq!(Unit::Ms.format(812.4), "812 ms");
        assert_eq!(Unit::Ratio.format(0.052), "5.2%");
        assert_eq!(Unit::Points.format(0.295), "+29.5 points");
        assert_eq!(Unit::Count.format(12.0), "12");
        assert_eq!(Unit::Factor.format(4.25), "4.2x");
        let m = |v: &[f64], skip| median(&Peers { sorted: v, skip });
        assert_eq!(m(&[1.0, 2.0, 3.0], None), Some(2.0));
        assert_eq!(m(&[1.0, 4.0], None), Some(2.5));
        assert_eq!(
            m(&[1.0, 2.0, 3.0, 10.0], Some(3)),
            Some(2.0),
            "without itself"
        );
        assert_eq!(m(&[1.0, 2.0, 3.0, 10.0], Some(0)), Some(3.0));
        assert_eq!(m(&[5.0], Some(0)), None);
    }
}
