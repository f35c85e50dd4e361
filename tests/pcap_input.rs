//! The offline doctor on crafted capture files (no root, no kernel): exact counts and
//! latency from the file's own timestamps, every link type, and one clear line with exit
//! code 4 for each kind of bad file.

use std::path::Path;
use std::process::{Command, Output};

use etherparse::PacketBuilder;

mod common;
use common::TempDir;

fn dnsdoc(args: &[&str]) -> Output {
    common::run_dnsdoc(args)
}

/// A DNS message for `name` A: a query, or a response with `rcode`.
fn dns(id: u16, response: bool, rcode: u8, name: &str) -> Vec<u8> {
    let flags: u16 = if response {
        0x8180 | u16::from(rcode)
    } else {
        0x0100
    };
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// An Ethernet/IPv4/UDP frame between 10.0.0.5:40000 (client) and 10.0.0.53:53.
fn udp_frame(to_server: bool, payload: &[u8]) -> Vec<u8> {
    let (client, server) = ([10, 0, 0, 5], [10, 0, 0, 53]);
    let (src, dst, sport, dport) = if to_server {
        (client, server, 40000, 53)
    } else {
        (server, client, 53, 40000)
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// A legacy pcap file (microsecond timestamps) of `linktype` with these frames.
fn pcap(linktype: u32, snaplen: u32, frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut f = common::pcap_header(linktype, snaplen);
    for (ts_us, data) in frames {
        common::pcap_record(&mut f, *ts_us, data);
    }
    f
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

fn snapshot(path: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["watch", "--pcap", path, "--port", "53", "--format", "json"];
    args.extend_from_slice(extra);
    let o = dnsdoc(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("a snapshot on stdout")
}

#[test]
fn a_crafted_capture_gives_exact_counts_and_latency() {
    let dir = TempDir::new("pcap-ok");
    let t0 = 1_700_000_000_000_000u64; // microseconds
    let frames = vec![
        (t0, udp_frame(true, &dns(1, false, 0, "a.example"))),
        (t0 + 1_500, udp_frame(false, &dns(1, true, 0, "a.example"))),
        (t0 + 2_000, udp_frame(true, &dns(2, false, 0, "b.example"))),
        (t0 + 2_250, udp_frame(false, &dns(2, true, 3, "b.example"))),
        // Never answered, and the file goes on for 6 s more: a timeout at the file's end.
        (t0 + 3_000, udp_frame(true, &dns(3, false, 0, "c.example"))),
        (
            t0 + 6_003_000,
            udp_frame(true, &dns(4, false, 0, "d.example")),
        ),
        (
            t0 + 6_004_000,
            udp_frame(false, &dns(4, true, 0, "d.example")),
        ),
    ];
    let path = write(&dir, "ok.pcap", &pcap(1, 65535, &frames));
    // 10.0.0.5 is the node: the client side is seen, the remote server is not local.
    let s = snapshot(&path, &["--local", "10.0.0.5"]);
    let t = &s["totals"];
    assert_eq!(t["queries"], 4, "{t}");
    assert_eq!(t["responses"], 3);
    assert_eq!(
        t["timeouts"], 1,
        "c.example unanswered for 6 s > the 5 s timeout"
    );
    assert_eq!(t["rcodes"]["NXDOMAIN"], 1);
    assert_eq!(
        s["latency"]["max_ms"], 1.5,
        "1500 us between query and answer"
    );
    assert_eq!(s["server_side"]["queries"], 0, "the server is not local");
    assert_eq!(
        s["processes"],
        serde_json::json!([]),
        "no processes are invented"
    );
    assert!((s["window"]["duration_s"].as_f64().unwrap() - 6.004).abs() < 1e-6);
    let source = s["capture"]["source"].as_str().unwrap();
    assert!(
        source.contains("7 packets") && source.contains("ETHERNET"),
        "{source}"
    );
    // No privileges needed: the same as an unprivileged user.
    if common::is_root() {
        use std::os::unix::fs::PermissionsExt;
        for p in [dir.path(), Path::new(&path)] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let o = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_dnsdoc"))
            .args([
                "doctor", "--pcap", &path, "--port", "53", "--local", "10.0.0.5",
            ])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(0..=2)),
            "doctor --pcap as nobody: {:?} {err}",
            o.status.code()
        );
    }
    // Without --local, the address at one end of the most packets is the node: the
    // server 10.0.0.53 (7 of 7) ties the client (7 of 7); either way every query counts
    // once on each side that is local.
    let s = snapshot(&path, &[]);
    let both =
        s["totals"]["queries"].as_u64().unwrap() + s["server_side"]["queries"].as_u64().unwrap();
    assert_eq!(both, 4, "{}", s["capture"]["source"]);
}

#[test]
fn every_supported_link_type_reads_the_same() {
    let dir = TempDir::new("pcap-links");
    let q = dns(7, false, 0, "x.test");
    let r = dns(7, true, 0, "x.test");
    let ip_frame = |to_server: bool, payload: &[u8]| udp_frame(to_server, payload)[14..].to_vec();
    type Framer = Box<dyn Fn(bool, &[u8]) -> Vec<u8>>;
    let cases: Vec<(u32, Framer)> = vec![
        (1, Box::new(udp_frame)),
        (101, Box::new(move |d, p| ip_frame(d, p))),
        (228, Box::new(move |d, p| ip_frame(d, p))),
        (
            113,
            Box::new(move |d, p| {
                let mut f = vec![0u8; 14];
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                f.extend_from_slice(&ip_frame(d, p));
                f
            }),
        ),
        (
            276,
            Box::new(move |d, p| {
                let mut f = 0x0800u16.to_be_bytes().to_vec();
                f.extend_from_slice(&[0; 18]);
                f.extend_from_slice(&ip_frame(d, p));
                f
            }),
        ),
        (
            0,
            Box::new(move |d, p| {
                let mut f = 2u32.to_le_bytes().to_vec();
                f.extend_from_slice(&ip_frame(d, p));
                f
            }),
        ),
    ];
    for (linktype, frame) in cases {
        let frames = vec![(1_000_000, frame(true, &q)), (1_000_400, frame(false, &r))];
        let path = write(
            &dir,
            &format!("lt{linktype}.pcap"),
            &pcap(linktype, 65535, &frames),
        );
        let s = snapshot(&path, &["--local", "10.0.0.5"]);
        assert_eq!(s["totals"]["responses"], 1, "link type {linktype}: {s}");
        assert_eq!(s["latency"]["max_ms"], 0.4, "link type {linktype}");
    }
}

/// Runs `dnsdoc doctor --pcap PATH` and returns (exit code, stderr).
fn refuse(path: &str) -> (Option<i32>, String) {
    let o = dnsdoc(&["doctor", "--pcap", path, "--port", "53"]);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bad_capture_files_get_one_line_and_exit_4() {
    let dir = TempDir::new("pcap-bad");
    let good = pcap(
        1,
        65535,
        &[(1, udp_frame(true, &dns(1, false, 0, "a.test")))],
    );
    let mut gz = vec![0x1f, 0x8b, 8, 0];
    gz.extend_from_slice(&good);
    let mut huge = good.clone();
    // A record header claiming 2 GB of data.
    huge.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    huge.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    huge.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    huge.extend_from_slice(&[0; 4096]);
    let not_dns = pcap(
        1,
        65535,
        &[(1, {
            let mut f = Vec::new();
            PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(1000, 2000)
                .write(&mut f, b"hello")
                .unwrap();
            f
        })],
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty file"),
        ("header-only", pcap(1, 65535, &[]), "no packets"),
        ("truncated", good[..good.len() - 10].to_vec(), "truncated"),
        (
            "magic",
            b"this is not a capture file at all".to_vec(),
            "not a pcap or pcapng file",
        ),
        ("gzip", gz, "gzip-compressed"),
        (
            "linktype",
            pcap(999, 65535, &[]),
            "unsupported link type 999",
        ),
        ("snaplen", pcap(1, 40, &[]), "snap length 40"),
        ("huge-record", huge, "record longer than"),
        ("no-dns", not_dns, "none to or from DNS port 53"),
    ];
    for (name, bytes, expect) in cases {
        let path = write(&dir, name, &bytes);
        let (code, err) = refuse(&path);
        assert_eq!(code, Some(4), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: one line: {err}");
        assert!(
            err.contains(expect),
            "{name}: expected {expect:?} in {err:?}"
        );
        assert!(err.contains(&path), "{name}: names the file: {err}");
    }
    let (code, err) = refuse(&dir.path().join("missing.pcap").display().to_string());
    assert_eq!(code, Some(4), "{err}");
}

#[test]
fn a_2_gb_file_is_read_in_bounded_memory() {
    // 2 GiB, sparse: a valid header and one DNS packet, then a record that claims
    // 2 GB of data over a hole of zeros. dnsdoc streams the file through a 1 MiB
    // buffer: under a 256 MiB address-space limit it must refuse the record with one
    // line, quickly, instead of trying to load it.
    let dir = TempDir::new("pcap-2g");
    let path = dir.path().join("big.pcap");
    let mut head = pcap(
        1,
        65535,
        &[(1, udp_frame(true, &dns(1, false, 0, "a.test")))],
    );
    head.extend_from_slice(&[0; 8]);
    head.extend_from_slice(&0x7fff_0000u32.to_le_bytes());
    head.extend_from_slice(&0x7fff_0000u32.to_le_bytes());
    std::fs::write(&path, &head).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(2 << 30).unwrap();
    drop(f);
    let cmd = format!(
        "ulimit -v 262144; exec timeout 60 {} doctor --pcap {} --port 53",
        env!("CARGO_BIN_EXE_dnsdoc"),
        path.display()
    );
    let started = std::time::Instant::now();
    let o = Command::new("sh").args(["-c", &cmd]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("record longer than"), "{err}");
    assert!(started.elapsed().as_secs() < 30, "streamed, not read whole");
}
