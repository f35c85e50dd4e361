//! Captures the fuzz seed corpora (tests/fuzz-corpus/) from real DNS traffic.
//!
//! Runs dnsmasq and dig inside a cgroup of its own, attaches dnsdoc's own BPF capture to
//! that cgroup and port, and writes what the ring buffer delivered:
//!
//! - `event/`: single ring-buffer records (a few chosen ones);
//! - `analyzer/`: whole sessions, every record of one scenario in arrival order, each
//!   prefixed by its length as a little-endian u16;
//! - `dns/`: DNS messages as they left a socket (UDP payloads, TCP messages without
//!   their length prefix);
//! - `tcp/`: the byte stream of one direction of a DNS-over-TCP connection.
//!
//! Only loopback is ever queried: dnsmasq listens on 127.0.0.1 and ::1 on a free port,
//! has no upstream servers (`--no-resolv`), and every dig names it with `@`.
//!
//! Usage (root): `cargo run --manifest-path fuzz/capture-seeds/Cargo.toml -- tests/fuzz-corpus`

use std::collections::BTreeMap;
use std::fs;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dnsdoc::analysis::tcp::StreamReassembler;
use dnsdoc::capture::event::encode;
use dnsdoc::capture::{Capture, CaptureConfig, Direction, ObjectStorage, PacketEvent, Protocol};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// One dig invocation and what to keep from it.
struct Scenario {
    name: &'static str,
    /// dig arguments after `@server -p port +tries=1 +time=2`.
    args: &'static [&'static str],
    /// Query ::1 instead of 127.0.0.1.
    v6: bool,
    /// Keep the whole session as an analyzer seed.
    session: bool,
    /// Keep the first record of each distinct kind (direction, protocol, empty, cut) as
    /// an event seed.
    events: bool,
}

const fn s(name: &'static str, args: &'static [&'static str]) -> Scenario {
    Scenario {
        name,
        args,
        v6: false,
        session: false,
        events: false,
    }
}

const fn v6(mut sc: Scenario) -> Scenario {
    sc.v6 = true;
    sc
}

const fn session(mut sc: Scenario) -> Scenario {
    sc.session = true;
    sc
}

const fn events(mut sc: Scenario) -> Scenario {
    sc.events = true;
    sc
}

const LONG_NAME: &str = concat!(
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.",
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.",
    "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.",
    "dddddddddddddddddddddddddddddddddddddddddddddddddd.good.test"
);

fn scenarios() -> Vec<Scenario> {
    vec![
        session(events(s("udp_a", &["good.test", "A"]))),
        v6(events(s("udp6_aaaa", &["good.test", "AAAA"]))),
        s("udp_txt", &["txt.test", "TXT"]),
        session(s("udp_nxdomain", &["missing.test", "A"])),
        s("udp_refused", &["example.com", "A"]),
        s("udp_noedns", &["+noedns", "good.test", "A"]),
        s("udp_dnssec", &["+dnssec", "good.test", "A"]),
        s("udp_cname", &["alias.test", "A"]),
        s("udp_mx", &["mail.test", "MX"]),
        s("udp_srv", &["_dns._udp.test", "SRV"]),
        s("udp_ptr", &["-x", "10.0.0.2"]),
        s("udp_any", &["good.test", "ANY"]),
        s("udp_mixed_case", &["MiXeD.GoOd.TeSt", "A"]),
        s("udp_escaped", &["we\\.ird\\032na\\\\me.test", "A"]),
        s("udp_long_name", &[LONG_NAME, "A"]),
        s("udp_opcode_status", &["+opcode=2", "good.test", "A"]),
        s("udp_header_only", &["+header-only", "good.test", "A"]),
        s("udp_truncated", &["+noedns", "+ignore", "big.test", "TXT"]),
        session(events(s(
            "udp_big_cut",
            &["+bufsize=4096", "big.test", "TXT"],
        ))),
        session(events(s("tc_then_tcp", &["+noedns", "big.test", "TXT"]))),
        session(s("tcp_a", &["+tcp", "good.test", "A"])),
        session(s(
            "tcp_keepopen",
            &[
                "+tcp",
                "+keepopen",
                "good.test",
                "A",
                "txt.test",
                "TXT",
                "missing.test",
                "A",
                "alias.test",
                "A",
            ],
        )),
        session(v6(s(
            "tcp6_cookie",
            &["+tcp", "+cookie", "good.test", "AAAA"],
        ))),
    ]
}

fn main() -> Res<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("tests/fuzz-corpus".into()),
    );
    let root = dnsdoc::host::cgroup2_mount()?;
    let cgroup = root.join(format!("dnsdoc-seeds-{}", std::process::id()));
    fs::create_dir(&cgroup)?;
    let result = capture_all(&cgroup, &out);
    let _ = fs::write(cgroup.join("cgroup.kill"), "1");
    for _ in 0..50 {
        if fs::remove_dir(&cgroup).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    result
}

fn capture_all(cgroup: &Path, out: &Path) -> Res<()> {
    let port = free_port()?;
    let mut storage = ObjectStorage::default();
    let capture = Capture::start(
        &CaptureConfig {
            cgroup: cgroup.to_path_buf(),
            ports: vec![port],
            ring_buffer_bytes: 1 << 22,
        },
        &mut storage,
    )?;
    let p = format!("--port={port}");
    let big: Vec<String> = (0..6u8)
        .map(|i| {
            format!(
                "--txt-record=big.test,{}",
                char::from(b'a' + i).to_string().repeat(250)
            )
        })
        .collect();
    let mut dnsmasq_args: Vec<&str> = vec![
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        "--listen-address=127.0.0.1,::1",
        "--local=/test/",
        "--address=/good.test/10.0.0.1",
        "--address=/good.test/fd00::1",
        "--txt-record=txt.test,v=spf1 -all,hello world",
        "--cname=alias.test,host.test",
        "--host-record=host.test,10.0.0.2,fd00::2",
        "--mx-host=mail.test,host.test,10",
        "--srv-host=_dns._udp.test,host.test,53,0,0",
        "--ptr-record=2.0.0.10.in-addr.arpa,host.test",
        // Lets a +bufsize=4096 UDP answer exceed the 1024 bytes capture keeps.
        "--edns-packet-max=4096",
        "--pid-file=",
        "--user=root",
        "--log-facility=/dev/null",
        &p,
    ];
    dnsmasq_args.extend(big.iter().map(String::as_str));
    let mut dnsmasq = in_cgroup(cgroup, "dnsmasq", &dnsmasq_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = dnsmasq.kill();
            return Err("dnsmasq did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The readiness probe's FIN reaches dnsmasq's accepted socket: not a seed.
    drain(&capture)?;

    let mut captured = Vec::new();
    for sc in scenarios() {
        let server = if sc.v6 { "@::1" } else { "@127.0.0.1" };
        let port_s = port.to_string();
        let mut args = vec![server, "-p", &port_s, "+tries=1", "+time=2"];
        args.extend_from_slice(sc.args);
        let status = in_cgroup(cgroup, "dig", &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        let evs = drain(&capture)?;
        eprintln!(
            "{:<20} dig exit {:?}, {} records",
            sc.name,
            status.code(),
            evs.len()
        );
        captured.push((sc, evs));
    }
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
    write_corpora(out, &captured)
}

/// A command that runs inside `cgroup` (the shell moves itself there, then execs).
fn in_cgroup(cgroup: &Path, program: &str, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("echo $$ > \"$0\" && exec \"$@\"")
        .arg(cgroup.join("cgroup.procs"))
        .arg(program)
        .args(args);
    c
}

/// Polls until the ring buffer has been quiet for 300 ms.
fn drain(capture: &Capture<'_>) -> Res<Vec<PacketEvent>> {
    let mut evs = Vec::new();
    let mut batch = dnsdoc::capture::EventBatch::default();
    let mut quiet = 0;
    while quiet < 3 {
        capture.poll(Duration::from_millis(100), &mut batch)?;
        quiet = if batch.is_empty() { quiet + 1 } else { 0 };
        evs.extend(batch.events().iter().cloned());
        batch.clear();
    }
    Ok(evs)
}

fn free_port() -> Res<u16> {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("::1", port)).is_ok()
            && TcpListener::bind(("::1", port)).is_ok()
        {
            return Ok(port);
        }
    }
    Err("no free port".into())
}

fn write_corpora(out: &Path, captured: &[(Scenario, Vec<PacketEvent>)]) -> Res<()> {
    for dir in ["dns", "tcp", "event", "analyzer"] {
        let d = out.join(dir);
        if d.exists() {
            for f in fs::read_dir(&d)? {
                let f = f?.path();
                if f.extension().is_some_and(|e| e == "bin") {
                    fs::remove_file(f)?;
                }
            }
        }
        fs::create_dir_all(d)?;
    }
    for (sc, evs) in captured {
        if sc.session {
            let mut b = Vec::new();
            for ev in evs {
                let rec = encode(ev);
                b.extend_from_slice(&u16::try_from(rec.len())?.to_le_bytes());
                b.extend_from_slice(&rec);
            }
            fs::write(out.join("analyzer").join(format!("{}.bin", sc.name)), b)?;
        }
        if sc.events {
            let mut kinds = Vec::new();
            for ev in evs {
                let kind = (
                    ev.direction,
                    ev.protocol,
                    ev.payload.is_empty(),
                    ev.payload.len() < ev.payload_len as usize,
                );
                if kinds.contains(&kind) {
                    continue;
                }
                let tag = format!(
                    "{}-{}{}",
                    match ev.direction {
                        Direction::Egress => "egress",
                        Direction::Ingress => "ingress",
                    },
                    kinds.len(),
                    if kind.3 {
                        "-cut"
                    } else if kind.2 {
                        "-fin"
                    } else {
                        ""
                    }
                );
                kinds.push(kind);
                fs::write(
                    out.join("event").join(format!("{}-{tag}.bin", sc.name)),
                    encode(ev),
                )?;
            }
        }
        // DNS messages as they left a socket: egress only, so each message once.
        let mut n = 0;
        let mut streams: BTreeMap<u64, (StreamReassembler, Vec<u8>)> = BTreeMap::new();
        for ev in evs.iter().filter(|e| e.direction == Direction::Egress) {
            match ev.protocol {
                Protocol::Udp => write_msg(out, sc.name, &mut n, &ev.payload)?,
                Protocol::Tcp => {
                    let (r, stream) = streams.entry(ev.cookie).or_default();
                    let mut msgs = Vec::new();
                    r.push(ev.tcp_seq, ev.payload_len, &ev.payload, &mut msgs);
                    stream.extend_from_slice(&ev.payload);
                    for m in msgs {
                        write_msg(out, sc.name, &mut n, &m.bytes)?;
                    }
                }
            }
        }
        for (i, (_, (_, stream))) in streams.iter().enumerate() {
            if !stream.is_empty() {
                fs::write(out.join("tcp").join(format!("{}-{i}.bin", sc.name)), stream)?;
            }
        }
    }
    Ok(())
}

/// Writes one DNS message, named after its scenario and QR bit.
fn write_msg(out: &Path, scenario: &str, n: &mut usize, bytes: &[u8]) -> Res<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let role = match bytes.get(2) {
        Some(flags) if flags & 0x80 != 0 => "response",
        _ => "query",
    };
    fs::write(
        out.join("dns").join(format!("{scenario}-{n}-{role}.bin")),
        bytes,
    )?;
    *n += 1;
    Ok(())
}
