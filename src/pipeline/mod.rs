//! The pipeline of one observation window: source -> analysis -> aggregate ->
//! snapshot. `watch`, `doctor` and `chaos --verify` all call [`observe`]; none of them
//! calls another command. The event source is one seam ([`EventSource`]): the live
//! kernel capture is [`live::LiveSource`], and a second source (a pcap file) plugs in
//! through [`run`] without touching the analysis.

pub mod kube;
pub mod live;
pub mod pcap;
pub mod source;

use std::collections::hash_map::Entry;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use foldhash::{HashMap, HashMapExt};

use crate::analysis::aggregate::Aggregator;
use crate::analysis::lookup_stats::LookupTallies;
use crate::analysis::lookups::{LookupTracker, Try};
use crate::analysis::matcher::{Outcome, Role};
use crate::analysis::{AnalysisConfig, Analyzer, Attributed};
use crate::capture::{Capture, CaptureConfig, EventBatch, ObjectStorage};
use crate::exit::UsageError;
use crate::host::{self, ProcFs, ProcessInfo};
use crate::signals;
use crate::snapshot::{self, CaptureHealth, Dropped, Host, Snapshot, Window};
use crate::sockets::Unowned;
use live::LiveSource;
pub use source::{EventSource, SourceHealth};

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
    if let Some(path) = &opts.pcap {
        signals::install().context("installing signal handlers")?;
        let mut source = pcap::PcapSource::open(path, &opts.ports, &opts.local)?;
        let file = ObserveOptions {
            duration: Duration::MAX,
            ..opts.clone()
        };
        return run(&mut source, &file, "(none: a capture file)");
    }
    host::check_privileges()?;
    let mut opts = opts.clone();
    if !opts.kube.pods.is_empty() {
        // The pods' cgroups: attach where they meet, count only their processes.
        let mount = host::cgroup2_mount()?;
        let names = host::kube::NodeNames::read(&opts.kube.node_root);
        let pods = host::kube::select(&mount, &names, &opts.kube.pods).map_err(UsageError)?;
        let dirs: Vec<PathBuf> = pods.iter().map(|p| p.dir.clone()).collect();
        opts.cgroup = host::kube::common_ancestor(&dirs);
        opts.kube.cgroups = pods.into_iter().map(|p| p.info.cgroup).collect();
    }
    let opts = &opts;
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
    eprintln!(
        "dnsdoc: watching DNS on port {} in cgroup {} for {} (Ctrl-C to stop early)",
        ports.join(","),
        cgroup.display(),
        humantime::format_duration(opts.duration)
    );
    if let Some(tx) = &opts.attached {
        // The receiver may have given up waiting; the window runs anyway.
        let _ = tx.send(());
    }
    let mut source = LiveSource::new(capture);
    // The probes are freed when `source` is dropped, whatever `run` returned.
    run(&mut source, opts, &cgroup.display().to_string())
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

    let timeout_ns = opts.timeout.as_nanos() as u64;
    let mut analyzer = Analyzer::new(&AnalysisConfig {
        timeout_ns,
        max_pending: opts.max_pending,
    });
    let mut agg = Aggregator::new();
    let mut lookups = LookupTracker::new(timeout_ns);
    let mut lookup_tallies = LookupTallies::default();
    let mut procs: HashMap<u32, ProcessInfo> = HashMap::new();
    let mut events = EventBatch::default();
    let mut new_tgids = Vec::new();
    let mut txs = Vec::new();
    let show_progress = opts.progress && std::io::stderr().is_terminal();
    let mut last_progress = Instant::now();

    // Diagnostics for `make bench`-style cost attribution: the probes run and the ring
    // is drained, but nothing is analysed (the snapshot then counts nothing).
    let discard = std::env::var_os("DNSDOC_DISCARD_EVENTS").is_some();
    let mut unowned = Vec::new();
    // The cgroup each owner's packets carry, for processes gone before /proc was read.
    let mut cgroup_ids: HashMap<u32, u64> = HashMap::new();
    // cgroup id -> path, for those looked up (None: the cgroup is gone).
    let mut id_paths: HashMap<u64, Option<String>> = HashMap::new();
    let mut feed = |source: &mut dyn EventSource,
                    events: &mut EventBatch,
                    analyzer: &mut Analyzer,
                    agg: &mut Aggregator,
                    lookups: &mut LookupTracker,
                    procs: &mut HashMap<u32, ProcessInfo>| {
        // Name the processes the events carry first, while short-lived clients (dig)
        // still exist. Then sockets no kernel hook has named yet: ask the source
        // (sock_diag and /proc) before matching, so a batch's transactions are
        // attributed to them already.
        if discard {
            events.clear();
            return;
        }
        unowned.clear();
        for ev in events.events() {
            let tgid = ev.named_owner();
            if tgid != 0 {
                name_process(procs, tgid);
                if ev.cgroup_id != 0 {
                    cgroup_ids.entry(tgid).or_insert(ev.cgroup_id);
                }
            } else if analyzer.owner_unknown(ev) && source.wants_owner(ev.cookie) {
                let key = Unowned {
                    cookie: ev.cookie,
                    protocol: ev.protocol,
                    local: ev.local().into(),
                };
                if !unowned.contains(&key) {
                    unowned.push(key);
                }
            }
        }
        let now = source.now_ns();
        if !unowned.is_empty() {
            for (cookie, tgid) in source.resolve_owners(&unowned) {
                if analyzer.teach_owner(cookie, tgid, now) {
                    new_tgids.push(tgid);
                }
            }
        }
        for ev in events.events() {
            analyzer.on_event(ev, &mut new_tgids, &mut txs);
            // Owners the events carry were named above; this names those sock_diag taught.
            for tgid in new_tgids.drain(..) {
                name_process(procs, tgid);
            }
        }
        events.clear();
        analyzer.tick(source.now_ns(), &mut txs);
        for tx in txs.drain(..) {
            if !opts.kube.cgroups.is_empty() {
                // The pod filter needs the cgroup of clients that exited before /proc
                // was read: the one their packets carried.
                if let Some(o) = &tx.owner {
                    cgroup_of_exited(procs, &cgroup_ids, &mut id_paths, o.tgid);
                }
            }
            if wanted(&tx, opts, procs) {
                agg.add(&tx);
                track_lookup(lookups, &tx, procs);
            }
        }
        // Finished lookups are folded at once: memory stays flat however many there are.
        for l in lookups.take_done() {
            lookup_tallies.add(&l);
        }
    };

    loop {
        let elapsed = start.elapsed();
        if signals::stop_requested() || elapsed >= opts.duration || source.exhausted() {
            break;
        }
        // Short waits: the kernel only wakes us when the ring is an eighth full.
        let wait = (opts.duration - elapsed).min(Duration::from_millis(10));
        source.poll(wait, &mut events)?;
        feed(
            source,
            &mut events,
            &mut analyzer,
            &mut agg,
            &mut lookups,
            &mut procs,
        );
        if show_progress && last_progress.elapsed() >= Duration::from_millis(500) {
            last_progress = Instant::now();
            let (packets, lost) = source.progress();
            let s = analyzer.decode_stats();
            eprint!(
                "\r\x1b[2K  {:>5.1}s / {}   packets {}   messages {}   in flight {}   dropped {}",
                start.elapsed().as_secs_f64(),
                humantime::format_duration(opts.duration),
                packets,
                s.messages,
                analyzer.in_flight(),
                lost
            );
        }
    }
    // Stop, then drain what the source already queued and read the final counters.
    let end_ns = source.now_ns();
    let end_wall = SystemTime::now();
    let node_counters = counters_before
        .zip(host::UdpCounters::read())
        .map(|(before, after)| {
            let d = before.delta(&after);
            snapshot::NodeCounters {
                udp_rcvbuf_errors: d.rcvbuf_errors,
                udp_in_errors: d.in_errors,
                udp_sndbuf_errors: d.sndbuf_errors,
                ip_reasm_fails: d.reasm_fails,
                conntrack_insert_failed: d.conntrack.map(|c| c.insert_failed),
                conntrack_drop: d.conntrack.map(|c| c.drop),
            }
        });
    let start_wall = end_wall - start.elapsed();
    source.stop();
    source.poll(Duration::ZERO, &mut events)?;
    feed(
        source,
        &mut events,
        &mut analyzer,
        &mut agg,
        &mut lookups,
        &mut procs,
    );
    let health = source.health()?;
    if show_progress {
        eprint!("\r\x1b[2K");
    }
    analyzer.finish(end_ns, &mut txs);
    let (mut pending_client, mut pending_server) = (0, 0);
    for tx in txs.drain(..).filter(|tx| wanted(tx, opts, &procs)) {
        match (tx.tx.outcome, tx.tx.role) {
            (Outcome::Pending, Role::Client) => pending_client += 1,
            (Outcome::Pending, Role::Server) => pending_server += 1,
            _ => {}
        }
        agg.add(&tx);
        track_lookup(&mut lookups, &tx, &procs);
    }
    for l in lookups.finish_all() {
        lookup_tallies.add(&l);
    }

    // A file's window: its own first and last DNS packet (known only after the drain).
    let end_ns = end_ns.max(source.now_ns());
    let (start_wall, end_wall) = match (source.wall_clock(start_ns), source.wall_clock(end_ns)) {
        (Some(s), Some(e)) => (s, e),
        _ => (start_wall, end_wall),
    };
    let duration_s = end_ns.saturating_sub(start_ns) as f64 / 1e9;
    let decode = analyzer.decode_stats();
    let matched = analyzer.matcher_stats();
    let dropped = Dropped {
        ringbuf_full: health.ringbuf_full,
        load_error: health.load_error,
        decode_error: health.decode_error,
        pending_evicted: matched.evicted,
        total: health.lost() + matched.evicted,
    };
    cgroups_of_exited(&mut procs, &cgroup_ids);
    let mut processes = if source.has_processes() {
        agg.processes(duration_s, &procs)
    } else {
        Vec::new()
    };
    let parts = kube::assemble(
        &agg,
        duration_s,
        &procs,
        &mut processes,
        &lookup_tallies,
        &opts.kube.node_root,
    );
    Ok(Snapshot {
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
            degraded: health.degraded,
            parse_errors: decode.parse_errors,
            tcp_desyncs: decode.tcp_desyncs,
            unmatched_responses: matched.unmatched_responses,
            pending_at_end: pending_client,
            server_pending_at_end: pending_server,
        },
        totals: agg.totals(duration_s, matched.retransmissions),
        latency: agg.latency(),
        processes,
        servers: agg.servers(duration_s),
        qtypes: agg.qtypes(duration_s),
        names: agg.names(duration_s),
        server_side: agg.server_side(duration_s, &procs, matched.server_retransmissions),
        pods: parts.pods,
        lookups: parts.lookups,
        node_counters,
    })
}

/// Gives one process that exited before /proc was read the cgroup its packets carried.
fn cgroup_of_exited(
    procs: &mut HashMap<u32, ProcessInfo>,
    ids: &HashMap<u32, u64>,
    id_paths: &mut HashMap<u64, Option<String>>,
    tgid: u32,
) {
    if procs.get(&tgid).is_some_and(|i| i.cgroup.is_some()) {
        return;
    }
    let Some(&id) = ids.get(&tgid) else { return };
    let path = id_paths
        .entry(id)
        .or_insert_with(|| host::cgroup_paths(&[id]).remove(&id))
        .clone();
    if path.is_some() {
        procs.entry(tgid).or_default().cgroup = path;
    }
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

/// Reads a process's name and cgroup from /proc, once per process.
fn name_process(procs: &mut HashMap<u32, ProcessInfo>, tgid: u32) {
    if let Entry::Vacant(slot) = procs.entry(tgid) {
        if let Some(info) = ProcFs::default().process_info(tgid) {
            slot.insert(info);
        }
    }
}

/// Applies the `--pid` filter and the pods' cgroups of `--namespace`/`--pod`.
fn wanted(tx: &Attributed, opts: &ObserveOptions, procs: &HashMap<u32, ProcessInfo>) -> bool {
    let pids = &opts.pids;
    let cgroups = &opts.kube.cgroups;
    let pid_ok = pids.is_empty() || tx.owner.as_ref().is_some_and(|o| pids.contains(&o.tgid));
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
