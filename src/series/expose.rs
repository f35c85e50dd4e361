//! The exposition: [`Series`] as Prometheus text (format 0.0.4) or OpenMetrics 1.0.
//!
//! Written here rather than with a client crate: `prometheus-client` encodes only
//! OpenMetrics and `prometheus` only the classic text, and dnsdoc must serve both (the
//! scraper picks with `Accept`). The two formats differ in three places only (a
//! counter family's name, `# EOF`, the content type); both are checked by `promtool
//! check metrics` on a live scrape in tests/serve_live.rs.

use std::fmt::Write;

use super::{server_label, Series, WindowSums, DURATION_BUCKETS, OTHER};

/// Which text format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: what Prometheus asks for by default.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// Picks the format from an HTTP `Accept` header: OpenMetrics when it is asked for.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Facts about the exporter itself, beside the series.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub version: String,
    pub kernel: String,
    /// Resident memory of this process, bytes.
    pub resident_bytes: Option<u64>,
}

impl Meta {
    /// This build and this process, now.
    pub fn current() -> Meta {
        Meta {
            version: env!("CARGO_PKG_VERSION").to_string(),
            kernel: crate::host::kernel_release(),
            resident_bytes: resident_bytes(),
        }
    }
}

/// This process's resident set size, from /proc/self/statm.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE always exists on Linux.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family being written.
struct Writer {
    out: String,
    format: Format,
}

type Labels<'a> = &'a [(&'a str, &'a str)];

impl Writer {
    /// `# HELP` and `# TYPE`; `name` is the sample name (counters end in `_total`).
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let (family, kind) = match kind {
            Kind::Counter => (
                match self.format {
                    Format::OpenMetrics => name.strip_suffix("_total").unwrap_or(name),
                    Format::Prometheus => name,
                },
                "counter",
            ),
            Kind::Gauge => (name, "gauge"),
            Kind::Histogram => (name, "histogram"),
        };
        let _ = writeln!(self.out, "# HELP {family} {help}");
        let _ = writeln!(self.out, "# TYPE {family} {kind}");
    }

    fn sample(&mut self, name: &str, labels: Labels<'_>, value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }
}

/// A sample value: integers without a fraction, `+Inf` spelt as both formats want.
fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Label values escape backslash, double quote and newline (both formats).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes every series in `format`.
pub fn encode(s: &Series, meta: &Meta, format: Format) -> String {
    let mut w = Writer {
        out: String::with_capacity(4096 + 160 * s.cardinality()),
        format,
    };

    w.family(
        "dnsdoc_build_info",
        Kind::Gauge,
        "dnsdoc's version and the kernel it runs on; always 1.",
    );
    w.sample(
        "dnsdoc_build_info",
        &[("version", &meta.version), ("kernel", &meta.kernel)],
        1.0,
    );

    w.family(
        "dnsdoc_queries_total",
        Kind::Counter,
        "DNS queries sent by local clients that completed (answered or timed out), by server, protocol and query type.",
    );
    let mut queries: Vec<_> = s
        .queries
        .iter()
        .map(|(&(server, proto, qtype), &n)| {
            let qtype = qtype.map_or_else(|| OTHER.to_string(), crate::codes::qtype_name);
            (server_label(server), proto.as_str(), qtype, n)
        })
        .collect();
    queries.sort();
    for (server, proto, qtype, n) in &queries {
        w.sample(
            "dnsdoc_queries_total",
            &[("server", server), ("proto", proto), ("qtype", qtype)],
            *n as f64,
        );
    }

    w.family(
        "dnsdoc_responses_total",
        Kind::Counter,
        "Answers received by local clients, by RCODE (extended by EDNS).",
    );
    let mut responses: Vec<_> = s
        .responses
        .iter()
        .map(|(rcode, &n)| {
            let name = rcode.map_or_else(
                || OTHER.to_string(),
                |r| crate::codes::rcode_name(r).into_owned(),
            );
            (name, n)
        })
        .collect();
    responses.sort();
    for (rcode, n) in &responses {
        w.sample("dnsdoc_responses_total", &[("rcode", rcode)], *n as f64);
    }

    w.family(
        "dnsdoc_timeouts_total",
        Kind::Counter,
        "Queries of local clients unanswered after the timeout.",
    );
    w.sample("dnsdoc_timeouts_total", &[], s.timeouts as f64);

    w.family(
        "dnsdoc_server_queries_total",
        Kind::Counter,
        "Queries local DNS servers received that completed (answered or timed out).",
    );
    w.sample("dnsdoc_server_queries_total", &[], s.server_queries as f64);

    w.family(
        "dnsdoc_server_timeouts_total",
        Kind::Counter,
        "Queries local DNS servers received and never answered within the timeout.",
    );
    w.sample(
        "dnsdoc_server_timeouts_total",
        &[],
        s.server_timeouts as f64,
    );

    from_windows(&mut w, &s.from_windows);

    w.family(
        "dnsdoc_query_duration_seconds",
        Kind::Histogram,
        "Client-side DNS latency: query left the socket to answer reached it.",
    );
    let mut cumulative = 0;
    for (i, upper) in DURATION_BUCKETS.iter().enumerate() {
        cumulative += s.duration.counts[i];
        let le = format!("{upper}");
        w.sample(
            "dnsdoc_query_duration_seconds_bucket",
            &[("le", &le)],
            cumulative as f64,
        );
    }
    w.sample(
        "dnsdoc_query_duration_seconds_bucket",
        &[("le", "+Inf")],
        s.duration.count as f64,
    );
    w.sample("dnsdoc_query_duration_seconds_sum", &[], s.duration.sum_s);
    w.sample(
        "dnsdoc_query_duration_seconds_count",
        &[],
        s.duration.count as f64,
    );

    w.family(
        "dnsdoc_capture_dropped_total",
        Kind::Counter,
        "Capture events lost, by reason: while any grow, every other number is a lower bound.",
    );
    for (reason, n) in &s.dropped {
        w.sample(
            "dnsdoc_capture_dropped_total",
            &[("reason", reason)],
            *n as f64,
        );
    }

    w.family(
        "dnsdoc_capture_packets_total",
        Kind::Counter,
        "DNS packets the capture saw.",
    );
    w.sample("dnsdoc_capture_packets_total", &[], s.packets as f64);

    w.family(
        "dnsdoc_process_queries_total",
        Kind::Counter,
        "Completed queries per local process name (capped; the rest under ~other).",
    );
    for (name, c) in &s.processes {
        w.sample(
            "dnsdoc_process_queries_total",
            &[("process", name)],
            c.queries as f64,
        );
    }
    w.family(
        "dnsdoc_process_failures_total",
        Kind::Counter,
        "Failed queries (timeouts and error RCODEs, not NXDOMAIN) per local process name.",
    );
    for (name, c) in &s.processes {
        w.sample(
            "dnsdoc_process_failures_total",
            &[("process", name)],
            c.failures as f64,
        );
    }

    w.family(
        "dnsdoc_series_folded_total",
        Kind::Counter,
        "Observations whose label value was past the label's cap and counted under ~other.",
    );
    for label in ["process", "qtype", "rcode", "server"] {
        let n = s.folded.get(label).copied().unwrap_or(0);
        w.sample("dnsdoc_series_folded_total", &[("label", label)], n as f64);
    }

    w.family(
        "dnsdoc_evictions_total",
        Kind::Counter,
        "Entries dropped from dnsdoc's bounded tables, by table.",
    );
    for (table, n) in &s.evictions {
        w.sample("dnsdoc_evictions_total", &[("table", table)], *n as f64);
    }

    w.family(
        "dnsdoc_windows_total",
        Kind::Counter,
        "Observation windows closed (the counters advance once per window).",
    );
    w.sample("dnsdoc_windows_total", &[], s.windows as f64);

    if let Some(rss) = meta.resident_bytes {
        w.family(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
        );
        w.sample("process_resident_memory_bytes", &[], rss as f64);
    }

    if format == Format::OpenMetrics {
        w.out.push_str("# EOF\n");
    }
    w.out
}

/// The counters summed over closed windows (truncation, lookups, the node's drops).
/// The node's families are left out until a window read them: a capture file has none,
/// and a 0 would claim the node dropped nothing.
fn from_windows(w: &mut Writer, f: &WindowSums) {
    let counters: [(&str, &str, f64); 8] = [
        (
            "dnsdoc_truncated_responses_total",
            "Answers to local clients with the TC (truncated) bit; counted in dnsdoc_responses_total too.",
            f.truncated as f64,
        ),
        (
            "dnsdoc_truncated_retried_tcp_total",
            "Truncated answers whose question the same process then asked over TCP.",
            f.truncated_retried_tcp as f64,
        ),
        (
            "dnsdoc_lookups_total",
            "Finished lookups of local clients: a name and the search-suffix expansions the resolver tried for it, counted once.",
            f.lookups as f64,
        ),
        (
            "dnsdoc_lookup_queries_total",
            "Queries those lookups sent (A and AAAA both count, re-sends too).",
            f.lookup_queries as f64,
        ),
        (
            "dnsdoc_lookup_resends_total",
            "Of dnsdoc_lookup_queries_total, the same name and type asked again in one lookup (re-sends after a timeout).",
            f.lookup_resends as f64,
        ),
        (
            "dnsdoc_lookup_expansion_nxdomain_total",
            "NXDOMAIN answers to search-suffix expansions of lookups.",
            f.lookup_expansion_nxdomain as f64,
        ),
        (
            "dnsdoc_lookup_race_suspects_total",
            "Lookups with the conntrack-race fingerprint: A and AAAA sent together from one socket, one answered, the other only after a resend or never.",
            f.lookup_race_suspects as f64,
        ),
        (
            "dnsdoc_lookup_time_lost_seconds_total",
            "Time lookups spent on names before the one they ended on (search-suffix expansions), summed.",
            f.lookup_time_lost_s,
        ),
    ];
    for (name, help, v) in counters {
        w.family(name, Kind::Counter, help);
        w.sample(name, &[], v);
    }
    let node = [
        (
            "dnsdoc_node_udp_rcvbuf_errors_total",
            "UDP datagrams the node dropped for a full socket receive buffer (IPv4 and IPv6, dnsdoc's network namespace) since dnsdoc started.",
            f.node_udp_rcvbuf_errors,
        ),
        (
            "dnsdoc_node_conntrack_insert_failed_total",
            "Connections conntrack failed to insert (all CPUs) since dnsdoc started.",
            f.node_conntrack_insert_failed,
        ),
    ];
    for (name, help, v) in node {
        if let Some(v) = v {
            w.family(name, Kind::Counter, help);
            w.sample(name, &[], v as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Limits;

    #[test]
    fn counters_are_named_per_format() {
        let s = Series::new(Limits::default());
        let meta = Meta::default();
        let prom = encode(&s, &meta, Format::Prometheus);
        assert!(prom.contains("# TYPE dnsdoc_timeouts_total counter\n"));
        assert!(!prom.contains("# EOF"));
        let om = encode(&s, &meta, Format::OpenMetrics);
        assert!(om.contains("# TYPE dnsdoc_timeouts counter\ndnsdoc_timeouts_total 0\n"));
        assert!(om.ends_with("# EOF\n"));
        assert!(prom.contains("dnsdoc_query_duration_seconds_bucket{le=\"0.0005\"} 0\n"));
        assert!(prom.contains("dnsdoc_query_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
    }

    #[test]
    fn window_counters_are_exposed_and_node_ones_only_once_read() {
        let mut s = Series::new(Limits::default());
        s.from_windows.lookups = 4;
        s.from_windows.lookup_time_lost_s = 0.25;
        let text = encode(&s, &Meta::default(), Format::Prometheus);
        for family in [
            "dnsdoc_server_timeouts_total",
            "dnsdoc_truncated_responses_total",
            "dnsdoc_truncated_retried_tcp_total",
            "dnsdoc_lookup_queries_total",
            "dnsdoc_lookup_resends_total",
            "dnsdoc_lookup_expansion_nxdomain_total",
            "dnsdoc_lookup_race_suspects_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} counter\n{family} 0\n")),
                "{family}: {text}"
            );
        }
        assert!(text.contains("dnsdoc_lookups_total 4\n"), "{text}");
        assert!(text.contains("dnsdoc_lookup_time_lost_seconds_total 0.25\n"));
        assert!(!text.contains("dnsdoc_node_"), "not read: absent, not 0");
        s.from_windows.node_udp_rcvbuf_errors = Some(7);
        let om = encode(&s, &Meta::default(), Format::OpenMetrics);
        assert!(om.contains(
            "# TYPE dnsdoc_node_udp_rcvbuf_errors counter\ndnsdoc_node_udp_rcvbuf_errors_total 7\n"
        ));
        assert!(!om.contains("dnsdoc_node_conntrack"), "{om}");
    }

    #[test]
    fn accept_header_chooses_the_format() {
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
    }
}
