//! A capturing dnsdoc (watch, doctor) running in the background: started, waited for
//! until its probes are attached, signalled and stopped, its snapshot read.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dnsdoc::snapshot::Snapshot;

use super::{TempDir, TestCgroup};

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
