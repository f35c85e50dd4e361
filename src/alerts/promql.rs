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

/// A node counter's increase over the window, and no data (not 0) where dnsdoc has
/// none: a capture file reads no node counters, a node without conntrack has no
/// conntrack counter, and doctor judges neither (its metric is null).
fn node_counter(name: &str, w: &str) -> String {
    format!("sum by ({BY}) (increase({name}[{w}]))")
}

fn truncated(w: &str) -> String {
    increase("dnsdoc_truncated_responses_total", w)
}

fn truncated_retried(w: &str) -> String {
    increase("dnsdoc_truncated_retried_tcp_total", w)
}

fn lookups(w: &str) -> String {
    increase("dnsdoc_lookups_total", w)
}

fn server_timeouts(w: &str) -> String {
    increase("dnsdoc_server_timeouts_total", w)
}

/// Lost time of the window's lookups, in ms (the snapshot's unit).
fn time_lost_ms(w: &str) -> String {
    format!(
        "({} * 1000)",
        increase("dnsdoc_lookup_time_lost_seconds_total", w)
    )
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
        "server_side.timeouts" => server_timeouts(w),
        "observed_timeouts" => format!("({} + {})", timeouts(w), server_timeouts(w)),
        "truncated" => truncated(w),
        "truncated_retried_tcp" => truncated_retried(w),
        // Each window pairs its retries with its truncated answers, so the difference
        // is never negative; increase()'s extrapolation over [w] could make it so.
        "truncated_not_retried" => format!(
            "clamp_min({} - {}, 0)",
            truncated(w),
            truncated_retried(w)
        ),
        "truncation_ratio" => ratio(truncated(w), responses(w)),
        "lookups.lookups" => lookups(w),
        "lookups.queries" => increase("dnsdoc_lookup_queries_total", w),
        "lookups.resends" => increase("dnsdoc_lookup_resends_total", w),
        "lookups.queries_per_lookup" => ratio(
            format!(
                "({} - {})",
                increase("dnsdoc_lookup_queries_total", w),
                increase("dnsdoc_lookup_resends_total", w)
            ),
            lookups(w),
        ),
        "lookups.expansion_nxdomain" => increase("dnsdoc_lookup_expansion_nxdomain_total", w),
        "lookups.race_suspects" => increase("dnsdoc_lookup_race_suspects_total", w),
        "lookups.time_lost_ms" => time_lost_ms(w),
        "lookups.time_lost_mean_ms" => ratio(time_lost_ms(w), lookups(w)),
        "node_counters.udp_rcvbuf_errors" => {
            node_counter("dnsdoc_node_udp_rcvbuf_errors_total", w)
        }
        "node_counters.conntrack_insert_failed" => {
            node_counter("dnsdoc_node_conntrack_insert_failed_total", w)
        }
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
        m if m.contains("retransmission") => "retransmissions are not exported",
        "latency.max_ms" | "lookups.time_lost_max_ms" => {
            "a maximum per window is not a counter Prometheus can take over a range"
        }
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
    fn window_counters_give_truncation_lookups_and_node_drops() {
        let e = node_metric("truncation_ratio", "5m").unwrap();
        assert!(
            e.contains("increase(dnsdoc_truncated_responses_total[5m])")
                && e.contains("increase(dnsdoc_responses_total[5m])"),
            "{e}"
        );
        let e = node_metric("lookups.queries_per_lookup", "2m").unwrap();
        assert!(
            e.contains("dnsdoc_lookup_queries_total[2m]")
                && e.contains("dnsdoc_lookup_resends_total[2m]")
                && e.contains("dnsdoc_lookups_total[2m]"),
            "re-sends are loss, not amplification: {e}"
        );
        let e = node_metric("observed_timeouts", "5m").unwrap();
        assert!(
            e.contains("dnsdoc_timeouts_total") && e.contains("dnsdoc_server_timeouts_total"),
            "{e}"
        );
        for m in [
            "lookups.race_suspects",
            "node_counters.udp_rcvbuf_errors",
            "truncated_not_retried",
            "lookups.time_lost_mean_ms",
        ] {
            let e = node_metric(m, "5m").unwrap();
            assert!(e.contains("sum by (instance)"), "per node: {e}");
            assert_eq!(e.matches('(').count(), e.matches(')').count(), "{e}");
        }
    }

    #[test]
    fn what_the_series_cannot_say_is_refused_with_a_reason() {
        assert!(node_metric("retransmission_ratio", "5m")
            .unwrap_err()
            .contains("retransmissions"));
        assert!(node_metric("lookups.time_lost_max_ms", "5m")
            .unwrap_err()
            .contains("maximum"));
        assert!(node_metric("rcodes.BADVERS", "5m").is_err());
        assert!(node_metric("capture.dropped.bogus", "5m").is_err());
    }
}
