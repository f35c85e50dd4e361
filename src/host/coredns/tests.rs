use super::*;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/coredns/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn a_coredns_page_folds_into_the_rule_counters() {
    let p = parse(&fixture("coredns-1.txt")).unwrap();
    assert_eq!(p.cache_hits, 10_000.0, "both cache types summed");
    assert_eq!(p.cache_requests, 12_000.0);
    assert_eq!(p.panics, 1.0);
    assert_eq!(p.forward_max_concurrent_rejects, 7.0);
    assert_eq!(p.nodecache_setup_errors, None, "not NodeLocal DNSCache");
    assert_eq!(p.zones["."]["SERVFAIL"], 5.0);
    assert_eq!(p.zones["cluster.local."]["NXDOMAIN"], 5960.0);
    let m = metrics("http://x/metrics", &p, None);
    assert_eq!(m.mode, "total");
    assert_eq!(m.cache_hit_ratio, Some(round6(10_000.0 / 12_000.0)));
    let zone = m.zones.iter().find(|z| z.zone == ".").unwrap();
    assert_eq!(zone.counts.rcodes.SERVFAIL, 5);
    assert_eq!(zone.counts.queries, 4000);
}

#[test]
fn two_scrapes_give_the_increase_and_a_reset_counts_from_zero() {
    let a = parse(&fixture("coredns-1.txt")).unwrap();
    let b = parse(&fixture("coredns-2.txt")).unwrap();
    let m = metrics("http://x/metrics", &a, Some((&b, 30.0)));
    assert_eq!(m.mode, "delta");
    assert_eq!(m.span_s, 30.0);
    assert_eq!(m.forward_healthcheck_broken, 2.0);
    assert_eq!(m.forward_max_concurrent_rejects, 0.0);
    assert_eq!(m.cache_served_stale, 7.0);
    assert_eq!(m.cache_requests, 400.0);
    assert_eq!(m.cache_hit_ratio, Some(round6(150.0 / 400.0)));
    let root = m.zones.iter().find(|z| z.zone == ".").unwrap();
    assert_eq!(root.counts.rcodes.SERVFAIL, 60);
    assert_eq!(root.counts.queries, 100);
    // CoreDNS restarted between the scrapes: the second page counts from zero.
    let m = metrics("http://x/metrics", &b, Some((&a, 30.0)));
    assert_eq!(m.cache_requests, 12_000.0);
    assert_eq!(m.forward_healthcheck_broken, 0.0);
}

#[test]
fn node_cache_setup_errors_are_summed_over_errortypes() {
    let p = parse(&fixture("node-cache.txt")).unwrap();
    assert_eq!(p.nodecache_setup_errors, Some(5.0));
    assert!(metrics("u", &p, None).nodecache);
}

#[test]
fn pages_that_are_not_coredns_metrics_are_refused_with_a_reason() {
    let e = parse("<html><body>Not Found</body></html>\n").unwrap_err();
    assert!(e.contains("no Prometheus samples"), "{e}");
    let e = parse("# TYPE up gauge\nup 1\nnode_load1 0.3\n").unwrap_err();
    assert!(e.contains("no CoreDNS metrics"), "{e}");
}

#[test]
fn only_plain_http_urls_with_a_host_are_accepted() {
    assert!(check_url("http://127.0.0.1:9153/metrics").is_ok());
    for (url, why) in [
        ("https://10.0.0.10:9153/metrics", "https is not supported"),
        ("127.0.0.1:9153", "not an http:// URL"),
        ("http:///metrics", "no host"),
        ("http://exa mple/metrics", "not a valid URL"),
    ] {
        let e = check_url(url).unwrap_err().to_string();
        assert!(e.contains(why), "{url}: {e}");
    }
}
