//! `doctor --coredns-metrics`: CoreDNS exposition text (tests/fixtures/coredns/, modelled
//! on CoreDNS 1.11's and node-cache's real output: HELP/TYPE lines, histogram buckets,
//! go_ and process_ families) served over real HTTP on loopback by a small server
//! thread, read by the dnsdoc binary. Bad URLs, unreachable servers and pages that are
//! not CoreDNS's are one line and a documented exit code.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;

/// An HTTP server on 127.0.0.1 that answers its n-th request with `pages[n]` (the
/// last page again after that), `status` and a Prometheus text content type. Serves at
/// most 16 requests, then its thread ends.
struct PageServer {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
}

fn serve(pages: Vec<String>, status: &'static str) -> PageServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let n = count.fetch_add(1, Ordering::SeqCst);
            let body = &pages[n.min(pages.len() - 1)];
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    PageServer { url, requests }
}

fn page(name: &str) -> String {
    std::fs::read_to_string(format!("tests/fixtures/coredns/{name}")).unwrap()
}

fn report(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn finding<'a>(r: &'a serde_json::Value, rule: &str) -> Option<&'a serde_json::Value> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
}

#[test]
fn one_scrape_with_a_snapshot_judges_totals_since_coredns_started() {
    let server = serve(vec![page("node-cache.txt")], "200 OK");
    let out = run_dnsdoc(&[
        "doctor",
        "--snapshot",
        "tests/fixtures/snapshots/healthy.json",
        "--coredns-metrics",
        &server.url,
        "--format",
        "json",
    ]);
    let r = report(&out);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    // The page's totals: 1 panic, 7 rejects, 3 stale answers, 5 node-cache setup errors.
    for (rule, value) in [
        ("dns_coredns_panics", 1.0),
        ("dns_coredns_forward_rejects", 7.0),
        ("dns_coredns_served_stale", 3.0),
        ("dns_nodecache_setup_errors", 5.0),
    ] {
        let f = finding(&r, rule).unwrap_or_else(|| panic!("no {rule}: {r:#}"));
        assert_eq!(f["value"], value, "{rule}");
        let summary = f["summary"].as_str().unwrap();
        assert!(summary.contains("since CoreDNS started"), "{summary}");
    }
    // 10 000 hits of 12 000 requests; the zones' SERVFAIL shares are low.
    assert!(
        finding(&r, "dns_coredns_cache_hit_ratio").is_none(),
        "{r:#}"
    );
    assert!(finding(&r, "dns_coredns_zone_servfail").is_none(), "{r:#}");
    assert!(
        finding(&r, "dns_coredns_forward_unhealthy").is_none(),
        "{r:#}"
    );
}

#[test]
fn a_live_window_judges_the_increase_between_two_scrapes() {
    if !require_bpf("a_live_window_judges_the_increase_between_two_scrapes") {
        return;
    }
    let cg = TestCgroup::new("coredns-delta");
    let server = serve(vec![page("coredns-1.txt"), page("coredns-2.txt")], "200 OK");
    let dir = TempDir::new("coredns-delta");
    let snap = dir.path().join("s.json");
    let port = free_port().to_string();
    let cgroup = cg.path.to_str().unwrap();
    let out = run_dnsdoc(&[
        "doctor",
        "--duration",
        "1s",
        "--cgroup",
        cgroup,
        "--port",
        &port,
        "--coredns-metrics",
        &server.url,
        "--format",
        "json",
        "-o",
        snap.to_str().unwrap(),
    ]);
    let r = report(&out);
    assert_eq!(server.requests.load(Ordering::SeqCst), 2, "start and end");
    let s = dnsdoc::snapshot::Snapshot::read(&snap).unwrap();
    let c = s.coredns.expect("the snapshot keeps what the page said");
    assert_eq!(c.mode, "delta");
    assert!(c.span_s >= 1.0, "{c:?}");
    // Between the two pages: 2 healthcheck breaks, 60 SERVFAIL of 100 answers for ".",
    // 150 hits of 400 cache requests; panics and rejects did not move.
    let f = finding(&r, "dns_coredns_forward_unhealthy").expect("healthcheck broken twice");
    assert_eq!(f["value"], 2.0);
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("between two scrapes"),
        "{f:#}"
    );
    let f = finding(&r, "dns_coredns_zone_servfail").expect("the root zone fails");
    assert_eq!(f["subject"], "CoreDNS zone .");
    assert_eq!(f["value"], 0.6);
    let f = finding(&r, "dns_coredns_cache_hit_ratio").expect("150 of 400 hits");
    assert_eq!(f["value"], 0.375);
    assert!(finding(&r, "dns_coredns_panics").is_none(), "{r:#}");
    assert!(
        finding(&r, "dns_coredns_forward_rejects").is_none(),
        "{r:#}"
    );
    assert!(
        finding(&r, "dns_nodecache_setup_errors").is_none(),
        "not node-cache"
    );
}

#[test]
fn unreadable_or_foreign_pages_are_one_line_and_exit_3_bad_urls_exit_64() {
    let html = serve(
        vec!["<html><body><h1>It works</h1></body></html>\n".into()],
        "200 OK",
    );
    let node_exporter = serve(
        vec![
            "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.21\n".into(),
        ],
        "200 OK",
    );
    let missing = serve(vec!["404 page not found\n".into()], "404 Not Found");
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metrics", l.local_addr().unwrap());
        drop(l);
        url
    };
    for (url, code, why) in [
        (html.url.as_str(), 3, "no Prometheus samples"),
        (node_exporter.url.as_str(), 3, "no CoreDNS metrics"),
        (missing.url.as_str(), 3, "HTTP status 404"),
        (closed.as_str(), 3, "Connection refused"),
        (
            "https://127.0.0.1:9153/metrics",
            64,
            "https is not supported",
        ),
        ("127.0.0.1:9153/metrics", 64, "not an http:// URL"),
    ] {
        let out = run_dnsdoc(&[
            "doctor",
            "--snapshot",
            "tests/fixtures/snapshots/healthy.json",
            "--coredns-metrics",
            url,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{url}: {err}");
        assert_eq!(err.lines().count(), 1, "{url}: one line: {err}");
        assert!(err.contains(why) && err.contains(url), "{url}: {err}");
        assert!(out.stdout.is_empty(), "{url}: no report");
    }
}
