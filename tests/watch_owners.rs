//! Who owns a socket that no kernel hook named while dnsdoc watched: a silent server
//! started before dnsdoc (the hung-server case, where the name matters most). Its UDP
//! socket never calls recvmsg and its TCP listener never accepts, so only sock_diag and
//! /proc can name it. The same must hold on every kernel of the matrix.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// A server that binds UDP and TCP on 127.0.0.1:PORT and then never reads or accepts.
const SILENT_SERVER: &str = "\
import socket, sys, time
p = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', p))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(('127.0.0.1', p)); t.listen(16)
print('ready', flush=True)
time.sleep(120)
";

/// Starts the Python `script` with `port` in `cg` and returns it with the first line it
/// prints (once that line is out, it listens).
fn start_python(cg: &TestCgroup, script: &str, port: &str) -> (Guard, String) {
    let mut child = cg
        .command("python3", &["-c", script, port])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the script's first line");
    (Guard(child), line.trim().to_string())
}

/// Starts [`SILENT_SERVER`] in `cg` on `port` and waits until it listens.
fn start_silent_server(cg: &TestCgroup, port: &str) -> Guard {
    let (server, ready) = start_python(cg, SILENT_SERVER, port);
    assert_eq!(ready, "ready");
    server
}

#[test]
fn silent_server_started_before_dnsdoc_is_named() {
    if !require_bpf("silent_server_started_before_dnsdoc_is_named") {
        return;
    }
    let cg = TestCgroup::new("silent");
    let port = free_port();
    let port_s = port.to_string();
    let server = start_silent_server(&cg, &port_s);
    let server_pid = server.0.id();

    let watch = start_watch(&cg, &[port], &["--timeout", "1s"]);
    for tcp in [false, true] {
        let mut args = vec![
            "@127.0.0.1",
            "-p",
            &port_s,
            "hung.test",
            "+tries=1",
            "+timeout=1",
        ];
        if tcp {
            args.push("+tcp");
        }
        cg.run("dig", &args);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let s = watch.stop().snapshot;

    assert_eq!(s.totals.counts.queries, 2, "{:#?}", s.totals);
    assert_eq!(s.totals.counts.timeouts, 2);
    let ss = &s.server_side;
    assert_eq!(ss.counts.queries, 2, "{ss:#?}");
    for proto in ["udp", "tcp"] {
        let l = ss
            .listeners
            .iter()
            .find(|l| l.protocol == proto)
            .unwrap_or_else(|| panic!("no {proto} listener row: {ss:#?}"));
        assert_eq!(
            (l.pid, l.comm.as_str()),
            (server_pid, "python3"),
            "{proto} server socket named: {l:#?}"
        );
    }
    assert!(s.capture.owners_from_sock_diag >= 2, "{:#?}", s.capture);
}

/// A client that re-sends the same query (same socket, id and question), as glibc's
/// resolver does when an answer is late. (dig opens a new socket per try instead.)
const RESENDING_CLIENT: &str = "\
import socket, sys, time
q = bytes.fromhex('5eed01000001000000000000') + b'\\x05again\\x04test\\x00\\x00\\x01\\x00\\x01'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(2):
    s.sendto(q, ('127.0.0.1', int(sys.argv[1])))
    time.sleep(0.5)
";

/// Seen at both local ends, a re-send is one retransmission for the client totals and
/// one for the server side, never two in one view.
#[test]
fn a_resend_to_a_silent_local_server_is_one_retransmission_per_view() {
    if !require_bpf("a_resend_to_a_silent_local_server_is_one_retransmission_per_view") {
        return;
    }
    let cg = TestCgroup::new("resend");
    let port = free_port();
    let port_s = port.to_string();
    let _server = start_silent_server(&cg, &port_s);

    let watch = start_watch(&cg, &[port], &["--timeout", "1s"]);
    let (_, out) = cg.run("python3", &["-c", RESENDING_CLIENT, &port_s]);
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(Duration::from_millis(1500));
    let s = watch.stop().snapshot;

    assert_eq!(s.totals.counts.queries, 1, "{:#?}", s.totals);
    assert_eq!(s.totals.retransmissions, 1, "{:#?}", s.totals);
    assert_eq!(s.totals.counts.timeouts, 1);
    assert_eq!(s.server_side.counts.queries, 1, "{:#?}", s.server_side);
    assert_eq!(s.server_side.retransmissions, 1);
}

/// A pre-forked server: the parent binds the UDP socket and sleeps, its forked worker
/// answers every query on the inherited socket.
const FORKED_WORKER: &str = "\
import os, socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', int(sys.argv[1])))
pid = os.fork()
if pid:
    open('/proc/self/comm', 'w').write('binder')
    print(pid, flush=True)
    time.sleep(120)
    sys.exit(0)
open('/proc/self/comm', 'w').write('worker')
while True:
    q, peer = u.recvfrom(512)
    u.sendto(q[:2] + b'\\x81\\x80' + q[4:], peer)
";

/// A socket shared by processes is named by the one using it, not by the one that bound
/// it: the worker's answers (recvmsg/sendmsg hooks on kernels whose cgroup_skb programs
/// cannot read the current task, UDP egress itself on the others).
#[test]
fn a_socket_a_forked_worker_answers_on_is_named_by_the_worker() {
    if !require_bpf("a_socket_a_forked_worker_answers_on_is_named_by_the_worker") {
        return;
    }
    let cg = TestCgroup::new("forked");
    let port = free_port();
    let port_s = port.to_string();
    let watch = start_watch(&cg, &[port], &["--timeout", "1s"]);
    let (binder, line) = start_python(&cg, FORKED_WORKER, &port_s);
    let worker: u32 = line.parse().expect("worker pid");
    for _ in 0..4 {
        let (_, out) = cg.run(
            "dig",
            &[
                "@127.0.0.1",
                "-p",
                &port_s,
                "forked.test",
                "+tries=1",
                "+timeout=1",
            ],
        );
        assert!(out.status.success(), "{out:?}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let s = watch.stop().snapshot;
    // SAFETY: kill(2) with a pid we forked (the worker), plain FFI.
    unsafe { libc::kill(worker as i32, libc::SIGKILL) };
    drop(binder);

    assert_eq!(s.totals.counts.queries, 4, "{:#?}", s.totals);
    assert_eq!(s.server_side.counts.queries, 4, "{:#?}", s.server_side);
    let l = s
        .server_side
        .listeners
        .iter()
        .find(|l| l.protocol == "udp")
        .unwrap_or_else(|| panic!("no udp listener row: {:#?}", s.server_side));
    assert_eq!((l.pid, l.comm.as_str()), (worker, "worker"), "{l:#?}");
}
