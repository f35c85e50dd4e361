//! Harness for the live tests: a private cgroup, a real dnsmasq on loopback, real
//! clients, and `dnsdoc watch` scoped to that cgroup and port, so tests neither observe
//! nor disturb any DNS traffic but their own.
//!
//! One skip policy: tests that need BPF call [`require_bpf`], tests that need root but
//! not BPF [`require_root`], tests that need a cgroup v2 mount [`require_cgroup2`].
//! Without what they need they skip with a message and a line in [`SKIPPED_LOG`] (which
//! `make test` counts), unless DNSDOC_REQUIRE_BPF=1 (set by .ci/run), where they fail.
#![allow(dead_code)]

pub mod kube;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dnsdoc::snapshot::Snapshot;

/// Where every skip is recorded, one line each: `target/skipped-live-tests` (the target
/// directory's `tmp` is CARGO_TARGET_TMPDIR). The Makefile's `test` target empties it
/// before `cargo test` and prints how many lines it has after.
pub const SKIPPED_LOG: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/../skipped-live-tests");

/// True when this process runs as root (effective uid 0). The one uid probe of the tests.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// True when the test may use BPF (root and a cgroup v2 mount). Otherwise skips (false),
/// or panics when DNSDOC_REQUIRE_BPF=1 says BPF tests must run.
pub fn require_bpf(test: &str) -> bool {
    if !is_root() {
        return skip(test, "needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)");
    }
    require_cgroup2(test)
}

/// True when the test runs as root. For tests that need root but not BPF (dropping
/// privileges with setpriv, ...); same policy as [`require_bpf`].
pub fn require_root(test: &str) -> bool {
    is_root() || skip(test, "needs root")
}

/// True when the machine has a cgroup v2 mount; same policy as [`require_bpf`].
pub fn require_cgroup2(test: &str) -> bool {
    dnsdoc::host::cgroup2_mount().is_ok() || skip(test, "needs a cgroup v2 mount")
}

/// The one way a test skips: a line on stderr and in [`SKIPPED_LOG`], or a panic when
/// DNSDOC_REQUIRE_BPF=1. Always false, for `if !require_...(..) { return; }`.
fn skip(test: &str, why: &str) -> bool {
    if std::env::var("DNSDOC_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("{test}: {why}, and DNSDOC_REQUIRE_BPF=1 says live tests must run");
    }
    eprintln!("SKIPPED {test}: {why} (set DNSDOC_REQUIRE_BPF=1 to make this a failure)");
    append_line(Path::new(SKIPPED_LOG), &format!("{test}: {why}"));
    false
}

/// Appends one line to a log file shared by parallel tests: one write(2) with O_APPEND,
/// so lines never interleave. Errors are ignored (the log is a courtesy).
fn append_line(path: &Path, line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// False when the test runs on an emulated CPU, where it cannot mean anything: the
/// kernel matrix (scripts/test-kernels.sh) boots kernels under qemu TCG, 10-50x slower
/// than native, and sets DNSDOC_EMULATED_CPU=1. Only tests whose assertion *is* a rate
/// or a latency (a flood that must degrade a server, a load that must reach its rate)
/// use this; they still run natively in `make test`. Never silent: the test's name and
/// `why` go to stderr and to the file named by DNSDOC_NATIVE_ONLY_LOG, which the matrix
/// prints in its summary.
pub fn require_native_speed(test: &str, why: &str) -> bool {
    if std::env::var("DNSDOC_EMULATED_CPU").as_deref() != Ok("1") {
        return true;
    }
    let line = format!("NEEDS NATIVE SPEED {test}: {why}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("DNSDOC_NATIVE_ONLY_LOG") {
        append_line(Path::new(&path), &line);
    }
    false
}

/// The built-in rule `id` as dnsdoc loads it, for tests whose numbers follow its
/// thresholds (rules/*.toml) rather than repeat them.
pub fn builtin_rule(id: &str) -> dnsdoc::rules::Rule {
    dnsdoc::rules::RuleSet::builtin()
        .expect("built-in rules load")
        .get(id)
        .unwrap_or_else(|| panic!("no built-in rule {id}"))
        .clone()
}

/// The rule test files (`*.test.toml`) of tests/fixtures/rules, sorted.
pub fn rule_fixture_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".test.toml"))
        .collect();
    files.sort();
    files
}

/// How many test cases (`[[test]]` tables) a rule test file has.
pub fn rule_test_cases(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    doc.get("test")
        .and_then(toml::Value::as_array)
        .map_or(0, Vec::len)
}

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

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A cgroup v2 directory of our own, removed (with its processes) on drop.
pub struct TestCgroup {
    pub path: PathBuf,
}

impl TestCgroup {
    pub fn new(name: &str) -> Self {
        let root = dnsdoc::host::cgroup2_mount().expect("cgroup2 mount");
        let path = root.join(format!(
            "dnsdoc-test-{}-{}-{}",
            name,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TestCgroup { path }
    }

    /// A command that runs `program args...` inside this cgroup (its pid is the
    /// program's: `sh` moves itself into the cgroup, then execs).
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        command_in_cgroup(&self.path, program, args)
    }

    /// Runs a command to completion inside the cgroup.
    pub fn run(&self, program: &str, args: &[&str]) -> (u32, Output) {
        let child = self
            .command(program, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let pid = child.id();
        let out = child.wait_with_output().expect("wait");
        (pid, out)
    }
}

impl AsRef<Path> for TestCgroup {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// A command that runs `program args...` inside the cgroup directory `dir` (its pid is
/// the program's: `sh` moves itself into the cgroup, then execs).
pub fn command_in_cgroup(dir: &Path, program: &str, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("echo $$ > \"$0\" && exec \"$@\"")
        .arg(dir.join("cgroup.procs"))
        .arg(program)
        .args(args);
    c
}

impl TestCgroup {
    /// BPF programs attached to this cgroup, as the kernel reports them (BPF_PROG_QUERY
    /// for every hook dnsdoc uses). 0 means dnsdoc left nothing behind.
    pub fn attached_programs(&self) -> u32 {
        use std::os::fd::AsRawFd;
        let dir = std::fs::File::open(&self.path).expect("open cgroup");
        let mut total = 0;
        for attach_type in dnsdoc::capture::HOOKS.map(|h| h.attach_type) {
            let mut ids = [0u32; 64];
            let mut cnt = ids.len() as u32;
            let mut flags = 0u32;
            // SAFETY: the fd is open for the call; ids has room for `cnt` entries and
            // the kernel writes at most that many; flags and cnt are valid pointers.
            let rc = unsafe {
                libbpf_sys::bpf_prog_query(
                    dir.as_raw_fd(),
                    attach_type,
                    0,
                    &mut flags,
                    ids.as_mut_ptr(),
                    &mut cnt,
                )
            };
            assert_eq!(rc, 0, "BPF_PROG_QUERY type {attach_type} failed: {rc}");
            total += cnt;
        }
        total
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path.join("cgroup.kill"), "1");
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
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

/// Waits until something accepts TCP connections (no DNS is sent).
pub fn wait_for_tcp(addr: (&str, u16)) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on {}:{}", addr.0, addr.1);
}

/// A running dnsdoc command whose probes are attached: stdout is collected, stderr is
/// streamed line by line. Killed on drop.
pub struct Attached {
    child: Option<Child>,
    stdout: mpsc::Receiver<String>,
    stderr_lines: mpsc::Receiver<String>,
}

/// Spawns a capturing dnsdoc command (watch, doctor) and waits until it says its probes
/// are attached ("dnsdoc: watching ..." on stderr).
pub fn spawn_attached(mut cmd: Command) -> Attached {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dnsdoc");
    let (tx_out, stdout) = mpsc::channel();
    let mut out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = tx_out.send(s);
    });
    let (tx_err, stderr_lines) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx_err.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stderr_lines.recv_timeout(left) {
            Ok(line) if line.contains("dnsdoc: watching") => break,
            Ok(line) => eprintln!("dnsdoc: {line}"),
            Err(_) => panic!("dnsdoc did not attach within 30s"),
        }
    }
    Attached {
        child: Some(child),
        stdout,
        stderr_lines,
    }
}

impl Attached {
    /// The dnsdoc process id (to read its CPU time and memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal to dnsdoc (e.g. "-INT", "-TERM", "-KILL").
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig}");
    }

    /// Waits for dnsdoc to exit; returns (exit code, stdout, stderr lines).
    pub fn wait(mut self) -> (Option<i32>, String, Vec<String>) {
        let code = self.child.take().unwrap().wait().unwrap().code();
        let out = self
            .stdout
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        (code, out, self.stderr_lines.try_iter().collect())
    }

    /// Ends the window with SIGINT (like Ctrl-C) and waits for the result.
    pub fn interrupt(self) -> (Option<i32>, String, Vec<String>) {
        self.signal("-INT");
        self.wait()
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running `dnsdoc watch`, scoped to a cgroup and a port.
pub struct Watch {
    proc: Attached,
    pub snapshot_path: PathBuf,
    _dir: TempDir,
}

/// Starts `dnsdoc watch --cgroup CG --port P --format json -o FILE <extra>` and waits
/// until the probes are attached.
pub fn start_watch(cg: &TestCgroup, ports: &[u16], extra: &[&str]) -> Watch {
    start_watch_env(cg, ports, extra, &[])
}

/// [`start_watch`] with environment variables set for dnsdoc (the benchmarks' switches).
pub fn start_watch_env(
    cg: &TestCgroup,
    ports: &[u16],
    extra: &[&str],
    env: &[(&str, &str)],
) -> Watch {
    let dir = TempDir::new("watch");
    let snapshot_path = dir.path().join("snapshot.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnsdoc"));
    cmd.arg("watch")
        .arg("--cgroup")
        .arg(&cg.path)
        .args([
            "--duration",
            "60s",
            "--format",
            "json",
            "--no-progress",
            "-o",
        ])
        .arg(&snapshot_path);
    for p in ports {
        cmd.arg("--port").arg(p.to_string());
    }
    cmd.args(extra);
    cmd.envs(env.iter().copied());
    Watch {
        proc: spawn_attached(cmd),
        snapshot_path,
        _dir: dir,
    }
}

/// What a stopped watch produced (it exited 0: `stop` checks).
pub struct WatchResult {
    pub snapshot: Snapshot,
    pub stdout_snapshot: Snapshot,
}

impl Watch {
    /// Sends a signal to dnsdoc (e.g. "-TERM", "-KILL").
    pub fn signal(&self, sig: &str) {
        self.proc.signal(sig);
    }

    /// The dnsdoc process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Waits for dnsdoc to exit; returns (exit code, stdout, the -o file if written).
    pub fn wait(self) -> (Option<i32>, String, Option<String>) {
        let (code, out, _) = self.proc.wait();
        (code, out, std::fs::read_to_string(&self.snapshot_path).ok())
    }

    /// Ends the window with SIGINT (like Ctrl-C) and reads the snapshot.
    pub fn stop(self) -> WatchResult {
        let (code, stdout, stderr) = self.proc.interrupt();
        assert_eq!(code, Some(0), "dnsdoc watch failed: {stderr:?}");
        let stdout_snapshot: Snapshot = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is not a snapshot ({e}): {stdout}"));
        let snapshot = Snapshot::read(&self.snapshot_path).expect("snapshot file");
        WatchResult {
            snapshot,
            stdout_snapshot,
        }
    }
}

/// A temporary directory (tempfile's, named `dnsdoc-NAME-...`), removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("dnsdoc-{name}-"))
            .tempdir()
            .expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes `text` to the file `name` in this directory; returns its path as a string.
    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.path().join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p.display().to_string()
    }
}

/// The status dig printed (NOERROR, NXDOMAIN, ...), or None if it got no answer.
pub fn dig_status(out: &Output) -> Option<String> {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap().trim().to_string())
}

/// A network namespace with loopback up, deleted on drop. Used for glibc clients:
/// `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf, so
/// getaddrinfo asks our server on 127.0.0.1:53 and never the machine's resolver.
pub struct Netns {
    pub name: String,
    etc: PathBuf,
}

impl Netns {
    pub fn new(tag: &str, resolv_conf: &str) -> Self {
        let name = format!("dnsdoc-{tag}-{}", std::process::id());
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        let st = Command::new("ip")
            .args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(st.success());
        let etc = PathBuf::from("/etc/netns").join(&name);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), resolv_conf).unwrap();
        Netns { name, etc }
    }

    /// Arguments that run `program args` inside the namespace: `ip netns exec NAME ...`.
    pub fn wrap<'a>(&'a self, program: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["netns", "exec", self.name.as_str(), program];
        v.extend_from_slice(args);
        v
    }

    /// Waits until something listens on TCP `port` inside the namespace (`ss`).
    pub fn wait_for_tcp_listener(&self, port: u16) {
        let filter = format!("= :{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let out = Command::new("ip")
                .args(self.wrap("ss", &["-ltnH", "sport", &filter]))
                .output()
                .expect("ip netns exec ss");
            if !out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nothing listens on TCP port {port} in netns {}", self.name);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

/// Runs the dnsdoc binary with `args`, NO_COLOR set, and returns its output.
pub fn run_dnsdoc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dnsdoc"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run dnsdoc")
}

/// Runs `dnsdoc doctor --format json` on snapshot `s` and returns its finding of `rule`
/// (panics, with the report, when there is none).
pub fn doctor_finding(s: &dnsdoc::snapshot::Snapshot, rule: &str) -> serde_json::Value {
    let dir = TempDir::new("doctor-finding");
    let path = dir.path().join("s.json");
    s.write_atomic(&path).unwrap();
    let o = run_dnsdoc(&[
        "doctor",
        "--snapshot",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .cloned()
        .unwrap_or_else(|| panic!("no {rule} finding: {report:#}"))
}
