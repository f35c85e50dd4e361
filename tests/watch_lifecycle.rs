//! How `dnsdoc watch` starts, scopes, stops and cleans up, on the real kernel.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use dnsdoc::snapshot::Snapshot;

/// Hand-built DNS query for `name` (type A, class IN).
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        b.push(l.len() as u8);
        b.extend_from_slice(l.as_bytes());
    }
    b.extend_from_slice(&[0, 0, 1, 0, 1]);
    b
}

fn dig(cg: &TestCgroup, port: u16, name: &str) -> u32 {
    let (pid, out) = cg.run(
        "dig",
        &["@127.0.0.1", "-p", &port.to_string(), name, "+tries=1"],
    );
    assert!(dig_status(&out).is_some(), "dig {name} got no answer");
    pid
}

fn wait_detached(cg: &TestCgroup) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = cg.attached_programs();
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_ends_the_window_with_a_snapshot_and_detaches_every_probe() {
    if !require_bpf("sigterm_ends_the_window_with_a_snapshot_and_detaches_every_probe") {
        return;
    }
    let cg = TestCgroup::new("term");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    assert_eq!(cg.attached_programs(), 0);
    let watch = start_watch(&cg, &[port], &[]);
    assert_eq!(
        cg.attached_programs() as usize,
        expected_programs(),
        "one program on every hook"
    );
    dig(&cg, port, "a.good.test");
    watch.signal("-TERM");
    let (code, stdout, file) = watch.wait();
    assert_eq!(code, Some(0));
    let s: Snapshot = serde_json::from_str(&stdout).expect("snapshot on stdout");
    assert_eq!(s.totals.counts.queries, 1);
    let file: Snapshot = serde_json::from_str(&file.expect("-o written")).unwrap();
    assert_eq!(file, s);
    assert_eq!(cg.attached_programs(), 0, "probes detached on exit");
}

#[test]
fn kill_9_leaves_nothing_attached_and_the_next_run_works() {
    if !require_bpf("kill_9_leaves_nothing_attached_and_the_next_run_works") {
        return;
    }
    let cg = TestCgroup::new("kill9");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let watch = start_watch(&cg, &[port], &[]);
    assert_eq!(cg.attached_programs() as usize, expected_programs());
    watch.signal("-KILL");
    let (code, _, file) = watch.wait();
    assert_eq!(code, None, "killed by a signal");
    assert!(file.is_none(), "no half-written snapshot after kill -9");
    assert_eq!(wait_detached(&cg), 0, "BPF links die with the process");
    let again = start_watch(&cg, &[port], &[]);
    dig(&cg, port, "b.good.test");
    assert_eq!(again.stop().snapshot.totals.counts.queries, 1);
}

#[test]
fn two_instances_with_different_scopes_count_only_their_own() {
    if !require_bpf("two_instances_with_different_scopes_count_only_their_own") {
        return;
    }
    let (cg_a, cg_b) = (TestCgroup::new("scope-a"), TestCgroup::new("scope-b"));
    let (port_a, port_b) = (free_port(), free_port());
    let _da = start_dnsmasq(&cg_a, port_a, &[]);
    let _db = start_dnsmasq(&cg_b, port_b, &[]);
    // Both watch both ports: only the cgroup scopes them apart.
    let wa = start_watch(&cg_a, &[port_a, port_b], &[]);
    let wb = start_watch(&cg_b, &[port_a, port_b], &[]);
    for i in 0..3 {
        dig(&cg_a, port_a, &format!("a{i}.good.test"));
    }
    for i in 0..5 {
        dig(&cg_b, port_b, &format!("b{i}.good.test"));
    }
    let (sa, sb) = (wa.stop().snapshot, wb.stop().snapshot);
    assert_eq!(sa.totals.counts.queries, 3);
    assert_eq!(sb.totals.counts.queries, 5);
    assert_eq!(sa.server_side.counts.queries, 3);
    assert_eq!(sb.server_side.counts.queries, 5);
    assert!(sa.names.by_volume.iter().all(|n| n.name.starts_with('a')));
}

#[test]
fn pid_filter_keeps_only_that_process() {
    if !require_bpf("pid_filter_keeps_only_that_process") {
        return;
    }
    let cg = TestCgroup::new("pid");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    // A client whose pid we know before it queries: sh waits until the watch is
    // attached (a flag file; at most 30 s), then execs dig. A fixed sleep raced the
    // attach on a slow kernel under qemu.
    let dir = TempDir::new("pid");
    let flag = dir.path().join("attached");
    let script = format!(
        "i=0; while [ ! -e '{}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
         exec dig @127.0.0.1 -p {port} wanted.good.test +tries=1",
        flag.display()
    );
    let client = cg
        .command("sh", &["-c", &script])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = client.id();
    let client = Guard(client);
    let watch = start_watch(&cg, &[port], &["--pid", &pid.to_string()]);
    std::fs::write(&flag, b"").unwrap();
    dig(&cg, port, "other.good.test");
    let mut child = client;
    assert!(child.0.wait().unwrap().success());
    let s = watch.stop().snapshot;
    assert_eq!(s.capture.pids, vec![pid]);
    assert_eq!(s.totals.counts.queries, 1, "{:#?}", s.names.by_volume);
    assert_eq!(s.processes.len(), 1);
    assert_eq!(s.processes[0].pid, pid);
    assert_eq!(s.names.by_volume[0].name, "wanted.good.test.");
    // The listener is not the chosen pid, but --pid filters clients only: the local
    // server's own view of both queries stays (issue: "0 queries to local servers").
    assert_eq!(s.server_side.counts.queries, 2, "{:#?}", s.server_side);
    assert_eq!(s.server_side.listeners.len(), 1);
    assert_eq!(s.server_side.listeners[0].comm, "dnsmasq");
}

#[test]
fn ipv6_extension_headers_are_walked() {
    if !require_bpf("ipv6_extension_headers_are_walked") {
        return;
    }
    let cg = TestCgroup::new("ext6");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let watch = start_watch(&cg, &[port], &[]);
    // The test process (outside the cgroup) sends a query carrying an IPv6 destination
    // options header to dnsmasq (inside): its ingress must skip the header to find UDP.
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    // Next header (filled by the kernel), length 0 (8 bytes), PadN option of 4 bytes.
    let dstopts: [u8; 8] = [0, 0, 1, 4, 0, 0, 0, 0];
    {
        use std::os::fd::AsRawFd;
        // SAFETY: valid socket fd; the option buffer outlives the call and its length
        // is passed exactly.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_DSTOPTS,
                dstopts.as_ptr().cast(),
                dstopts.len() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "IPV6_DSTOPTS: {}", std::io::Error::last_os_error());
    }
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&query(0x1234, "ext.good.test"), ("::1", port))
        .unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = sock.recv_from(&mut buf).expect("dnsmasq answers");
    assert!(n > 12 && buf[0..2] == [0x12, 0x34]);
    let s = watch.stop().snapshot;
    assert_eq!(s.capture.parse_errors, 0);
    assert_eq!(
        s.server_side.counts.queries, 1,
        "query behind the extension header seen"
    );
    assert_eq!(s.server_side.counts.responses, 1);
    assert_eq!(s.server_side.listeners[0].address, format!("[::1]:{port}"));
}

#[test]
fn garbage_on_the_dns_port_is_a_parse_error() {
    if !require_bpf("garbage_on_the_dns_port_is_a_parse_error") {
        return;
    }
    let cg = TestCgroup::new("garbage");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let watch = start_watch(&cg, &[port], &[]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"\x01\x02\x03\x04\x05", ("127.0.0.1", port))
        .unwrap();
    // A question whose name is a compression pointer to itself.
    let mut looped = query(7, "x.test");
    looped[12] = 0xc0;
    looped[13] = 12;
    sock.send_to(&looped, ("127.0.0.1", port)).unwrap();
    dig(&cg, port, "still.good.test");
    let s = watch.stop().snapshot;
    assert!(s.capture.parse_errors >= 2, "{:?}", s.capture);
    assert_eq!(s.totals.counts.queries, 1, "the real query still counts");
    assert_eq!(s.totals.counts.responses, 1);
}
