//! `dnsdoc serve` and `watch --interval/--textfile` against the real kernel, a real
//! dnsmasq and real clients, read by the real consumers: promtool, node_exporter and
//! (tests/alerts_live.rs) Prometheus.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One HTTP GET on loopback: (status, content type, body).
fn http_get(port: u16, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

/// The value of one sample line `name{labels} value` in a text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Runs `dig` in the cgroup `n` times for each name; returns how many answered.
fn dig(cg: &TestCgroup, port: u16, names: &[&str], n: usize) -> usize {
    let port = port.to_string();
    let mut answered = 0;
    for _ in 0..n {
        for name in names {
            let (_, out) = cg.run(
                "dig",
                &[
                    "@127.0.0.1",
                    "-p",
                    &port,
                    name,
                    "A",
                    "+tries=1",
                    "+timeout=2",
                ],
            );
            if dig_status(&out).is_some() {
                answered += 1;
            }
        }
    }
    answered
}

/// Polls `f` every 100 ms until it returns Some, for at most `secs`.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_exposes_live_traffic_that_promtool_accepts_and_stops_on_sigterm() {
    if !require_bpf("serve_exposes_live_traffic_that_promtool_accepts_and_stops_on_sigterm") {
        return;
    }
    let cg = TestCgroup::new("serve");
    let port = free_port();
    let http = free_port();
    // An answer too big for UDP without EDNS: truncated, then asked again over TCP.
    let big = "x".repeat(250);
    let txt = format!("--txt-record=big.test,{big},{big},{big}");
    let _dnsmasq = start_dnsmasq(&cg, port, &[&txt]);
    let listen = format!("127.0.0.1:{http}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnsdoc"));
    // A short timeout: a lookup is counted once no query can join it any more, which
    // the timeout decides.
    cmd.args(["serve", "--interval", "1s", "--timeout", "1s"])
        .args(["--listen", &listen, "--port"])
        .arg(port.to_string())
        .arg("--cgroup")
        .arg(&cg.path);
    let serve = spawn_attached(cmd);
    assert!(cg.attached_programs() > 0);

    // Before the first window: metrics already (all zero), no snapshot yet.
    let (status, _, body) = http_get(http, "/healthz", None);
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = http_get(http, "/nope", None);
    assert_eq!(status, 404);

    let good = dig(&cg, port, &["a.good.test", "b.good.test"], 5);
    let missing = dig(&cg, port, &["missing.test"], 4);
    assert_eq!((good, missing), (10, 4), "dnsmasq answered every dig");

    let key =
        format!("dnsdoc_queries_total{{server=\"127.0.0.1:{port}\",proto=\"udp\",qtype=\"A\"}}");
    let text = wait_for(10, "the queries in /metrics", || {
        let (_, _, text) = http_get(http, "/metrics", None);
        (sample(&text, &key) == Some(14.0)).then_some(text)
    });
    assert_eq!(
        sample(&text, "dnsdoc_responses_total{rcode=\"NXDOMAIN\"}"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "dnsdoc_responses_total{rcode=\"NOERROR\"}"),
        Some(10.0),
        "{text}"
    );
    assert_eq!(sample(&text, "dnsdoc_timeouts_total"), Some(0.0), "{text}");
    assert_eq!(
        sample(&text, "dnsdoc_server_queries_total"),
        Some(14.0),
        "dnsmasq's side"
    );
    assert_eq!(
        sample(&text, "dnsdoc_query_duration_seconds_count"),
        Some(14.0)
    );
    assert_eq!(
        sample(&text, "dnsdoc_query_duration_seconds_bucket{le=\"+Inf\"}"),
        Some(14.0)
    );
    // Every query has a process series; most are dig's. A dig that exits before its
    // /proc entry is read keeps the kernel's thread name instead (the fallback), which
    // happens under load and on the kernel matrix's emulated CPUs.
    let per_process: f64 = text
        .lines()
        .filter(|l| l.starts_with("dnsdoc_process_queries_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(per_process, 14.0, "{text}");
    assert!(
        sample(&text, "dnsdoc_process_queries_total{process=\"dig\"}").is_some_and(|v| v > 0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "dnsdoc_capture_dropped_total{reason=\"ringbuf_full\"}"
        ),
        Some(0.0)
    );
    assert!(text.contains("dnsdoc_build_info{version=\""), "{text}");

    // A truncated answer retried over TCP, and the lookups of every dig: counted when
    // their window closes (a lookup once nothing can join it any more).
    let (_, out) = cg.run(
        "dig",
        &[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "big.test",
            "TXT",
            "+noedns",
            "+tries=1",
        ],
    );
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains("Truncated, retrying in TCP mode"),
        "{answer}"
    );
    let text = wait_for(30, "the truncation and every lookup in /metrics", || {
        let (_, _, text) = http_get(http, "/metrics", None);
        (sample(&text, "dnsdoc_truncated_responses_total") == Some(1.0)
            && sample(&text, "dnsdoc_lookup_queries_total") == Some(16.0))
        .then_some(text)
    });
    assert_eq!(
        sample(&text, "dnsdoc_truncated_retried_tcp_total"),
        Some(1.0),
        "{text}"
    );
    let lookups = sample(&text, "dnsdoc_lookups_total").unwrap();
    let resends = sample(&text, "dnsdoc_lookup_resends_total").unwrap();
    assert_eq!(
        16.0 - resends,
        lookups,
        "one name per dig: each lookup is one query plus its re-sends\n{text}"
    );
    for zero in [
        "dnsdoc_lookup_race_suspects_total",
        "dnsdoc_lookup_expansion_nxdomain_total",
        "dnsdoc_server_timeouts_total",
    ] {
        assert_eq!(sample(&text, zero), Some(0.0), "{zero}\n{text}");
    }
    assert!(
        sample(&text, "dnsdoc_lookup_time_lost_seconds_total").is_some(),
        "{text}"
    );
    // The node's own counter, whatever its value (the whole node's UDP).
    assert!(
        sample(&text, "dnsdoc_node_udp_rcvbuf_errors_total").is_some(),
        "{text}"
    );

    // promtool: the scrape is valid Prometheus text and passes its lint.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // OpenMetrics when asked for.
    let (status, ctype, om) = http_get(
        http,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE dnsdoc_queries counter\n"), "{om}");

    // The last window's snapshot and findings.
    let (status, ctype, snap) = http_get(http, "/snapshot", None);
    assert_eq!((status, ctype.as_str()), (200, "application/json"));
    let snap: serde_json::Value = serde_json::from_str(&snap).unwrap();
    assert_eq!(snap["schema"], dnsdoc::snapshot::SCHEMA);
    let (status, _, doctor) = http_get(http, "/doctor", None);
    assert_eq!(status, 200);
    let doctor: serde_json::Value = serde_json::from_str(&doctor).unwrap();
    assert!(doctor["findings"].is_array(), "{doctor}");

    // SIGTERM: exits 0 and detaches every probe.
    serve.signal("-TERM");
    let (code, _, stderr) = serve.wait();
    assert_eq!(code, Some(0), "{stderr:?}");
    assert_eq!(cg.attached_programs(), 0, "probes left attached");
    assert!(
        TcpStream::connect(("127.0.0.1", http)).is_err(),
        "still listening"
    );
}

#[test]
fn serve_refuses_an_address_in_use_in_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_dnsdoc(&["serve", "--listen", &addr]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&addr) && err.contains("cannot listen"),
        "{err}"
    );
}

#[test]
fn watch_count_ends_after_that_many_windows() {
    if !require_bpf("watch_count_ends_after_that_many_windows") {
        return;
    }
    let cg = TestCgroup::new("count");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnsdoc"));
    cmd.args([
        "watch",
        "--interval",
        "1s",
        "--count",
        "2",
        "--format",
        "json",
    ])
    .args(["--port", &free_port().to_string(), "--cgroup"])
    .arg(&cg.path);
    let (code, stdout, stderr) = spawn_attached(cmd).wait();
    assert_eq!(code, Some(0), "{stderr:?}");
    assert_eq!(stdout.lines().count(), 2, "--count 2: {stdout}");
    assert_eq!(cg.attached_programs(), 0);
}

#[test]
fn watch_interval_prints_one_json_line_per_window_that_add_up() {
    if !require_bpf("watch_interval_prints_one_json_line_per_window_that_add_up") {
        return;
    }
    let cg = TestCgroup::new("interval");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let textfile = TempDir::new("textfile");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnsdoc"));
    // Windows until Ctrl-C after the digs: a fixed --count of windows ended before the
    // last dig on an emulated CPU under load (5 of 6 counted), however long they were.
    cmd.args(["watch", "--interval", "1s", "--format", "json"])
        .arg("--port")
        .arg(port.to_string())
        .arg("--cgroup")
        .arg(&cg.path)
        .arg("--textfile")
        .arg(textfile.path());
    let watch = spawn_attached(cmd);
    let answered = dig(&cg, port, &["a.good.test", "nothing.test"], 3);
    assert_eq!(answered, 6);
    let (code, stdout, stderr) = watch.interrupt();
    assert_eq!(code, Some(0), "{stderr:?}");
    let windows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one snapshot per line"))
        .collect();
    assert!(!windows.is_empty(), "{stdout}");
    let queries: u64 = windows
        .iter()
        .map(|w| w["totals"]["queries"].as_u64().unwrap())
        .sum();
    assert_eq!(queries, 6, "each query in exactly one window");
    assert_eq!(cg.attached_programs(), 0);

    // The textfile holds the cumulative counters, and node_exporter serves them.
    let prom = std::fs::read_to_string(textfile.path().join("dnsdoc.prom")).unwrap();
    assert_eq!(
        sample(&prom, "dnsdoc_windows_total"),
        Some(windows.len() as f64)
    );
    // The counters only closed windows give are the windows' own numbers, summed.
    let summed = |f: &dyn Fn(&serde_json::Value) -> &serde_json::Value| -> f64 {
        windows.iter().map(|w| f(w).as_u64().unwrap() as f64).sum()
    };
    assert_eq!(
        sample(&prom, "dnsdoc_lookups_total"),
        Some(summed(&|w| &w["lookups"]["lookups"]))
    );
    assert_eq!(
        sample(&prom, "dnsdoc_lookup_queries_total"),
        Some(6.0),
        "every query in a lookup by the end\n{prom}"
    );
    assert_eq!(
        sample(&prom, "dnsdoc_truncated_responses_total"),
        Some(summed(&|w| &w["totals"]["truncated"]))
    );
    let exporter_port = free_port();
    let _exporter = Guard(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                textfile.path().display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter (apt-get install prometheus-node-exporter)"),
    );
    wait_for_tcp(("127.0.0.1", exporter_port));
    let (_, _, scraped) = http_get(exporter_port, "/metrics", None);
    assert_eq!(
        sample(&scraped, "node_textfile_scrape_error"),
        Some(0.0),
        "{scraped}"
    );
    assert_eq!(
        sample(&scraped, "dnsdoc_responses_total{rcode=\"NXDOMAIN\"}"),
        Some(3.0),
        "{scraped}"
    );
}

/// The zone of the chaos live tests (tests/common/chaos.rs): names under cluster.local that exist, and
/// NXDOMAIN for the rest of cluster.local.
const CLUSTER_DNS: &[&str] = &[
    "--local=/cluster.local/",
    "--host-record=kubernetes.default.svc.cluster.local,10.96.0.1",
    "--host-record=kube-dns.kube-system.svc.cluster.local,10.96.0.10",
];

/// The `data.result` of a Prometheus API answer.
fn api(port: u16, path: &str) -> serde_json::Value {
    let (status, _, body) = http_get(port, path, None);
    assert_eq!(status, 200, "{path}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{body}");
    v["data"].clone()
}

#[test]
fn prometheus_scrapes_serve_and_the_exported_alert_fires_in_an_nxdomain_storm() {
    if !require_bpf("prometheus_scrapes_serve_and_the_exported_alert_fires_in_an_nxdomain_storm") {
        return;
    }
    let cg = TestCgroup::new("prom");
    let port = free_port();
    let _dnsmasq = start_dnsmasq_with(
        &cg,
        port,
        &Dnsmasq {
            zone: CLUSTER_DNS,
            ..Dnsmasq::default()
        },
    );
    let http = free_port();
    let listen = format!("127.0.0.1:{http}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnsdoc"));
    cmd.args(["serve", "--interval", "1s", "--listen", &listen, "--port"])
        .arg(port.to_string())
        .arg("--cgroup")
        .arg(&cg.path);
    let serve = spawn_attached(cmd);

    // The alerts, over a window short enough for a test.
    let dir = TempDir::new("prometheus");
    let rules = dir.path().join("dnsdoc.yml");
    let out = run_dnsdoc(&[
        "rules",
        "export",
        "--window",
        "15s",
        "--for",
        "5s",
        "-o",
        rules.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prom_port = free_port();
    let config = dir.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{:?}]\nscrape_configs:\n  - job_name: dnsdoc\n    static_configs:\n      - targets: ['{listen}']\n",
            rules.to_str().unwrap()
        ),
    );
    let _prometheus = Guard(
        Command::new("prometheus")
            .arg(format!("--config.file={config}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (apt-get install prometheus)"),
    );
    wait_for_tcp(("127.0.0.1", prom_port));
    wait_for(30, "Prometheus ready", || {
        (http_get(prom_port, "/-/ready", None).0 == 200).then_some(())
    });

    // The storm, from inside the watched cgroup; bounded by its own --duration.
    let target = format!("127.0.0.1:{port}");
    let chaos = Guard(
        cg.command(
            env!("CARGO_BIN_EXE_dnsdoc"),
            &[
                "chaos",
                "--induce",
                "nxdomain-storm",
                "--duration",
                "40s",
                "--target",
                &target,
                "--yes",
                "--format",
                "json",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );

    // Prometheus's own view: the target is up, and the exported alert goes pending or
    // firing.
    let state = wait_for(
        45,
        "DnsNxdomainRatio pending or firing in Prometheus",
        || {
            let alerts = api(prom_port, "/api/v1/alerts");
            alerts["alerts"].as_array()?.iter().find_map(|a| {
                (a["labels"]["alertname"] == "DnsNxdomainRatio")
                    .then(|| a["state"].as_str().unwrap().to_string())
            })
        },
    );
    assert!(state == "pending" || state == "firing", "{state}");
    let up = api(prom_port, "/api/v1/query?query=up");
    assert_eq!(up["result"][0]["value"][1], "1", "{up}");
    let nx = api(
        prom_port,
        "/api/v1/query?query=dnsdoc_responses_total%7Brcode%3D%22NXDOMAIN%22%7D",
    );
    let seen: f64 = nx["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seen > 10.0, "{nx}");
    let alerts = api(prom_port, "/api/v1/alerts");
    let ours: Vec<_> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "DnsNxdomainRatio")
        .collect();
    assert!(
        ours.iter()
            .all(|a| a["labels"]["instance"] == listen.as_str()
                && a["annotations"]["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("NXDOMAIN"))),
        "{alerts}"
    );
    drop(chaos);
    serve.signal("-TERM");
    let (code, _, stderr) = serve.wait();
    assert_eq!(code, Some(0), "{stderr:?}");
    assert_eq!(cg.attached_programs(), 0);
}
