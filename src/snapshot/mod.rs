//! Stage 4, the snapshot: everything one observation window found, as plain data.
//!
//! This is dnsdoc's public data format (docs/SNAPSHOT.md): `watch -o` writes it, `doctor
//! --snapshot` and other tools read it. Add fields freely; renaming or removing one needs
//! a new `schema` number.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::exit::{InputError, UsageError};

mod servers;
pub use servers::{CorednsMetrics, CorednsZone, LocalServer, LoopStats, UpstreamHop};
mod domains;
pub use domains::{DomainStats, DomainSummary, SuffixStats};
mod lookups;
pub use lookups::{LookupNameStats, LookupStats, LookupSummary, SuffixTries};

/// Current snapshot schema version. 2 added `pods`, `lookups`, `node_counters`,
/// `processes[].pod` and `processes[].lookups`; 3 added `domains`.
pub const SCHEMA: u32 = 3;
/// Oldest schema this dnsdoc still reads: schemas 1 and 2 lack only what later ones added.
pub const OLDEST_READABLE_SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Snapshot {
    pub schema: u32,
    pub dnsdoc_version: String,
    pub window: Window,
    pub host: Host,
    pub capture: CaptureHealth,
    /// Client-side view: queries sent by local processes and the answers they got.
    pub totals: Totals,
    /// Client-side latency: query sent to response received.
    pub latency: Latency,
    pub processes: Vec<ProcessStats>,
    pub servers: Vec<ServerStats>,
    pub qtypes: Vec<QtypeStats>,
    pub names: Names,
    /// Server-side view: queries received by local DNS servers and their processing time.
    pub server_side: ServerSide,
    /// Client-side traffic of Kubernetes pods on this node (from process cgroups),
    /// busiest first; empty on a node without pods.
    #[serde(default)]
    pub pods: Vec<PodStats>,
    /// Client-side lookups: search-list chains of queries grouped into the one lookup
    /// they served.
    #[serde(default)]
    pub lookups: LookupSummary,
    /// The node's UDP error counters over the window (deltas); null when they could not
    /// be read or the window was not live (a capture file).
    #[serde(default)]
    pub node_counters: Option<NodeCounters>,
    /// Local DNS server processes, each with its client-facing and upstream hop.
    #[serde(default)]
    pub local_servers: Vec<LocalServer>,
    /// A CoreDNS /metrics page read by `doctor --coredns-metrics`; null otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coredns: Option<CorednsMetrics>,
    /// Per registered domain and per public suffix, per process: the features of the
    /// security rules (tunnels, DGA, exfiltration). Empty before schema 3.
    #[serde(default)]
    pub domains: DomainSummary,
}

/// What the node's network stack dropped during the window: deltas of /proc/net/snmp
/// and /proc/net/snmp6 (IPv4 and IPv6 summed) in dnsdoc's network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NodeCounters {
    /// UDP datagrams dropped because a socket's receive buffer was full.
    pub udp_rcvbuf_errors: u64,
    /// UDP datagrams not delivered (includes udp_rcvbuf_errors, bad checksums...).
    pub udp_in_errors: u64,
    /// UDP sends that failed for a full send buffer.
    pub udp_sndbuf_errors: u64,
    /// IP datagrams whose fragments could not be reassembled (large UDP answers).
    pub ip_reasm_fails: u64,
    /// Connections conntrack failed to insert (`insert_failed` of
    /// /proc/net/stat/nf_conntrack, all CPUs): the race that drops one of two parallel
    /// UDP queries. Null without conntrack.
    #[serde(default)]
    pub conntrack_insert_failed: Option<u64>,
    /// Packets conntrack dropped (`drop`); null without conntrack.
    #[serde(default)]
    pub conntrack_drop: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Window {
    /// RFC 3339 UTC.
    pub start: String,
    pub end: String,
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Host {
    pub hostname: String,
    pub kernel: String,
}

/// How complete the observation was. Findings on a lossy capture may be biased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CaptureHealth {
    /// Where the events came from: the live kernel probes, or a capture file with its
    /// packet count, link types, first and last timestamps and the addresses taken as
    /// this node's.
    #[serde(default)]
    pub source: String,
    /// The cgroup v2 directory the probes were attached to.
    pub cgroup: String,
    pub ports: Vec<u16>,
    /// `--pid` filter; empty when every process counts.
    pub pids: Vec<u32>,
    /// Queries without an answer after this long are timeouts.
    pub timeout_ms: u64,
    /// DNS packets the kernel hooks saw.
    pub packets: u64,
    /// Ring-buffer records received by user space.
    pub events: u64,
    /// DNS messages decoded from those records (UDP datagrams and TCP-stream messages).
    pub messages: u64,
    pub dropped: Dropped,
    /// DNS messages not captured whole (beyond 64 KiB of one packet, or a continuation
    /// record lost); each counted once even when seen at both ends on loopback. Header,
    /// question and, when within the captured bytes, OPT were still read.
    pub payload_cut: u64,
    /// Packets whose socket owner could not be stored in the kernel (socket storage
    /// allocation failed): their process may show as "(unknown)".
    #[serde(default)]
    pub owner_unrecorded: u64,
    /// Sockets whose owner no kernel hook recorded, found through sock_diag and /proc.
    #[serde(default)]
    pub owners_from_sock_diag: u64,
    /// What this kernel could not do and how the capture made up for it (empty on a
    /// kernel with every feature). Nothing here loses data; it says where owners came from.
    #[serde(default)]
    pub degraded: Vec<String>,
    /// Records whose DNS message could not be parsed (malformed, not DNS).
    pub parse_errors: u64,
    /// Times a TCP stream lost its framing and had to resync.
    pub tcp_desyncs: u64,
    /// Responses with no matching query (query sent before the window, or late).
    pub unmatched_responses: u64,
    /// Client queries still waiting for an answer, younger than the timeout, at the end.
    pub pending_at_end: u64,
    /// Server-side queries not yet answered at the end.
    pub server_pending_at_end: u64,
}

/// Events lost, by reason. `total > 0` means the other numbers are partial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Dropped {
    pub total: u64,
    /// The BPF ring buffer was full.
    pub ringbuf_full: u64,
    /// The kernel could not read a packet's payload.
    pub load_error: u64,
    /// A record could not be decoded in user space.
    pub decode_error: u64,
    /// Pending queries evicted because the tracking table was full.
    pub pending_evicted: u64,
}

/// Counts by response code: the header RCODE, extended by EDNS (RFC 6891) when the
/// response carries an OPT record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[allow(non_snake_case)]
pub struct Rcodes {
    pub NOERROR: u64,
    pub NXDOMAIN: u64,
    pub SERVFAIL: u64,
    pub REFUSED: u64,
    pub FORMERR: u64,
    pub NOTIMP: u64,
    /// Every other code; `other_by_name` says which.
    pub other: u64,
    /// `other`, by name: BADVERS, BADCOOKIE, YXDOMAIN, NOTAUTH, ..., RCODE<n>.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_by_name: BTreeMap<String, u64>,
}

impl Rcodes {
    /// Adds another tally's counts (a worker's, a process's, a name's).
    pub fn merge(&mut self, o: &Rcodes) {
        self.NOERROR += o.NOERROR;
        self.NXDOMAIN += o.NXDOMAIN;
        self.SERVFAIL += o.SERVFAIL;
        self.REFUSED += o.REFUSED;
        self.FORMERR += o.FORMERR;
        self.NOTIMP += o.NOTIMP;
        self.other += o.other;
        for (k, v) in &o.other_by_name {
            *self.other_by_name.entry(k.clone()).or_default() += v;
        }
    }

    pub fn add(&mut self, rcode: u16) {
        match rcode {
            0 => self.NOERROR += 1,
            1 => self.FORMERR += 1,
            2 => self.SERVFAIL += 1,
            3 => self.NXDOMAIN += 1,
            4 => self.NOTIMP += 1,
            5 => self.REFUSED += 1,
            _ => {
                self.other += 1;
                *self
                    .other_by_name
                    .entry(crate::codes::rcode_name(rcode).into_owned())
                    .or_default() += 1;
            }
        }
    }

    /// Responses that mean the resolution failed: all but NOERROR and NXDOMAIN.
    pub fn failed(&self) -> u64 {
        self.SERVFAIL + self.REFUSED + self.FORMERR + self.NOTIMP + self.other
    }

    pub fn total(&self) -> u64 {
        self.NOERROR + self.NXDOMAIN + self.failed()
    }
}

/// The counts every group (node, process, server, qtype, name) carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Counts {
    /// Queries sent (retransmissions of the same query not counted again).
    pub queries: u64,
    pub queries_per_s: f64,
    /// Queries answered.
    pub responses: u64,
    /// Queries unanswered after `capture.timeout_ms`.
    pub timeouts: u64,
    pub rcodes: Rcodes,
    /// timeouts + SERVFAIL + REFUSED + FORMERR + NOTIMP + other RCODEs.
    pub failures: u64,
    /// failures / (responses + timeouts); 0 when nothing completed.
    pub failure_ratio: f64,
    /// NXDOMAIN / responses.
    pub nxdomain_ratio: f64,
    /// Seconds from this group's first query to its last (at least 1 s, at most the
    /// window): a client that ran for 2 s of a 60 s window is not averaged over 60.
    #[serde(default)]
    pub active_s: f64,
    /// queries / active_s: the rate while it was active.
    #[serde(default)]
    pub queries_per_active_s: f64,
}

/// Node-wide client-side totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Totals {
    #[serde(flatten)]
    pub counts: Counts,
    /// Responses with the TC bit set.
    pub truncated: u64,
    /// Truncated answers whose question the same process then asked over TCP, counted
    /// in the window of the retry (in continuous runs, the answer may be in the one
    /// before).
    pub truncated_retried_tcp: u64,
    /// The same query (socket, id, question) sent again before an answer.
    pub retransmissions: u64,
    pub udp_queries: u64,
    pub tcp_queries: u64,
    pub ipv4_queries: u64,
    pub ipv6_queries: u64,
}

/// Latency summary in milliseconds; fields are null when there were no samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Latency {
    pub samples: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// Process id (tgid).
    pub pid: u32,
    /// Process name from /proc/PID/comm (the thread name from the kernel if it exited).
    pub comm: String,
    /// cgroup v2 path from /proc/PID/cgroup, when known.
    pub cgroup: Option<String>,
    /// The Kubernetes pod and container it runs in; absent for host processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    #[serde(flatten)]
    pub counts: Counts,
    pub latency: Latency,
    /// Its lookups (search-list chains grouped).
    #[serde(default)]
    pub lookups: LookupStats,
}

/// Which pod and container a process runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PodRef {
    /// Empty when the node has no record of the pod's names.
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// containerd, crio, docker, or unknown (a bare id under the cgroupfs driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

impl PodRef {
    /// "namespace/pod", or the UID when the node does not name it.
    pub fn label(&self) -> String {
        if self.pod.is_empty() {
            format!("(uid {})", self.uid)
        } else {
            format!("{}/{}", self.namespace, self.pod)
        }
    }
}

/// One pod's client-side DNS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodStats {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// guaranteed, burstable or besteffort (its cgroup level).
    pub qos: String,
    /// Containers whose processes sent queries (names, or ids when unnamed).
    pub containers: Vec<String>,
    /// The pod's cgroup v2 path.
    pub cgroup: String,
    /// Processes of this pod that sent queries.
    pub processes: u64,
    #[serde(flatten)]
    pub counts: Counts,
    pub latency: Latency,
    pub lookups: LookupStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    /// "ADDR:PORT" ("[::1]:53" for IPv6).
    pub server: String,
    pub protocol: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub latency: Latency,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QtypeStats {
    pub qtype: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub latency: Latency,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameStats {
    pub name: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Names {
    /// Most-queried names, busiest first.
    pub by_volume: Vec<NameStats>,
    /// Names with the most NXDOMAIN, SERVFAIL, REFUSED or timeouts, worst first.
    pub by_failures: Vec<NameStats>,
    /// Distinct names seen (up to the tracking limit).
    pub distinct: u64,
    /// Queries for names beyond the tracking limit (counted in totals, not per name).
    pub untracked_queries: u64,
}

/// Local DNS servers (dnsmasq, CoreDNS, systemd-resolved...) seen answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServerSide {
    #[serde(flatten)]
    pub counts: Counts,
    /// Query received to response sent: the server's own processing time.
    pub latency: Latency,
    /// Queries re-sent by their client (same id and question) while the first was still
    /// unanswered here; the client side counts the same re-sends in `totals`.
    #[serde(default)]
    pub retransmissions: u64,
    pub listeners: Vec<ListenerStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerStats {
    /// Local "ADDR:PORT" the server answered on.
    pub address: String,
    pub protocol: String,
    pub pid: u32,
    pub comm: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub latency: Latency,
}

impl Snapshot {
    /// Queries seen: sent by local clients or received by local servers, whichever is
    /// more (a query on loopback is both, and counts once).
    pub fn queries_seen(&self) -> u64 {
        self.totals
            .counts
            .queries
            .max(self.server_side.counts.queries)
    }

    /// Writes the snapshot as pretty JSON, atomically: a temporary file in the same
    /// directory, fsync, then rename. A crash never leaves half a file behind.
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        // `-o /dev/stdout` or a FIFO: written in place (a rename would replace the
        // device node with a regular file).
        if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            serde_json::to_writer_pretty(&mut f, self)?;
            f.write_all(b"\n")?;
            return Ok(());
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .with_context(|| format!("{}: not a file path", path.display()))?;
        let tmp = dir.join(format!(
            ".{}.tmp.{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let write = || -> Result<()> {
            let mut f =
                fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            serde_json::to_writer_pretty(&mut f, self)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, path)
                .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
        };
        write().inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }

    /// Writes the snapshot to `path`; when that fails (disk full, read-only mount),
    /// to a file in the temporary directory instead, so the window is not lost. Returns
    /// the fallback's path with the first error, or the error when both failed.
    pub fn write_or_fallback(
        &self,
        path: &Path,
    ) -> Result<(), (anyhow::Error, Option<std::path::PathBuf>)> {
        let Err(e) = self.write_atomic(path) else {
            return Ok(());
        };
        let e = e.context(format!("writing snapshot {}", path.display()));
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let fallback = std::env::temp_dir().join(format!(
            "dnsdoc-snapshot-{stamp}-{}.json",
            std::process::id()
        ));
        match self.write_atomic(&fallback) {
            Ok(()) => Err((e, Some(fallback))),
            Err(_) => Err((e, None)),
        }
    }

    /// Reads a snapshot file (`-`: standard input); a missing, unreadable or invalid
    /// file is an [`InputError`].
    pub fn read(path: &Path) -> Result<Snapshot> {
        let json = Self::read_json(path).map_err(InputError)?;
        Ok(Self::from_json(json, path).map_err(InputError)?)
    }

    /// Reads a snapshot file as plain JSON, for tools that edit it before `from_json`.
    /// `-` reads standard input (`dnsdoc watch --format json | dnsdoc doctor --snapshot -`).
    pub fn read_json(path: &Path) -> Result<serde_json::Value, String> {
        let text = if path == Path::new("-") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
                .map_err(|e| format!("cannot read a snapshot from standard input: {e}"))?;
            text
        } else {
            fs::read_to_string(path)
                .map_err(|e| format!("cannot read snapshot {}: {e}", path.display()))?
        };
        serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a dnsdoc snapshot: {e}", path.display()))
    }

    /// Turns JSON read from `path` into a snapshot of the schema this dnsdoc reads.
    pub fn from_json(json: serde_json::Value, path: &Path) -> Result<Snapshot, String> {
        let snap: Snapshot = serde_json::from_value(json)
            .map_err(|e| format!("{}: not a dnsdoc snapshot: {e}", path.display()))?;
        if !(OLDEST_READABLE_SCHEMA..=SCHEMA).contains(&snap.schema) {
            return Err(format!(
                "{}: snapshot schema {} is not supported (this dnsdoc reads schemas {OLDEST_READABLE_SCHEMA} to {SCHEMA})",
                path.display(),
                snap.schema
            ));
        }
        Ok(snap)
    }
}

/// Refuses an output path whose directory does not exist before the window starts, so a
/// typo does not cost a whole observation.
pub fn check_output_path(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(UsageError(format!(
            "-o {}: directory {} does not exist",
            path.display(),
            dir.display()
        ))
        .into());
    }
    if path.is_dir() {
        return Err(UsageError(format!("-o {}: is a directory", path.display())).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
