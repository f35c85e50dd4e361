//! A rule metric of the node scope as PromQL over dnsdoc's exported series
//! ([`crate::series`]), measured over a range `[W]` that plays the part of doctor's
//! observation window. Metrics the series cannot give return `None`, with the reason.

/// RCODEs with a field of their own in the snapshot's `rcodes`.
const NAMED_RCODES: &str = "NOERROR|NXDOMAIN|SERVFAIL|REFUSED|FORMERR|NOTIMP";

/// Capture-loss reasons (`dnsdoc_capture_dropped_total{reason}`).
const DROP_REASONS: [&str; 4] = [
    "ringbuf_full",
    "load_error",
    "decode_error",
    "pending_evicted",
];

/// Per scraped dnsdoc (one node): every expression keeps exactly this label.
pub const BY: &str = "instance";

/// 0 for every dnsdoc that is scraped (its `dnsdoc_windows_total` always exists).
fn zero(w: &str) -> String {
    format!("(sum by ({BY}) (increase(dnsdoc_windows_total[{w}])) * 0)")
}

/// A count over the window per dnsdoc, 0 (not "no data") when no series matches yet, so
/// sums and ratios of counts stay defined.
fn increase(selector: &str, w: &str) -> String {
    format!("(sum by ({BY}) (increase({selector}[{w}])) or {})", zero(w))
}

fn queries(w: &str) -> String {
    increase("dnsdoc_queries_total", w)
}

fn responses(w: &str) -> String {
    increase("dnsdoc_responses_total", w)
}

fn timeouts(w: &str) -> String {
    increase("dnsdoc_timeouts_total", w)
}

fn rcode(name: &str, w: &str) -> String {
    increase(&format!("dnsdoc_responses_total{{rcode=\"{name}\"}}"), w)
}

fn completed(w: &str) -> String {
    format!("({} + {})", responses(w), timeouts(w))
}

fn failures(w: &str) -> String {
    let errors = increase("dnsdoc_responses_total{rcode!~\"NOERROR|NXDOMAIN\"}", w);
    format!("({} + {errors})", timeouts(w))
}

fn quantile(q: &str, w: &str) -> String {
    format!(
        "(histogram_quantile({q}, sum by ({BY}, le) (rate(dnsdoc_query_duration_seconds_bucket[{w}]))) * 1000)"
    )
}

/// PromQL for the node metric `name` over `[w]`, or why there is none.
pub fn node_metric(name: &str, w: &str) -> Result<String, String> {
    let ratio = |a: String, b: String| format!("({a} / {b})");
    let expr = match name {
        "queries" => queries(w),
        "observed_queries" => format!(
            "({} + {})",
            queries(w),
            increase("dnsdoc_server_queries_total", w)
        ),
        "responses" => responses(w),
        "timeouts" => timeouts(w),
        "completed" => completed(w),
        "failures" => failures(w),
        "failure_ratio" => ratio(failures(w), completed(w)),
        "timeout_ratio" => ratio(timeouts(w), completed(w)),
        "servfail_ratio" => ratio(rcode("SERVFAIL", w), completed(w)),
        "refused_ratio" => ratio(rcode("REFUSED", w), completed(w)),
        "nxdomain_ratio" => ratio(rcode("NXDOMAIN", w), responses(w)),
        "queries_per_s" => format!(
            "(sum by ({BY}) (rate(dnsdoc_queries_total[{w}])) or {})",
            zero(w)
        ),
        "rcodes.other" => increase(
            &format!("dnsdoc_responses_total{{rcode!~\"{NAMED_RCODES}\"}}"),
            w,
        ),
        "latency.samples" => increase("dnsdoc_query_duration_seconds_count", w),
        "latency.p50_ms" => quantile("0.5", w),
        "latency.p90_ms" => quantile("0.9", w),
        "latency.p95_ms" => quantile("0.95", w),
        "latency.p99_ms" => quantile("0.99", w),
        "latency.p999_ms" => quantile("0.999", w),
        "latency.mean_ms" => format!(
            "(sum by ({BY}) (rate(dnsdoc_query_duration_seconds_sum[{w}])) / sum by ({BY}) (rate(dnsdoc_query_duration_seconds_count[{w}])) * 1000)"
        ),
        "capture.dropped.total" => increase("dnsdoc_capture_dropped_total", w),
        "capture.packets" => increase("dnsdoc_capture_packets_total", w),
        "capture.dropped_ratio" => ratio(
            increase("dnsdoc_capture_dropped_total", w),
            increase("dnsdoc_capture_packets_total", w),
        ),
        other => {
            if let Some(code) = other.strip_prefix("rcodes.") {
                if NAMED_RCODES.split('|').any(|c| c == code) {
                    return Ok(rcode(code, w));
                }
            }
            if let Some(reason) = other.strip_prefix("capture.dropped.") {
                if DROP_REASONS.contains(&reason) {
                    return Ok(increase(
                        &format!("dnsdoc_capture_dropped_total{{reason=\"{reason}\"}}"),
                        w,
                    ));
                }
            }
            return Err(why_not(other));
        }
    };
    Ok(expr)
}

/// Why a node metric has no PromQL equivalent.
fn why_not(metric: &str) -> String {
    let missing = match metric {
        m if m.starts_with("truncat") => "truncated answers are not exported",
        m if m.contains("retransmissions") => "retransmissions are not exported",
        "latency.max_ms" => "a histogram has no maximum",
        m if m.starts_with("coredns.") => {
            "it is read from CoreDNS's own /metrics page (doctor --coredns-metrics); \
             alert on CoreDNS's coredns_* series where Prometheus scrapes CoreDNS"
        }
        _ => "it is not among the exported series",
    };
    format!("metric `{metric}`: {missing}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_divide_counts_over_the_same_window() {
        let e = node_metric("failure_ratio", "5m").unwrap();
        assert!(e.contains("dnsdoc_timeouts_total[5m]"), "{e}");
        assert!(e.contains("rcode!~\"NOERROR|NXDOMAIN\""), "{e}");
        assert!(e.contains("sum by (instance)"), "per node: {e}");
        assert_eq!(e.matches('(').count(), e.matches(')').count(), "{e}");
        let e = node_metric("rcodes.SERVFAIL", "1m").unwrap();
        assert!(
            e.contains("rcode=\"SERVFAIL\"") && e.contains("[1m]"),
            "{e}"
        );
        assert!(node_metric("latency.p99_ms", "5m")
            .unwrap()
            .contains("0.99"));
    }

    #[test]
    fn what_the_series_cannot_say_is_refused_with_a_reason() {
        assert!(node_metric("truncation_ratio", "5m")
            .unwrap_err()
            .contains("truncated"));
        assert!(node_metric("rcodes.BADVERS", "5m").is_err());
        assert!(node_metric("capture.dropped.bogus", "5m").is_err());
    }
}
