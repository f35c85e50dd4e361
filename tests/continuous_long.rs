//! The continuous engine over a long run: a generated capture of 1.2M events (300 000
//! queries to 1 000 servers, 5 % unanswered, every name distinct) replayed through the
//! real pipeline (`watch --pcap --interval`), one window per second of the file's
//! time. Memory stays flat, the windows add up to exactly the traffic, and the
//! exported series stay within their caps. No root: the offline source needs none.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use etherparse::PacketBuilder;

mod common;
use common::{pcap_header, pcap_record, TempDir};

const QUERIES: u32 = 300_000;
const SERVERS: u32 = 1_000;
/// One query in this many is never answered.
const UNANSWERED_EVERY: u32 = 20;
/// File time between two queries: 300 000 queries over 120 s.
const QUERY_GAP_US: u64 = 400;

/// A DNS query or response for `name` of type `qtype`.
fn dns(id: u16, response: bool, name: &str, qtype: u16) -> Vec<u8> {
    let flags: u16 = if response { 0x8180 } else { 0x0100 };
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

fn frame(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8], out: &mut Vec<u8>, ts_us: u64) {
    let mut f = Vec::with_capacity(96);
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1)
        .write(&mut f, payload)
        .unwrap();
    pcap_record(out, ts_us, &f);
}

/// Writes the capture; returns its path.
fn generate(dir: &TempDir) -> String {
    let path = dir.path().join("long.pcap");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    file.write_all(&pcap_header(1, 65535)).unwrap(); // Ethernet
    let mut buf = Vec::with_capacity(1 << 20);
    let t0 = 1_700_000_000_000_000u64;
    for i in 0..QUERIES {
        let k = i % SERVERS;
        let server = ([127, 1, (k / 250) as u8, (k % 250 + 1) as u8], 53);
        let client = ([127, 0, 0, 1], 10_000 + (i % 20_000) as u16);
        // A, AAAA, TXT, and 100 rare types: more than the qtype label's cap.
        let qtype = match i % 10 {
            0..=5 => 1,
            6 | 7 => 28,
            8 => 16,
            _ => 1000 + (i / 10 % 100) as u16,
        };
        let name = format!("n{i}.example.test");
        let id = (i % 65_536) as u16;
        let ts = t0 + u64::from(i) * QUERY_GAP_US;
        frame(client, server, &dns(id, false, &name, qtype), &mut buf, ts);
        if i % UNANSWERED_EVERY != 0 {
            frame(
                server,
                client,
                &dns(id, true, &name, qtype),
                &mut buf,
                ts + 150,
            );
        }
        if buf.len() > 1 << 20 {
            file.write_all(&buf).unwrap();
            buf.clear();
        }
    }
    file.write_all(&buf).unwrap();
    file.flush().unwrap();
    path.to_str().unwrap().to_string()
}

/// VmRSS of a process, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_million_events_keep_memory_flat_and_every_window_adds_up() {
    let dir = TempDir::new("continuous-long");
    let pcap = generate(&dir);
    let textfile = dir.path().join("textfile");
    std::fs::create_dir(&textfile).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dnsdoc"))
        .args(["watch", "--pcap", &pcap, "--port", "53", "--interval", "1s"])
        .args(["--format", "json", "--textfile"])
        .arg(&textfile)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut windows = Vec::new();
    let mut rss = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(kib) = rss_kib(pid) {
            rss.push(kib);
        }
        let snap: serde_json::Value = serde_json::from_str(&line).expect("one snapshot per line");
        windows.push(snap);
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 120 s of file time in windows of at least 1 s (a window closes at the first
    // batch of packets past the interval; a batch here spans about 1.6 s).
    assert!(windows.len() >= 50, "{} windows", windows.len());
    let sum = |path: &[&str]| -> u64 {
        windows
            .iter()
            .map(|w| path.iter().fold(w, |v, k| &v[k]).as_u64().unwrap())
            .sum()
    };
    let events = sum(&["capture", "events"]);
    assert!(events >= 1_000_000, "{events} events");
    // Every query lands in exactly one window (answered, timed out or pending at the end).
    assert_eq!(sum(&["totals", "queries"]), u64::from(QUERIES));
    assert_eq!(sum(&["server_side", "queries"]), u64::from(QUERIES));
    let unanswered = u64::from(QUERIES.div_ceil(UNANSWERED_EVERY));
    let last = windows.last().unwrap();
    let pending = last["capture"]["pending_at_end"].as_u64().unwrap();
    assert_eq!(sum(&["totals", "timeouts"]) + pending, unanswered);
    assert_eq!(sum(&["capture", "dropped", "total"]), 0);
    // Per-window name tables are bounded and reset: no window tracks more than its cap.
    for w in &windows {
        assert!(w["names"]["distinct"].as_u64().unwrap() <= 50_000);
    }

    // Memory: after the first fifth of the run, resident memory does not grow.
    assert!(rss.len() >= 50, "{} RSS samples", rss.len());
    let settled = rss[rss.len() / 5];
    let peak_late = *rss[rss.len() / 5..].iter().max().unwrap();
    eprintln!(
        "RSS KiB: first {} settled {} late peak {} last {}",
        rss[0],
        settled,
        peak_late,
        rss.last().unwrap()
    );
    assert!(
        peak_late <= settled + 8 * 1024,
        "RSS grew from {settled} KiB to {peak_late} KiB over the run"
    );

    // The textfile: cumulative, capped, folded into ~other, and consistent.
    let prom = std::fs::read_to_string(textfile.join("dnsdoc.prom")).unwrap();
    let samples: Vec<(&str, f64)> = prom
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k, v.parse().unwrap())
        })
        .collect();
    let total = |prefix: &str| -> f64 {
        samples
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    };
    let completed = u64::from(QUERIES) - pending;
    assert_eq!(total("dnsdoc_queries_total{") as u64, completed);
    assert_eq!(
        total("dnsdoc_responses_total{") as u64 + total("dnsdoc_timeouts_total") as u64,
        completed
    );
    let query_series = samples
        .iter()
        .filter(|(k, _)| k.starts_with("dnsdoc_queries_total{"))
        .count();
    assert!(
        prom.contains("server=\"~other\""),
        "servers past the cap fold"
    );
    assert!(
        prom.contains("qtype=\"~other\""),
        "qtypes past the cap fold"
    );
    // 64 servers and ~other, one protocol, 64 qtypes and ~other at most.
    assert!(query_series <= 65 * 65, "{query_series} query series");
    assert!(total("dnsdoc_series_folded_total{label=\"server\"}") > 0.0);
}
