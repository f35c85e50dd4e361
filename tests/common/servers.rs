//! The DNS servers the live tests talk to: dnsmasq and unbound on loopback inside a
//! test cgroup, on a port free for both UDP and TCP, killed when their guard drops.

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{command_in_cgroup, Netns, TempDir, TestCgroup};

/// A port free for both UDP and TCP on 127.0.0.1 and ::1 right now.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("::1", port)).is_ok()
            && TcpListener::bind(("::1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port found");
}

/// Kills the child on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The zone start_dnsmasq answers by default: `*.good.test` -> A 10.0.0.1 / AAAA
/// fd00::1, other `*.test` -> NXDOMAIN.
pub const TEST_ZONE: &[&str] = &[
    "--local=/test/",
    "--address=/good.test/10.0.0.1",
    "--address=/good.test/fd00::1",
];

/// dnsmasq on 127.0.0.1 and ::1 with the fixed [`TEST_ZONE`], anything else -> REFUSED
/// (no upstream servers). `cg`: a [`TestCgroup`] or any cgroup directory. `extra`: more
/// options. For another zone, addresses or a network namespace: [`start_dnsmasq_with`].
pub fn start_dnsmasq(cg: &impl AsRef<Path>, port: u16, extra: &[&str]) -> Guard {
    start_dnsmasq_with(
        cg,
        port,
        &Dnsmasq {
            extra,
            ..Dnsmasq::default()
        },
    )
}

/// How start_dnsmasq_with runs dnsmasq; `Dnsmasq::default()` is what start_dnsmasq does.
pub struct Dnsmasq<'a> {
    /// The options that say what it answers (default [`TEST_ZONE`]).
    pub zone: &'a [&'a str],
    /// --listen-address (default "127.0.0.1,::1").
    pub listen: &'a str,
    /// Run inside this network namespace (`ip netns exec`); readiness is checked there.
    pub netns: Option<&'a Netns>,
    /// More options, after all the others.
    pub extra: &'a [&'a str],
}

impl Default for Dnsmasq<'_> {
    fn default() -> Self {
        Dnsmasq {
            zone: TEST_ZONE,
            listen: "127.0.0.1,::1",
            netns: None,
            extra: &[],
        }
    }
}

/// The one dnsmasq launcher: dnsmasq in the foreground inside the cgroup `cg`, on
/// `port`, no upstream servers, no hosts file, logging nowhere; returns once it listens
/// on TCP `port` (127.0.0.1, or in the namespace). Killed when the guard drops.
pub fn start_dnsmasq_with(cg: &impl AsRef<Path>, port: u16, opts: &Dnsmasq) -> Guard {
    let port_arg = format!("--port={port}");
    let listen_arg = format!("--listen-address={}", opts.listen);
    let mut args = vec![
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        &listen_arg,
    ];
    args.extend_from_slice(opts.zone);
    args.extend_from_slice(&[
        "--pid-file=",
        "--user=root",
        "--log-facility=/dev/null",
        &port_arg,
    ]);
    args.extend_from_slice(opts.extra);
    let cg = cg.as_ref();
    let mut cmd = match opts.netns {
        None => command_in_cgroup(cg, "dnsmasq", &args),
        Some(ns) => command_in_cgroup(cg, "ip", &ns.wrap("dnsmasq", &args)),
    };
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dnsmasq (apt-get install dnsmasq-base)");
    let guard = Guard(child);
    match opts.netns {
        None => wait_for_tcp(("127.0.0.1", port)),
        Some(ns) => ns.wait_for_tcp_listener(port),
    }
    guard
}

/// unbound on 127.0.0.1:PORT answering the same names as start_dnsmasq from local
/// data: `*.good.test` -> A 10.0.0.1 / AAAA fd00::1, other `*.test` -> NXDOMAIN. No
/// upstream is ever asked (all names are local; the iterator alone, no validator).
/// `extra`: more `server:` lines (local-data, size limits, ...).
pub fn start_unbound(cg: &TestCgroup, port: u16, dir: &TempDir, extra: &[&str]) -> Guard {
    let d = dir.path().display();
    let extra: String = extra.iter().map(|l| format!("    {l}\n")).collect();
    let conf = format!(
        r#"server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    num-threads: 1
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{d}"
    pidfile: ""
    use-syslog: no
    logfile: "{d}/unbound.log"
    verbosity: 0
    module-config: "iterator"
    local-zone: "test." static
    local-zone: "good.test." redirect
    local-data: "good.test. 300 IN A 10.0.0.1"
    local-data: "good.test. 300 IN AAAA fd00::1"
{extra}
remote-control:
    control-enable: no
"#
    );
    let path = dir.path().join("unbound.conf");
    std::fs::write(&path, conf).unwrap();
    let log = std::fs::File::create(dir.path().join("unbound.stderr")).unwrap();
    let child = cg
        .command("unbound", &["-d", "-c", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn unbound (apt-get install unbound)");
    let guard = Guard(child);
    std::thread::sleep(Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let err = std::fs::read_to_string(dir.path().join("unbound.stderr"));
            let log = std::fs::read_to_string(dir.path().join("unbound.log"));
            panic!("unbound did not listen on 127.0.0.1:{port}: {err:?} {log:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    guard
}

/// Waits until something accepts TCP connections (no DNS is sent). The deadline only
/// bounds a failure: Prometheus, starting a fresh TSDB under the kernel matrix's emulated
/// CPU, once took longer than the 10 s this had (serve_live on 5.10).
pub fn wait_for_tcp(addr: (&str, u16)) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on {}:{}", addr.0, addr.1);
}
