//! The pipeline of one observation window: source -> analysis -> aggregate ->
//! snapshot. `watch`, `doctor` and `chaos --verify` all call [`observe`]; none of them
//! calls another command. The event source is one seam ([`EventSource`]): the live
//! kernel capture is [`live::LiveSource`], and a second source (a pcap file) plugs in
//! through [`run`] without touching the analysis.

pub mod continuous;
pub mod kube;
pub mod live;
pub mod pcap;
pub mod source;
mod stage;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use foldhash::HashMap;

use crate::analysis::aggregate::Aggregator;
use crate::analysis::lookup_stats::LookupTallies;
use crate::analysis::lookups::{LookupTracker, Try};
use crate::analysis::matcher::{MatcherStats, Outcome, Role};
use crate::analysis::{AnalysisConfig, Attributed, DecodeStats};
use crate::capture::{Capture, CaptureConfig, ObjectStorage};
use crate::exit::UsageError;
use crate::host::{self, ProcessInfo};
use crate::signals;
use crate::snapshot::{self, CaptureHealth, Dropped, Host, NodeCounters, Snapshot, Window};
use live::LiveSource;
pub use source::{EventSource, SourceHealth};
use stage::Stage;

/// Everything one observation window needs.
#[derive(Debug, Clone)]
pub struct ObserveOptions {
    pub duration: Duration,
    pub timeout: Duration,
    pub ports: Vec<u16>,
    pub cgroup: Option<PathBuf>,
    pub pids: Vec<u32>,
    pub ring_buffer_bytes: u32,
    pub max_pending: usize,
    /// Show a live progress line on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// Told once every probe is attached (for a caller that observes on another thread
    /// and must not start its load before the capture sees it).
    pub attached: Option<std::sync::mpsc::Sender<()>>,
    /// Read this capture file instead of the kernel (no privileges needed); the window
    /// is the file's first to last DNS packet and `duration` does not apply.
    pub pcap: Option<PathBuf>,
    /// With `pcap`: this node's addresses (default: loopback plus the address most
    /// packets have at one end).
    pub local: Vec<std::net::IpAddr>,
    /// Kubernetes: where the node's files are, and which pods to observe.
    pub kube: KubeOptions,
}

/// Kubernetes options of a window.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// Only these pods (`--namespace`, `--pod`); empty: every process.
    pub pods: host::kube::PodFilter,
    /// The node's root directory, under which `var/log/pods` and `run/containerd` are
    /// read for pod names (`/`, or `/host` when dnsdoc runs in a pod).
    pub node_root: PathBuf,
    /// Only processes in these cgroups (as in /proc/PID/cgroup) or below: the pods
    /// `pods` selected, filled by [`observe`].
    pub cgroups: Vec<String>,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            pods: Default::default(),
            node_root: PathBuf::from("/"),
            cgroups: Vec::new(),
        }
    }
}

/// Attaches the probes, observes for the window (or until Ctrl-C/SIGTERM), detaches and
/// returns the snapshot.
pub fn observe(opts: &ObserveOptions) -> Result<Snapshot> {
    let opts = prepare(opts)?;
    with_source(&opts, |source, scope| run(source, &opts, scope))
}

/// The options a run really uses: a capture file's window is the whole file (no
/// `duration`); `--namespace`/`--pod` become the pods' common cgroup and a filter on
/// their cgroups.
pub fn prepare(opts: &ObserveOptions) -> Result<ObserveOptions> {
    let mut opts = opts.clone();
    if opts.pcap.is_some() {
        opts.duration = Duration::MAX;
        return Ok(opts);
    }
    if !opts.kube.pods.is_empty() {
        host::check_privileges()?;
        // The pods' cgroups: attach where they meet, count only their processes.
        let mount = host::cgroup2_mount()?;
        let names = host::kube::NodeNames::read(&opts.kube.node_root);
        let pods = host::kube::select(&mount, &names, &opts.kube.pods).map_err(UsageError)?;
        let dirs: Vec<PathBuf> = pods.iter().map(|p| p.dir.clone()).collect();
        opts.cgroup = host::kube::common_ancestor(&dirs);
        opts.kube.cgroups = pods.into_iter().map(|p| p.info.cgroup).collect();
    }
    Ok(opts)
}

/// Opens the source `opts` asks for (a capture file, or the kernel probes after the
/// privilege and cgroup checks), says so on stderr, and runs `body` with it and its
/// scope. The probes are freed when this returns, whatever `body` returned.
pub fn with_source<T>(
    opts: &ObserveOptions,
    body: impl FnOnce(&mut dyn EventSource, &str) -> Result<T>,
) -> Result<T> {
    if let Some(path) = &opts.pcap {
        signals::install().context("installing signal handlers")?;
        let mut source = pcap::PcapSource::open(path, &opts.ports, &opts.local)?;
        return body(&mut source, "(none: a capture file)");
    }
    host::check_privileges()?;
    let cgroup = host::resolve_cgroup(opts.cgroup.as_deref())?;
    signals::install().context("installing signal handlers")?;

    let mut storage = ObjectStorage::default();
    let capture = Capture::start(
        &CaptureConfig {
            cgroup: cgroup.clone(),
            ports: opts.ports.clone(),
            ring_buffer_bytes: opts.ring_buffer_bytes,
        },
        &mut storage,
    )?;
    let ports: Vec<String> = opts.ports.iter().map(u16::to_string).collect();
    let until = if opts.duration == Duration::MAX {
        "until stopped".to_string()
    } else {
        format!("for {}", humantime::format_duration(opts.duration))
    };
    eprintln!(
        "dnsdoc: watching DNS on port {} in cgroup {} {until} (Ctrl-C to stop early)",
        ports.join(","),
        cgroup.display(),
    );
    if let Some(tx) = &opts.attached {
        // The receiver may have given up waiting; the window runs anyway.
        let _ = tx.send(());
    }
    let mut source = LiveSource::new(capture);
    // The probes are freed when `source` is dropped, whatever `body` returned.
    body(&mut source, &cgroup.display().to_string())
}

/// Runs one window over `source`: source -> analysis -> aggregate -> snapshot. Ends at
/// the window's duration, on Ctrl-C/SIGTERM, or when the source is exhausted; then
/// stops the source, drains it and assembles the snapshot. `scope` names what the
/// source watched (the cgroup), for the snapshot.
pub fn run(source: &mut dyn EventSource, opts: &ObserveOptions, scope: &str) -> Result<Snapshot> {
    let start = Instant::now();
    let start_ns = source.now_ns();
    let counters_before = source
        .is_this_node_now()
        .then(host::UdpCounters::read)
        .flatten();

    let mut stage = Stage::new(&analysis_config(opts));
    let mut agg = Aggregator::new();
    let mut lookups = Lookups::new(opts.timeout.as_nanos() as u64);
    let show_progress = opts.progress && std::io::stderr().is_terminal();
    let mut last_progress = Instant::now();

    loop {
        let elapsed = start.elapsed();
        if signals::stop_requested() || elapsed >= opts.duration || source.exhausted() {
            break;
        }
        // Short waits: the kernel only wakes us when the ring is an eighth full.
        let wait = (opts.duration - elapsed).min(Duration::from_millis(10));
        stage.poll(source, wait)?;
        take(&mut stage, opts, &mut agg, &mut lookups);
        if show_progress && last_progress.elapsed() >= Duration::from_millis(500) {
            last_progress = Instant::now();
            let (packets, lost) = source.progress();
            let s = stage.analyzer.decode_stats();
            eprint!(
                "\r\x1b[2K  {:>5.1}s / {}   packets {}   messages {}   in flight {}   dropped {}",
                start.elapsed().as_secs_f64(),
                humantime::format_duration(opts.duration),
                packets,
                s.messages,
                stage.analyzer.in_flight(),
                lost
            );
        }
    }
    // Stop, then drain what the source already queued and read the final counters.
    let end_ns = source.now_ns();
    let end_wall = SystemTime::now();
    let node_counters = counters_before
        .zip(host::UdpCounters::read())
        .map(|(before, after)| node_counters(&before, &after));
    let start_wall = end_wall - start.elapsed();
    source.stop();
    loop {
        stage.poll(source, Duration::ZERO)?;
        take(&mut stage, opts, &mut agg, &mut lookups);
        if !source.backlog() {
            break;
        }
    }
    let health = source.health()?;
    if show_progress {
        eprint!("\r\x1b[2K");
    }
    let (pending_client, pending_server) =
        finish(&mut stage, end_ns, opts, &mut agg, &mut lookups, |_, _| {});

    // A file's window: its own first and last DNS packet (known only after the drain).
    let end_ns = end_ns.max(source.now_ns());
    let span = Span {
        start_ns,
        end_ns,
        start_wall,
        end_wall,
    };
    let counts = WindowCounts {
        health,
        decode: stage.analyzer.decode_stats(),
        matched: stage.analyzer.matcher_stats(),
        pending_client,
        pending_server,
        node_counters,
    };
    let tallies = lookups.finish_all();
    Ok(assemble(
        &*source, opts, scope, &span, &counts, &agg, &mut stage, &tallies,
    ))
}

/// A window's lookups: the tracker of open search-list chains, and the tallies that
/// finished ones are folded into at once (memory stays flat however many there are).
pub(crate) struct Lookups {
    tracker: LookupTracker,
    tallies: LookupTallies,
}

impl Lookups {
    pub(crate) fn new(timeout_ns: u64) -> Self {
        Lookups {
            tracker: LookupTracker::new(timeout_ns),
            tallies: LookupTallies::default(),
        }
    }

    /// Hands a client query to the tracker, with its process's search list.
    fn add(&mut self, a: &Attributed, procs: &HashMap<u32, ProcessInfo>) {
        track_lookup(&mut self.tracker, a, procs);
    }

    /// Folds the lookups finished so far into the tallies.
    fn fold(&mut self) {
        for l in self.tracker.take_done() {
            self.tallies.add(&l);
        }
    }

    /// The tallies of the lookups finished by `now_ns` (including those idle too long
    /// to go on), handed out; a new set begins (the open chains carry on into the next
    /// window).
    pub(crate) fn take_tallies(&mut self, now_ns: u64) -> LookupTallies {
        self.tracker.finish_idle(now_ns);
        self.fold();
        std::mem::take(&mut self.tallies)
    }

    /// Ends every open lookup and hands out the tallies.
    pub(crate) fn finish_all(&mut self) -> LookupTallies {
        for l in self.tracker.finish_all() {
            self.tallies.add(&l);
        }
        std::mem::take(&mut self.tallies)
    }
}

/// Hands the transactions the last poll completed to the window (the `--pid` and pod
/// filters applied).
fn take(stage: &mut Stage, opts: &ObserveOptions, agg: &mut Aggregator, lookups: &mut Lookups) {
    if !opts.kube.cgroups.is_empty() {
        stage.cgroups_of_exited_owners();
    }
    for tx in stage.txs.drain(..) {
        if wanted(&tx, opts, &stage.procs) {
            agg.add(&tx);
            lookups.add(&tx, &stage.procs);
        }
    }
    lookups.fold();
}

/// Ends the analysis at `end_ns`: what is due times out, the rest is pending. Every
/// wanted transaction goes to the window and to `also`; returns the pending queries
/// (client, server).
fn finish(
    stage: &mut Stage,
    end_ns: u64,
    opts: &ObserveOptions,
    agg: &mut Aggregator,
    lookups: &mut Lookups,
    mut also: impl FnMut(&Attributed, &HashMap<u32, ProcessInfo>),
) -> (u64, u64) {
    stage.analyzer.finish(end_ns, &mut stage.txs);
    if !opts.kube.cgroups.is_empty() {
        stage.cgroups_of_exited_owners();
    }
    let (mut pending_client, mut pending_server) = (0, 0);
    for tx in stage.txs.drain(..) {
        if !wanted(&tx, opts, &stage.procs) {
            continue;
        }
        match (tx.tx.outcome, tx.tx.role) {
            (Outcome::Pending, Role::Client) => pending_client += 1,
            (Outcome::Pending, Role::Server) => pending_server += 1,
            _ => {}
        }
        agg.add(&tx);
        lookups.add(&tx, &stage.procs);
        also(&tx, &stage.procs);
    }
    (pending_client, pending_server)
}

/// The node's UDP counters over a window.
fn node_counters(before: &host::UdpCounters, after: &host::UdpCounters) -> NodeCounters {
    let d = before.delta(after);
    NodeCounters {
        udp_rcvbuf_errors: d.rcvbuf_errors,
        udp_in_errors: d.in_errors,
        udp_sndbuf_errors: d.sndbuf_errors,
        ip_reasm_fails: d.reasm_fails,
        conntrack_insert_failed: d.conntrack.map(|c| c.insert_failed),
        conntrack_drop: d.conntrack.map(|c| c.drop),
    }
}

/// The analysis settings of `opts`.
fn analysis_config(opts: &ObserveOptions) -> AnalysisConfig {
    AnalysisConfig {
        timeout_ns: opts.timeout.as_nanos() as u64,
        max_pending: opts.max_pending,
    }
}

/// When a window ran: in the source's clock, and on the wall clock (used when the
/// source has no wall clock of its own).
pub(crate) struct Span {
    pub start_ns: u64,
    pub end_ns: u64,
    pub start_wall: SystemTime,
    pub end_wall: SystemTime,
}

/// A window's counters from the source, the analysis and the node (for a continuous
/// run, the differences since the previous window).
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowCounts {
    pub health: SourceHealth,
    pub decode: DecodeStats,
    pub matched: MatcherStats,
    pub pending_client: u64,
    pub pending_server: u64,
    pub node_counters: Option<NodeCounters>,
}

/// Builds a window's snapshot from its aggregates, lookups and counters.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble(
    source: &dyn EventSource,
    opts: &ObserveOptions,
    scope: &str,
    span: &Span,
    counts: &WindowCounts,
    agg: &Aggregator,
    stage: &mut Stage,
    lookups: &LookupTallies,
) -> Snapshot {
    let (start_wall, end_wall) = match (
        source.wall_clock(span.start_ns),
        source.wall_clock(span.end_ns),
    ) {
        (Some(s), Some(e)) => (s, e),
        _ => (span.start_wall, span.end_wall),
    };
    let duration_s = span.end_ns.saturating_sub(span.start_ns) as f64 / 1e9;
    let (health, decode, matched) = (&counts.health, &counts.decode, &counts.matched);
    let dropped = Dropped {
        ringbuf_full: health.ringbuf_full,
        load_error: health.load_error,
        decode_error: health.decode_error,
        pending_evicted: matched.evicted,
        total: health.lost() + matched.evicted,
    };
    cgroups_of_exited(&mut stage.procs, &stage.cgroup_ids);
    let procs = &stage.procs;
    let mut processes = if source.has_processes() {
        agg.processes(duration_s, procs)
    } else {
        Vec::new()
    };
    let parts = kube::assemble(
        agg,
        duration_s,
        procs,
        &mut processes,
        lookups,
        &opts.kube.node_root,
    );
    let processes_by_pid: HashMap<u32, (String, Option<String>)> = processes
        .iter()
        .map(|p| {
            (
                p.pid,
                (
                    p.comm.clone(),
                    p.pod.as_ref().map(|r| format!("{}/{}", r.namespace, r.pod)),
                ),
            )
        })
        .collect();
    Snapshot {
        schema: snapshot::SCHEMA,
        dnsdoc_version: env!("CARGO_PKG_VERSION").to_string(),
        window: Window {
            start: humantime::format_rfc3339_millis(start_wall).to_string(),
            end: humantime::format_rfc3339_millis(end_wall).to_string(),
            duration_s: (duration_s * 1e3).round() / 1e3,
        },
        host: Host {
            hostname: host::hostname(),
            kernel: host::kernel_release(),
        },
        capture: CaptureHealth {
            source: source.describe(),
            cgroup: scope.to_string(),
            ports: opts.ports.clone(),
            pids: opts.pids.clone(),
            timeout_ms: opts.timeout.as_millis() as u64,
            packets: health.packets,
            events: decode.events,
            messages: decode.messages,
            dropped,
            payload_cut: decode.payload_cut,
            owner_unrecorded: health.owner_unrecorded,
            owners_from_sock_diag: health.owners_from_sock_diag,
            degraded: health.degraded.clone(),
            parse_errors: decode.parse_errors,
            tcp_desyncs: decode.tcp_desyncs,
            unmatched_responses: matched.unmatched_responses,
            pending_at_end: counts.pending_client,
            server_pending_at_end: counts.pending_server,
        },
        totals: agg.totals(duration_s, matched.retransmissions),
        latency: agg.latency(),
        processes,
        servers: agg.servers(duration_s),
        qtypes: agg.qtypes(duration_s),
        names: agg.names(duration_s),
        server_side: agg.server_side(duration_s, procs, matched.server_retransmissions),
        pods: parts.pods,
        lookups: parts.lookups,
        node_counters: counts.node_counters,
        local_servers: agg.local_servers(duration_s, procs),
        coredns: None,
        domains: agg.domains(duration_s, |pid| process_of(&processes_by_pid, pid)),
    }
}

/// A process's command and pod (`namespace/pod`) for the domain rows.
fn process_of(
    by_pid: &HashMap<u32, (String, Option<String>)>,
    pid: u32,
) -> (String, Option<String>) {
    by_pid.get(&pid).cloned().unwrap_or_else(|| {
        let comm = if pid == 0 { "(unknown)" } else { "(exited)" };
        (comm.to_string(), None)
    })
}

/// Gives processes that exited before /proc was read the cgroup their packets carried
/// (so a short-lived client in a pod is still the pod's).
fn cgroups_of_exited(procs: &mut HashMap<u32, ProcessInfo>, ids: &HashMap<u32, u64>) {
    let missing: Vec<(u32, u64)> = ids
        .iter()
        .filter(|(tgid, _)| procs.get(tgid).is_none_or(|i| i.cgroup.is_none()))
        .map(|(&t, &id)| (t, id))
        .collect();
    if missing.is_empty() {
        return;
    }
    let mut wanted: Vec<u64> = missing.iter().map(|&(_, id)| id).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let paths = host::cgroup_paths(&wanted);
    for (tgid, id) in missing {
        if let Some(path) = paths.get(&id) {
            procs.entry(tgid).or_default().cgroup = Some(path.clone());
        }
    }
}

/// Hands a client query to the lookup tracker, with its process's search list.
fn track_lookup(lookups: &mut LookupTracker, a: &Attributed, procs: &HashMap<u32, ProcessInfo>) {
    let (Role::Client, Some(q), Some(owner)) = (a.tx.role, &a.tx.question, &a.owner) else {
        return;
    };
    lookups.add(
        Try {
            tgid: owner.tgid,
            query_ts_ns: a.tx.query_ts_ns,
            name: &q.name,
            qtype: q.qtype,
            cookie: a.tx.cookie,
            outcome: a.tx.outcome,
        },
        procs.get(&owner.tgid).and_then(|i| i.resolv.as_ref()),
    );
}

/// Applies the `--pid` filter and the pods' cgroups of `--namespace`/`--pod`. `--pid`
/// selects clients: a local server's side is its own view of every query it received
/// (the chosen processes' among them), so `--pid` never hides it, or a filter on the
/// client would report 0 queries to a local server.
fn wanted(tx: &Attributed, opts: &ObserveOptions, procs: &HashMap<u32, ProcessInfo>) -> bool {
    let pids = &opts.pids;
    let cgroups = &opts.kube.cgroups;
    let pid_ok = pids.is_empty()
        || tx.tx.role == Role::Server
        || tx.owner.as_ref().is_some_and(|o| pids.contains(&o.tgid));
    let cgroup_ok = cgroups.is_empty()
        || tx
            .owner
            .as_ref()
            .and_then(|o| procs.get(&o.tgid)?.cgroup.as_deref())
            .is_some_and(|c| {
                cgroups.iter().any(|p| {
                    c == p
                        || c.strip_prefix(p.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                })
            });
    pid_ok && cgroup_ok
}
