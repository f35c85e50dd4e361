//! The conntrack-race fingerprint with real glibc: getent (getaddrinfo) in a pod's
//! cgroup and a private mount namespace whose resolv.conf points at a loopback
//! responder that answers the A query of each parallel A/AAAA pair and drops its AAAA
//! sibling once, as a lost conntrack insert does. glibc resends after `options timeout:1`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::kube::*;
use common::*;

/// A DNS responder on ADDR:53 that drops the first AAAA query for each name (glibc
/// sends it together with the A query: the sibling of a parallel pair, as a lost
/// conntrack insert drops it); it answers everything else (A 10.0.0.7, AAAA with no
/// records). Deterministic on purpose: a timing window here (is this query within
/// 50 ms of its sibling?) failed on a loaded emulated CPU, where the responder itself
/// took longer than that between the two.
const RACE_RESPONDER: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print('ready', flush=True)
dropped = set()
while True:
    data, peer = s.recvfrom(4096)
    i, labels = 12, []
    while i < len(data) and data[i] != 0:
        n = data[i]; labels.append(data[i + 1:i + 1 + n]); i += 1 + n
    if len(data) < i + 5:
        continue
    qtype = struct.unpack('>H', data[i + 1:i + 3])[0]
    name = b'.'.join(labels)
    if qtype == 28 and name not in dropped:
        dropped.add(name)
        continue
    an = b''
    if qtype == 1:
        an = b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + bytes([10, 0, 0, 7])
    s.sendto(data[:2] + struct.pack('>HHHHH', 0x8180, 1, 1 if an else 0, 0, 0) + data[12:i + 5] + an, peer)
"#;

#[test]
fn a_dropped_parallel_sibling_is_the_conntrack_race() {
    if !require_bpf("a_dropped_parallel_sibling_is_the_conntrack_race") {
        return;
    }
    let node = node("kube-race", 4);
    let addr = format!(
        "127.{}.{}.{}",
        104,
        (std::process::id() >> 8) & 0xff,
        (std::process::id() & 0xff).max(2)
    );
    let mut child = command_in_cgroup(&node.cg.path, "python3", &["-c", RACE_RESPONDER, &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let _responder = Guard(child);
    let conf = node.root.write(
        "resolv.conf",
        &format!("nameserver {addr}\noptions timeout:1 attempts:2\n"),
    );
    let watch = watch_node(&node, 53, &[]);
    // Three lookups of fully qualified names (no search list): each loses its AAAA.
    let script = "for n in r1 r2 r3; do getent ahosts $n.race.test. > /dev/null || exit 1; done";
    let inner = format!("mount --bind {conf} /etc/resolv.conf && {script}");
    let out = command_in_cgroup(
        &node.pods.web,
        "unshare",
        &["-m", "--propagation", "private", "sh", "-c", &inner],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = watch.stop().snapshot;

    assert_eq!(s.lookups.stats.lookups, 3, "{:#?}", s.lookups);
    assert_eq!(
        s.lookups.stats.race_suspects, 3,
        "{:#?}\n{:#?}",
        s.lookups, s.qtypes
    );
    assert!(
        s.lookups.stats.time_lost_max_ms < 100.0,
        "one name per lookup: nothing lost to search"
    );
    let pod = s
        .pods
        .iter()
        .find(|p| p.uid == node.uids[0])
        .expect("web pod");
    assert_eq!(pod.lookups.race_suspects, 3);
    let getents: Vec<_> = s.processes.iter().filter(|p| p.comm == "getent").collect();
    assert_eq!(getents.len(), 3, "{:#?}", s.processes);
    assert!(getents.iter().all(|p| p.lookups.race_suspects == 1));
    // The resent AAAA was answered a resolver timeout after the first send.
    let aaaa = s
        .qtypes
        .iter()
        .find(|q| q.qtype == "AAAA")
        .expect("AAAA row");
    assert!(aaaa.latency.max_ms.unwrap() >= 900.0, "{aaaa:#?}");

    let f = doctor_finding(&s, "dns_conntrack_race");
    let expected = builtin_rule("dns_conntrack_race").classify(3.0).unwrap().0;
    assert_eq!(f["severity"], serde_json::to_value(expected).unwrap());
    let evidence = f["evidence"].to_string();
    assert!(
        evidence.contains(&format!("shop/web-{}", node.tag)),
        "{evidence}"
    );
    let fix = f["remediation"].to_string();
    for hint in ["single-request-reopen", "NodeLocal DNSCache", "musl"] {
        assert!(fix.contains(hint), "{fix}");
    }
}
