//! Malformed DNS on the wire, through the real kernel to a real dnsmasq: every bad
//! message is counted as a parse error, nothing crashes, and capture goes on.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::Duration;

use common::*;

/// DNS header with the given id and QDCOUNT, then `rest`.
fn header(id: u16, qdcount: u16, rest: &[u8]) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 0]);
    b.extend_from_slice(&qdcount.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(rest);
    b
}

fn name_of_labels(labels: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    for l in labels {
        b.push(l.len() as u8);
        b.extend_from_slice(l);
    }
    b.extend_from_slice(&[0, 0, 1, 0, 1]);
    b
}

/// The malformed UDP payloads, each with what is wrong with it.
fn bad_datagrams() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("truncated header", vec![1, 2, 3, 4, 5]),
        ("count that lies: QDCOUNT 1, no question", header(1, 1, &[])),
        (
            "compression pointer loop",
            header(2, 1, &[0xc0, 12, 0, 1, 0, 1]),
        ),
        (
            "label over 63 bytes",
            header(3, 1, &name_of_labels(&[vec![b'a'; 64]])),
        ),
        (
            "name over 255 bytes",
            header(4, 1, &name_of_labels(&vec![vec![b'b'; 63]; 5])),
        ),
        ("pointer past the end", header(5, 7, &[0xff; 40])),
        ("question cut mid-label", header(6, 1, &[10, b'a', b'b'])),
    ]
}

#[test]
fn malformed_messages_are_parse_errors_and_capture_goes_on() {
    if !require_bpf("malformed_messages_are_parse_errors_and_capture_goes_on") {
        return;
    }
    let cg = TestCgroup::new("malformed");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let watch = start_watch(&cg, &[port], &[]);

    // UDP from this test process (outside the cgroup) to dnsmasq (inside): dnsmasq's
    // ingress sees each one.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagrams = bad_datagrams();
    for (_, d) in &datagrams {
        udp.send_to(d, ("127.0.0.1", port)).unwrap();
    }
    // TCP: length prefixes that lie.
    let tcp_cases: Vec<(&str, Vec<u8>)> = vec![
        ("prefix says 300, stream ends after 24", {
            let mut b = 300u16.to_be_bytes().to_vec();
            b.extend_from_slice(&header(7, 1, &name_of_labels(&[b"abc".to_vec()])));
            b
        }),
        ("prefix says 0", vec![0, 0]),
        (
            "prefix says 5, five bytes of garbage",
            vec![0, 5, 9, 9, 9, 9, 9],
        ),
    ];
    for (_, bytes) in &tcp_cases {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    // A real query after all that: capture must not be stalled or confused.
    let (_, out) = cg.run(
        "dig",
        &[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "after.good.test",
            "+tries=1",
        ],
    );
    assert_eq!(dig_status(&out).as_deref(), Some("NOERROR"));
    std::thread::sleep(Duration::from_millis(200));
    let s = watch.stop().snapshot;

    let bad = (datagrams.len() + tcp_cases.len()) as u64;
    eprintln!("sent {bad} malformed messages; capture: {:?}", s.capture);
    let c = &s.capture;
    // dnsmasq may echo a bad question in a FORMERR reply: that is a second bad message.
    assert!(
        c.parse_errors >= bad && c.parse_errors <= 2 * bad,
        "{} malformed messages sent, {} parse errors: {c:?}",
        bad,
        c.parse_errors
    );
    assert_eq!(c.dropped.total, 0);
    assert_eq!(
        s.totals.counts.queries, 1,
        "only dig's query is a client query"
    );
    assert_eq!(s.totals.counts.responses, 1);
    assert_eq!(
        s.server_side.counts.queries, 1,
        "malformed input is never a query"
    );
    assert_eq!(s.names.by_volume[0].name, "after.good.test.");
}
