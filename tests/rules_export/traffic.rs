//! What `promtool test rules` is fed: a minute's traffic of one scenario, the series
//! `dnsdoc serve` would expose for it, and the node metrics Prometheus must compute
//! from them over a 5m window (to check the alerts' values and summaries).

use std::collections::BTreeMap;

use dnsdoc::rules::Unit;

/// The `instance` label of every input series (one scraped dnsdoc).
pub const INSTANCE: &str = "node-1";

/// Go's `%.4g` for the values these tests produce (no exponents).
fn g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Prometheus's `humanize` for values >= 1 (SI prefixes), and 0.
fn humanize(mut v: f64) -> String {
    let mut prefix = "";
    for p in ["k", "M", "G"] {
        if v.abs() < 1000.0 {
            break;
        }
        v /= 1000.0;
        prefix = p;
    }
    format!("{}{prefix}", g4(v))
}

/// A value as the exported template formats it for its unit.
pub fn formatted(unit: Unit, v: f64) -> String {
    if v.is_nan() {
        return "n/a".into();
    }
    match unit {
        Unit::Ratio => format!("{}%", g4(v * 100.0)),
        Unit::Ms => format!("{v:.2} ms"),
        _ => humanize(v),
    }
}

/// Traffic per minute of one scenario, all client-side unless said otherwise.
#[derive(Clone, Default)]
pub struct Traffic {
    pub noerror: u64,
    pub nxdomain: u64,
    pub servfail: u64,
    pub timeouts: u64,
    /// Queries local servers received, and of them the ones they never answered.
    pub server: u64,
    pub server_timeouts: u64,
    /// Index into DURATION_BUCKETS of the bucket every answer falls in.
    pub bucket: usize,
    /// Of the answers, the truncated ones, and of those the ones retried over TCP.
    pub truncated: u64,
    pub retried_tcp: u64,
    /// Finished lookups, the queries they sent (re-sends included), the re-sends,
    /// NXDOMAIN answers to expansions, race suspects and the time they lost (ms).
    pub lookups: u64,
    pub lookup_queries: u64,
    pub lookup_resends: u64,
    pub expansion_nxdomain: u64,
    pub race_suspects: u64,
    pub time_lost_ms: f64,
    /// The node's UDP receive-buffer drops and conntrack's failed inserts (None: the
    /// series is absent, as on a node without conntrack).
    pub rcvbuf_errors: u64,
    pub conntrack_insert_failed: Option<u64>,
}

impl Traffic {
    /// The node metrics over a 5m window of this traffic (Prometheus extrapolates the
    /// 4 minutes of samples in the window to 5).
    pub fn metrics(&self) -> BTreeMap<&'static str, f64> {
        let k = 5.0;
        let per_window = |n: u64| n as f64 * k;
        let responses = per_window(self.noerror + self.nxdomain + self.servfail);
        let timeouts = per_window(self.timeouts);
        let servfail = per_window(self.servfail);
        let nx = per_window(self.nxdomain);
        let completed = responses + timeouts;
        let failures = timeouts + servfail;
        let b = dnsdoc::series::DURATION_BUCKETS;
        let lower = if self.bucket == 0 {
            0.0
        } else {
            b[self.bucket - 1]
        };
        let q = |p: f64| (lower + (b[self.bucket] - lower) * p) * 1000.0;
        let lookups = per_window(self.lookups);
        let truncated = per_window(self.truncated);
        let retried = per_window(self.retried_tcp);
        BTreeMap::from([
            ("queries", completed),
            ("observed_queries", completed + per_window(self.server)),
            ("responses", responses),
            ("timeouts", timeouts),
            ("completed", completed),
            ("failures", failures),
            ("rcodes.NOERROR", per_window(self.noerror)),
            ("rcodes.NXDOMAIN", nx),
            ("rcodes.SERVFAIL", servfail),
            ("rcodes.REFUSED", 0.0),
            ("failure_ratio", failures / completed),
            ("timeout_ratio", timeouts / completed),
            ("servfail_ratio", servfail / completed),
            ("nxdomain_ratio", nx / responses),
            ("latency.samples", responses),
            ("latency.p50_ms", q(0.5)),
            ("latency.p95_ms", q(0.95)),
            ("latency.p99_ms", q(0.99)),
            ("capture.dropped.total", 0.0),
            ("server_side.timeouts", per_window(self.server_timeouts)),
            (
                "observed_timeouts",
                timeouts + per_window(self.server_timeouts),
            ),
            ("truncated", truncated),
            ("truncated_retried_tcp", retried),
            ("truncated_not_retried", truncated - retried),
            ("truncation_ratio", truncated / responses),
            ("lookups.lookups", lookups),
            ("lookups.queries", per_window(self.lookup_queries)),
            ("lookups.resends", per_window(self.lookup_resends)),
            (
                "lookups.queries_per_lookup",
                per_window(self.lookup_queries - self.lookup_resends) / lookups,
            ),
            (
                "lookups.expansion_nxdomain",
                per_window(self.expansion_nxdomain),
            ),
            ("lookups.race_suspects", per_window(self.race_suspects)),
            (
                "lookups.time_lost_mean_ms",
                self.time_lost_ms / self.lookups as f64,
            ),
            (
                "node_counters.udp_rcvbuf_errors",
                per_window(self.rcvbuf_errors),
            ),
            // NaN: no series, so no value ("n/a", as doctor writes a null metric).
            (
                "node_counters.conntrack_insert_failed",
                self.conntrack_insert_failed.map_or(f64::NAN, per_window),
            ),
        ])
    }

    /// promtool input series: counters from 0, one sample a minute for 20 minutes.
    pub fn series(&self) -> String {
        let mut s = String::new();
        let mut add = |name: &str, labels: &str, per_min: f64| {
            let sep = if labels.is_empty() { "" } else { "," };
            s.push_str(&format!(
                "      - series: '{name}{{instance=\"{INSTANCE}\"{sep}{labels}}}'\n        values: '0+{per_min}x20'\n"
            ));
        };
        add("dnsdoc_windows_total", "", 6.0);
        add("dnsdoc_timeouts_total", "", self.timeouts as f64);
        add("dnsdoc_server_queries_total", "", self.server as f64);
        add(
            "dnsdoc_server_timeouts_total",
            "",
            self.server_timeouts as f64,
        );
        for (rcode, n) in [
            ("NOERROR", self.noerror),
            ("NXDOMAIN", self.nxdomain),
            ("SERVFAIL", self.servfail),
        ] {
            add(
                "dnsdoc_responses_total",
                &format!("rcode=\"{rcode}\""),
                n as f64,
            );
        }
        let answered = (self.noerror + self.nxdomain + self.servfail) as f64;
        add(
            "dnsdoc_queries_total",
            "server=\"10.0.0.53:53\",proto=\"udp\",qtype=\"A\"",
            answered + self.timeouts as f64,
        );
        for (i, upper) in dnsdoc::series::DURATION_BUCKETS.iter().enumerate() {
            let n = if i >= self.bucket { answered } else { 0.0 };
            add(
                "dnsdoc_query_duration_seconds_bucket",
                &format!("le=\"{upper}\""),
                n,
            );
        }
        add(
            "dnsdoc_query_duration_seconds_bucket",
            "le=\"+Inf\"",
            answered,
        );
        add("dnsdoc_query_duration_seconds_count", "", answered);
        add(
            "dnsdoc_capture_dropped_total",
            "reason=\"ringbuf_full\"",
            0.0,
        );
        add("dnsdoc_capture_packets_total", "", answered * 4.0);
        for (name, n) in [
            ("dnsdoc_truncated_responses_total", self.truncated),
            ("dnsdoc_truncated_retried_tcp_total", self.retried_tcp),
            ("dnsdoc_lookups_total", self.lookups),
            ("dnsdoc_lookup_queries_total", self.lookup_queries),
            ("dnsdoc_lookup_resends_total", self.lookup_resends),
            (
                "dnsdoc_lookup_expansion_nxdomain_total",
                self.expansion_nxdomain,
            ),
            ("dnsdoc_lookup_race_suspects_total", self.race_suspects),
            ("dnsdoc_node_udp_rcvbuf_errors_total", self.rcvbuf_errors),
        ] {
            add(name, "", n as f64);
        }
        if let Some(n) = self.conntrack_insert_failed {
            add("dnsdoc_node_conntrack_insert_failed_total", "", n as f64);
        }
        add(
            "dnsdoc_lookup_time_lost_seconds_total",
            "",
            self.time_lost_ms / 1000.0,
        );
        s
    }
}
