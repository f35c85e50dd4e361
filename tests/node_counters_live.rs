//! The node's UDP drop counters over a window: a real listener with the smallest
//! receive buffer that never reads, a real load generator (dnsperf) overflowing it,
//! and the rule that ties the drops to the DNS timeouts they cause.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// A UDP listener on 127.0.0.1:PORT with the smallest receive buffer the kernel allows,
/// which never reads: every datagram beyond the first few is dropped (RcvbufErrors).
const FULL_LISTENER: &str = "\
import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
u.bind(('127.0.0.1', int(sys.argv[1])))
print('ready', flush=True)
time.sleep(60)
";

#[test]
fn a_full_receive_buffer_shows_as_node_udp_drops_with_the_timeouts() {
    if !require_bpf("a_full_receive_buffer_shows_as_node_udp_drops_with_the_timeouts") {
        return;
    }
    let cg = TestCgroup::new("udp-drops");
    let port = free_port();
    let port_s = port.to_string();
    let mut child = cg
        .command("python3", &["-c", FULL_LISTENER, &port_s])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let _listener = Guard(child);

    let dir = TempDir::new("udp-drops");
    let names: String = (0..300).map(|i| format!("n{i}.drop.test A\n")).collect();
    let data = dir.write("queries.txt", &names);
    let watch = start_watch(&cg, &[port], &["--timeout", "500ms"]);
    let (_, out) = cg.run(
        "dnsperf",
        &[
            "-s",
            "127.0.0.1",
            "-p",
            &port_s,
            "-d",
            &data,
            "-n",
            "1",
            "-c",
            "1",
            "-q",
            "300",
            "-t",
            "1",
        ],
    );
    assert!(
        out.status.success(),
        "dnsperf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(700));
    let s = watch.stop().snapshot;

    let c = s.node_counters.expect("node counters on a live window");
    assert_eq!(s.totals.counts.queries, 300, "{:#?}", s.totals);
    assert_eq!(s.totals.counts.timeouts, 300);
    // At most a few datagrams fit the smallest buffer (2304 bytes of truesize): the
    // rest must have been counted as dropped. Other sockets of the node may add more.
    assert!(
        c.udp_rcvbuf_errors + 64 >= s.totals.counts.timeouts,
        "{c:?} vs {} timeouts",
        s.totals.counts.timeouts
    );
    assert!(c.udp_in_errors >= c.udp_rcvbuf_errors, "{c:?}");

    let f = doctor_finding(&s, "dns_node_udp_drops");
    let rule = builtin_rule("dns_node_udp_drops");
    let expected = rule.classify(c.udp_rcvbuf_errors as f64).unwrap().0;
    assert_eq!(f["severity"], serde_json::to_value(expected).unwrap());
}
