//! CoreDNS's own view (or NodeLocal DNSCache's, which is CoreDNS): its /metrics page,
//! fetched over plain HTTP (`ureq`), parsed as Prometheus text (`prometheus-parse`) and
//! folded into the few counters dnsdoc's rules read. Counters are cumulative, so two
//! scrapes (the window's start and end) give what happened during the window; one
//! scrape gives totals since CoreDNS started, and the snapshot says which.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;

use crate::exit::{CollectError, UsageError};
use crate::snapshot::{CorednsMetrics, CorednsZone, Counts, Rcodes};
use crate::units::{rate, round3, round6};

/// Largest page read (CoreDNS with many zones and histograms runs to a few MiB).
const MAX_PAGE_BYTES: u64 = 64 << 20;
/// How long one scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The counters of one scrape, summed over their labels (zones per RCODE kept).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub forward_healthcheck_broken: f64,
    pub forward_max_concurrent_rejects: f64,
    pub cache_served_stale: f64,
    pub panics: f64,
    pub cache_hits: f64,
    pub cache_requests: f64,
    /// None when the page has no `coredns_nodecache_*` family (not NodeLocal DNSCache).
    pub nodecache_setup_errors: Option<f64>,
    /// `coredns_dns_responses_total` by zone, then RCODE name.
    pub zones: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Refuses a URL dnsdoc cannot read before any window starts (exit 64).
pub fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| Err(UsageError(format!("--coredns-metrics {url}: {why}")).into());
    if url.starts_with("https://") {
        return bad("https is not supported; CoreDNS's prometheus plugin serves plain http (http://HOST:9153/metrics)");
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return bad("not an http:// URL (e.g. http://127.0.0.1:9153/metrics)");
    };
    if rest.is_empty() || rest.starts_with('/') {
        return bad("no host in the URL (e.g. http://127.0.0.1:9153/metrics)");
    }
    if url.parse::<ureq::http::Uri>().is_err() {
        return bad("not a valid URL");
    }
    Ok(())
}

/// Fetches and parses the page; an unreachable server, an HTTP error or a page without
/// CoreDNS metrics is one line (exit 3).
pub fn scrape(url: &str) -> Result<Page> {
    let fail = |why: String| CollectError::Metrics(format!("{url}: {why}"));
    // No proxy: the page is on the node or in the cluster, never behind $http_proxy.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(SCRAPE_TIMEOUT))
        .proxy(None)
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| {
        fail(match e {
            ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
            e => e.to_string(),
        })
    })?;
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_PAGE_BYTES)
        .read_to_string()
        .map_err(|e| fail(format!("reading the page: {e}")))?;
    Ok(parse(&text).map_err(fail)?)
}

/// Parses Prometheus text; a page with no `coredns_` sample is not CoreDNS's.
pub fn parse(text: &str) -> Result<Page, String> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape =
        prometheus_parse::Scrape::parse(lines).map_err(|e| format!("not Prometheus text: {e}"))?;
    let mut p = Page::default();
    let mut coredns = false;
    for s in &scrape.samples {
        let v = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => {
                coredns |= s.metric.starts_with("coredns_");
                continue;
            }
        };
        coredns |= s.metric.starts_with("coredns_");
        match s.metric.as_str() {
            "coredns_forward_healthcheck_broken_total" => p.forward_healthcheck_broken += v,
            "coredns_forward_max_concurrent_rejects_total" => p.forward_max_concurrent_rejects += v,
            "coredns_cache_served_stale_total" => p.cache_served_stale += v,
            "coredns_panics_total" => p.panics += v,
            "coredns_cache_hits_total" => p.cache_hits += v,
            "coredns_cache_requests_total" => p.cache_requests += v,
            "coredns_nodecache_setup_errors_total" => {
                *p.nodecache_setup_errors.get_or_insert(0.0) += v
            }
            "coredns_dns_responses_total" => {
                let zone = s.labels.get("zone").unwrap_or(".").to_string();
                let rcode = s.labels.get("rcode").unwrap_or("other").to_string();
                *p.zones.entry(zone).or_default().entry(rcode).or_default() += v;
            }
            m if m.starts_with("coredns_nodecache_") => {
                p.nodecache_setup_errors.get_or_insert(0.0);
            }
            _ => {}
        }
    }
    if !coredns {
        return Err(if scrape.samples.is_empty() {
            "no Prometheus samples on the page (is it a /metrics URL?)".to_string()
        } else {
            "no CoreDNS metrics (coredns_*) on the page".to_string()
        });
    }
    Ok(p)
}

/// A counter's increase from `a` to `b`; a counter that went down was reset (CoreDNS
/// restarted) and counts from zero, as Prometheus's `increase` does.
fn increase(a: f64, b: f64) -> f64 {
    if b >= a {
        b - a
    } else {
        b
    }
}

/// The snapshot's `coredns`: `first` alone (totals), or the increase from `first` to
/// `last` over `span_s` seconds.
pub fn metrics(url: &str, first: &Page, last: Option<(&Page, f64)>) -> CorednsMetrics {
    let (p, mode, span_s) = match last {
        None => (first.clone(), "total", 0.0),
        Some((b, span)) => {
            let a = first;
            let zones = b
                .zones
                .iter()
                .map(|(zone, rcodes)| {
                    let before = a.zones.get(zone);
                    let inc = rcodes
                        .iter()
                        .map(|(r, &v)| {
                            let was = before.and_then(|z| z.get(r)).copied().unwrap_or(0.0);
                            (r.clone(), increase(was, v))
                        })
                        .collect();
                    (zone.clone(), inc)
                })
                .collect();
            let d = Page {
                forward_healthcheck_broken: increase(
                    a.forward_healthcheck_broken,
                    b.forward_healthcheck_broken,
                ),
                forward_max_concurrent_rejects: increase(
                    a.forward_max_concurrent_rejects,
                    b.forward_max_concurrent_rejects,
                ),
                cache_served_stale: increase(a.cache_served_stale, b.cache_served_stale),
                panics: increase(a.panics, b.panics),
                cache_hits: increase(a.cache_hits, b.cache_hits),
                cache_requests: increase(a.cache_requests, b.cache_requests),
                nodecache_setup_errors: b
                    .nodecache_setup_errors
                    .map(|v| increase(a.nodecache_setup_errors.unwrap_or(0.0), v)),
                zones,
            };
            (d, "delta", span)
        }
    };
    let mut zones: Vec<CorednsZone> = p
        .zones
        .iter()
        .map(|(zone, rcodes)| CorednsZone {
            zone: zone.clone(),
            counts: zone_counts(rcodes, span_s),
        })
        .collect();
    zones.sort_by(|a, b| {
        b.counts
            .queries
            .cmp(&a.counts.queries)
            .then(a.zone.cmp(&b.zone))
    });
    CorednsMetrics {
        url: url.to_string(),
        mode: mode.to_string(),
        span_s: round3(span_s),
        nodecache: p.nodecache_setup_errors.is_some(),
        forward_healthcheck_broken: p.forward_healthcheck_broken,
        forward_max_concurrent_rejects: p.forward_max_concurrent_rejects,
        cache_served_stale: p.cache_served_stale,
        panics: p.panics,
        cache_hits: p.cache_hits,
        cache_requests: p.cache_requests,
        cache_hit_ratio: (p.cache_requests > 0.0)
            .then(|| round6((p.cache_hits / p.cache_requests).min(1.0))),
        nodecache_setup_errors: p.nodecache_setup_errors,
        zones,
    }
}

/// A zone's responses as Counts: CoreDNS counts answers, so queries = responses and
/// nothing times out.
fn zone_counts(rcodes: &BTreeMap<String, f64>, span_s: f64) -> Counts {
    let mut r = Rcodes::default();
    for (name, &v) in rcodes {
        let n = v.max(0.0).round() as u64;
        match name.as_str() {
            "NOERROR" => r.NOERROR += n,
            "NXDOMAIN" => r.NXDOMAIN += n,
            "SERVFAIL" => r.SERVFAIL += n,
            "REFUSED" => r.REFUSED += n,
            "FORMERR" => r.FORMERR += n,
            "NOTIMP" => r.NOTIMP += n,
            other => {
                r.other += n;
                if n > 0 {
                    *r.other_by_name.entry(other.to_string()).or_default() += n;
                }
            }
        }
    }
    let responses = r.total();
    let failures = r.failed();
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            round6(a as f64 / b as f64)
        }
    };
    Counts {
        queries: responses,
        queries_per_s: round3(rate(responses, span_s)),
        responses,
        timeouts: 0,
        failures,
        failure_ratio: ratio(failures, responses),
        nxdomain_ratio: ratio(r.NXDOMAIN, responses),
        rcodes: r,
        active_s: round3(span_s),
        queries_per_active_s: round3(rate(responses, span_s)),
    }
}

#[cfg(test)]
mod tests;
