//! Real glibc as the load: for the scenarios whose fault lives in the stub resolver
//! itself (the ndots search walk, the parallel A/AAAA pair), a lean client would only
//! imitate it. Each worker is a shell in a private mount namespace (`unshare -m`,
//! propagation private) where /etc/resolv.conf and /etc/nsswitch.conf are bind mounts
//! of files this run wrote (`hosts: dns` only, `nameserver` the [`super::relay`]), so
//! glibc never reads or reaches the machine's resolver and the machine's files are never
//! touched. The worker reads names on stdin and runs `getent ahosts NAME` (getaddrinfo
//! with AF_UNSPEC: A and AAAA together) for each, answering "PID EXIT" per lookup.
//!
//! The driver paces the names (at most qps × duration of them), so the loop is bounded
//! by the driver, not the shell; closing stdin ends a worker, and [`GlibcLoad::stop`]
//! kills them by pid. With `--verify` each worker first moves itself into a cgroup of
//! its own below `--cgroup`, which the capture watches (see `mod.rs`).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::load::{LoadStats, WireStats};
use super::relay::RelayStats;

/// How a glibc-driven scenario configures its clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlibcPlan {
    /// The `search` line (empty: none, and every name is fully qualified).
    pub search: Vec<String>,
    /// `options ...` (ndots, timeout, attempts).
    pub options: String,
    /// The names asked, in turn.
    pub names: Vec<String>,
    /// The relay drops the second query of each socket's A/AAAA pair once.
    pub drop_pair_sibling: bool,
}

impl GlibcPlan {
    /// The resolv.conf the clients see.
    pub fn resolv_conf(&self, nameserver: std::net::IpAddr) -> String {
        let mut s = format!("# written by dnsdoc chaos\nnameserver {nameserver}\n");
        if !self.search.is_empty() {
            s += &format!("search {}\n", self.search.join(" "));
        }
        s + &format!("options {}\n", self.options)
    }

    /// One line for the summary.
    pub fn describe(&self) -> String {
        format!(
            "getent ahosts (glibc getaddrinfo, A and AAAA together) of {}; resolv.conf: {}options {}",
            self.names.join(", "),
            if self.search.is_empty() {
                String::new()
            } else {
                format!("search {}; ", self.search.join(" "))
            },
            self.options
        )
    }
}

/// The worker: bind mounts, then one getent per name read.
const WORKER: &str = r#"mount --bind "$1" /etc/resolv.conf || exit 97
mount --bind "$2" /etc/nsswitch.conf || exit 97
# nscd would answer from the machine's cache: hide its socket.
if [ -d /run/nscd ]; then mount --bind "$3" /run/nscd || exit 97; fi
echo ready
while read -r n; do
  getent ahosts "$n" > /dev/null & p=$!
  wait $p; echo "$p $?"
done
"#;

/// The run's files: resolv.conf, nsswitch.conf, the worker script. Removed on drop.
struct Files {
    dir: PathBuf,
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running glibc load.
pub struct GlibcLoad {
    started: Instant,
    duration: Duration,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    children: Arc<Mutex<Vec<Child>>>,
    _files: Files,
}

#[derive(Default)]
struct Shared {
    next_slot: AtomicU64,
    sent: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    workers_left: AtomicU64,
    stats: Mutex<LoadStats>,
    /// Every getent's pid: the processes a firing rule must name.
    pids: Mutex<Vec<u32>>,
}

/// Checks that the tools exist, before anything is sent.
pub fn check_tools() -> Result<()> {
    for tool in ["getent", "unshare", "mount"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Err(crate::exit::UsageError(format!(
                "this scenario runs real glibc clients and needs {tool} (glibc's getent, \
                 util-linux's unshare and mount) in PATH"
            ))
            .into());
        }
    }
    Ok(())
}

impl GlibcLoad {
    /// Writes the files and starts `workers` shells, each moved into `cgroup` first
    /// when given; returns once every worker is ready. Then the clock starts.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        plan: &GlibcPlan,
        nameserver: SocketAddr,
        workers: u32,
        qps: u32,
        duration: Duration,
        cgroup: Option<&Path>,
    ) -> Result<GlibcLoad> {
        let dir = std::env::temp_dir().join(format!("dnsdoc-chaos-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("nscd")).with_context(|| format!("{}", dir.display()))?;
        let files = Files { dir: dir.clone() };
        let resolv = dir.join("resolv.conf");
        std::fs::write(&resolv, plan.resolv_conf(nameserver.ip()))?;
        let nss = dir.join("nsswitch.conf");
        std::fs::write(&nss, "hosts: dns\n")?;
        let script = dir.join("worker.sh");
        std::fs::write(&script, WORKER)?;
        let procs = cgroup.map_or_else(|| PathBuf::from("/dev/null"), |c| c.join("cgroup.procs"));

        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let children = Arc::new(Mutex::new(Vec::new()));
        let mut pipes = Vec::new();
        for _ in 0..workers.max(1) {
            let mut child = Command::new("sh")
                .arg("-c")
                .arg("echo $$ > \"$1\" && exec unshare -m --propagation private sh \"$2\" \"$3\" \"$4\" \"$5\"")
                .arg("sh")
                .arg(&procs)
                .arg(&script)
                .arg(&resolv)
                .arg(&nss)
                .arg(dir.join("nscd"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("starting a glibc client (sh, unshare)")?;
            let stdin = child.stdin.take().expect("piped");
            let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
            children.lock().expect("children").push(child);
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 || line.trim() != "ready" {
                kill_all(&children);
                bail!(
                    "a glibc client could not set up its private resolv.conf (unshare -m and \
                     mount --bind need root)"
                );
            }
            pipes.push((stdin, stdout));
        }
        shared
            .workers_left
            .store(pipes.len() as u64, Ordering::SeqCst);
        let started = Instant::now();
        let max = (f64::from(qps) * duration.as_secs_f64()).ceil() as u64;
        let interval = Duration::from_secs_f64(1.0 / f64::from(qps.max(1)));
        let names = Arc::new(plan.names.clone());
        let threads = pipes
            .into_iter()
            .map(|(stdin, stdout)| {
                let (shared, stop, names) = (shared.clone(), stop.clone(), names.clone());
                std::thread::spawn(move || {
                    let pace = Pace {
                        started,
                        duration,
                        max,
                        interval,
                    };
                    worker(stdin, stdout, &pace, &names, &shared, &stop);
                    shared.workers_left.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        Ok(GlibcLoad {
            started,
            duration,
            stop,
            shared,
            threads,
            children,
            _files: files,
        })
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn sending_done(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.started.elapsed() >= self.duration
    }

    pub fn finished(&self) -> bool {
        self.shared.workers_left.load(Ordering::SeqCst) == 0
    }

    pub fn in_flight(&self) -> u64 {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Lookups sent, answered, failed, and 0 NXDOMAIN (getent does not say which).
    pub fn counts(&self) -> (u64, u64, u64, u64) {
        let s = &self.shared;
        (
            s.sent.load(Ordering::Relaxed),
            s.answered.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
            0,
        )
    }

    /// Stops at once: the workers are killed (their getent ends within its timeout).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        kill_all(&self.children);
    }

    /// Waits for the workers (at most `deadline`), then reaps them. Returns the
    /// client-side results and the pids of the getent processes that ran.
    pub fn finish(mut self, deadline: Duration) -> (LoadStats, Vec<u32>) {
        let until = Instant::now() + deadline;
        while !self.finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let stats = self.shared.stats.lock().expect("stats").clone();
        let pids = self.shared.pids.lock().expect("pids").clone();
        (stats, pids)
    }
}

/// The wire counts of glibc clients, which only the relay saw.
pub fn wire_from_relay(stats: &mut LoadStats, relay: RelayStats) {
    stats.wire = WireStats {
        udp_queries: relay.queries,
        resends: relay.resends,
        responses: relay.answers,
        pair_siblings: relay.pair_siblings,
        search_expansions: relay.names_tried.saturating_sub(stats.sent),
        same_id_resends: relay.same_id_resends,
        dropped: relay.dropped,
        ..WireStats::default()
    };
}

impl Drop for GlibcLoad {
    fn drop(&mut self) {
        kill_all(&self.children);
    }
}

/// Kills the workers this run started (by their own pid) and reaps them.
fn kill_all(children: &Mutex<Vec<Child>>) {
    for c in children.lock().expect("children").iter_mut() {
        if matches!(c.try_wait(), Ok(None)) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Pace {
    started: Instant,
    duration: Duration,
    max: u64,
    interval: Duration,
}

fn worker(
    mut stdin: std::process::ChildStdin,
    mut stdout: BufReader<std::process::ChildStdout>,
    pace: &Pace,
    names: &[String],
    shared: &Shared,
    stop: &AtomicBool,
) {
    let mut line = String::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let slot = shared.next_slot.fetch_add(1, Ordering::SeqCst);
        let at = pace.started + pace.interval.mul_f64(slot as f64);
        if slot >= pace.max || at >= pace.started + pace.duration {
            break;
        }
        // Sleep in short steps so a stop is seen at once.
        while Instant::now() < at && !stop.load(Ordering::SeqCst) {
            std::thread::sleep((at - Instant::now()).min(Duration::from_millis(50)));
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let name = &names[(slot % names.len() as u64) as usize];
        let t0 = Instant::now();
        let since = t0.duration_since(pace.started).as_nanos() as u64;
        shared.sent.fetch_add(1, Ordering::Relaxed);
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        line.clear();
        let ok = writeln!(stdin, "{name}")
            .and_then(|()| stdin.flush())
            .is_ok()
            && stdout.read_line(&mut line).unwrap_or(0) > 0;
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        let mut s = shared.stats.lock().expect("stats");
        s.sent += 1;
        s.first_send_ns.get_or_insert(since);
        s.last_send_ns = Some(since);
        let mut parts = line.split_whitespace();
        match (
            ok,
            parts.next().and_then(|p| p.parse::<u32>().ok()),
            parts.next(),
        ) {
            (true, Some(pid), Some(rc)) => {
                shared.pids.lock().expect("pids").push(pid);
                let elapsed = t0.elapsed().as_nanos() as u64;
                match rc {
                    // getent: 0 found, 2 not found (NXDOMAIN or no address).
                    "0" | "2" => {
                        s.answered += 1;
                        shared.answered.fetch_add(1, Ordering::Relaxed);
                        s.rcodes.add(if rc == "0" { 0 } else { 3 });
                        s.latency.record(elapsed);
                    }
                    _ => {
                        s.timeouts += 1;
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ if stop.load(Ordering::SeqCst) => {
                s.cancelled += 1;
                break;
            }
            _ => {
                s.errors += 1;
                s.first_error
                    .get_or_insert_with(|| "a glibc client ended early".to_string());
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_names_only_the_relay() {
        let p = GlibcPlan {
            search: vec!["default.svc.cluster.local".into(), "cluster.local".into()],
            options: "ndots:5 timeout:1 attempts:2".into(),
            names: vec!["kubernetes.default".into()],
            drop_pair_sibling: false,
        };
        let conf = p.resolv_conf("127.53.1.2".parse().unwrap());
        assert_eq!(
            conf.lines()
                .filter(|l| l.starts_with("nameserver"))
                .collect::<Vec<_>>(),
            ["nameserver 127.53.1.2"]
        );
        assert!(conf.contains("search default.svc.cluster.local cluster.local\n"));
        assert!(conf.contains("options ndots:5 timeout:1 attempts:2\n"));
        let none = GlibcPlan {
            search: vec![],
            ..p
        };
        assert!(!none
            .resolv_conf("127.53.1.2".parse().unwrap())
            .contains("search"));
    }
}
