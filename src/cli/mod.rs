//! The command line (clap), in one place: every flag, its help and examples, and the
//! conversion of parsed arguments into the plain option structs the commands take.
//! Commands never import this module; `main.rs` parses here and calls them.

mod chaos;
mod checks;
mod continuous;
mod doctor;

pub use checks::one_line;

pub use chaos::ChaosArgs;
pub use continuous::{ExportArgs, ServeArgs, TopArgs};
pub use doctor::{DoctorArgs, ExplainArgs, RulesArgs, RulesCommand, DOCTOR_ABOUT};

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::pipeline::ObserveOptions;
use crate::render::Format;
use crate::watch::WatchOptions;

/// dnsdoc: a DNS doctor for Linux nodes.
///
/// Sees every DNS query and response on this machine from inside the kernel (eBPF
/// cgroup hooks; UDP and TCP, IPv4 and IPv6) and reports latency percentiles, failure
/// ratios, and the processes, servers and names behind them.
#[derive(Debug, Parser)]
#[command(name = "dnsdoc", version = crate::version::VERSION, about, long_about,
          propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Observe DNS traffic for a window and report what was seen (needs root).
    #[command(long_about = WATCH_ABOUT, after_help = WATCH_EXAMPLES)]
    Watch(WatchArgs),
    /// Evaluate the DNS health rules on a live window or a saved snapshot.
    #[command(long_about = DOCTOR_ABOUT)]
    Doctor(DoctorArgs),
    /// Validate and test rule files; export them as Prometheus alerts.
    Rules(RulesArgs),
    /// A live view of DNS on this node, refreshed every second (q quits).
    #[command(long_about = continuous::TOP_ABOUT)]
    Top(TopArgs),
    /// Run continuously and serve Prometheus metrics, the last snapshot and findings.
    #[command(long_about = continuous::SERVE_ABOUT, after_help = continuous::SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Explain a rule offline: what it judges, its thresholds and why, what to do.
    Explain(ExplainArgs),
    /// Induce a DNS fault on purpose (game day) and check that the rules fire.
    Chaos(ChaosArgs),
    /// Print dnsdoc's version and commit (as -V does) and what this kernel lets its
    /// probes do.
    #[command(long_about = VERSION_ABOUT)]
    Version(VersionArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
Examples:
  dnsdoc completions bash > /etc/bash_completion.d/dnsdoc
  dnsdoc completions zsh > \"${fpath[1]}/_dnsdoc\"
  dnsdoc completions fish > ~/.config/fish/completions/dnsdoc.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from the same definitions as --help.
    #[command(after_help = "Example:\n  dnsdoc man | gzip > /usr/share/man/man1/dnsdoc.1.gz")]
    Man,
}

/// Writes the completion script for `shell` to stdout.
pub fn print_completions(shell: clap_complete::Shell) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "dnsdoc", &mut std::io::stdout());
}

/// Writes the man page (dnsdoc.1: synopsis, options, the subcommands) to stdout.
pub fn print_man_page() -> std::io::Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    match clap_mangen::Man::new(cmd).render(&mut std::io::stdout().lock()) {
        // `dnsdoc man | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

const VERSION_ABOUT: &str = "\
Print dnsdoc's version and the git commit it was built from (the first line is what
`dnsdoc -V` prints), the kernel release, the cgroup v2 mount, and the BPF features
dnsdoc probed on this kernel (ring buffers; whether cgroup_skb programs may read the
current task; whether sock_addr programs may use socket storage), with what dnsdoc does
differently where a feature is missing. Probing loads tiny BPF programs, so it needs
root (or CAP_BPF); without it, the features are reported as not probed.";

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// What to print on stdout: text, or the same facts as JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

const WATCH_ABOUT: &str = "\
Observe every DNS query and response for a bounded window, then print a summary and
write a snapshot: latency percentiles, timeouts, NXDOMAIN/SERVFAIL/REFUSED counts,
truncation and TCP retries, per process, per server, per query type and per name.

Local DNS servers (dnsmasq, CoreDNS, systemd-resolved) are reported apart, with their
own processing time, so a query seen at both ends on loopback is never counted twice.

Needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (run as root, or grant exactly those).
Ctrl-C or SIGTERM ends the window early and still produces the summary and the snapshot.";

const WATCH_EXAMPLES: &str = "\
Examples:
  sudo dnsdoc watch --duration 30s
  sudo dnsdoc watch --duration 1m -o dns.json             # save a snapshot for `doctor`
  sudo dnsdoc watch --cgroup system.slice/nginx.service   # one service only
  sudo dnsdoc watch --namespace shop --pod web-7d9f       # one Kubernetes pod
  sudo dnsdoc watch --port 53 --port 5353 --format json | jq .latency
  sudo dnsdoc watch --interval 10s --format json          # one JSON line per 10 s, until Ctrl-C
  sudo dnsdoc watch --interval 1m --textfile /var/lib/node_exporter/textfile_collector
  sudo dnsdoc watch --duration 30s --require-traffic 1      # CI: fail (exit 6) if DNS is silent";

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub capture: CaptureArgs,

    /// Write the snapshot (JSON) to this file, atomically.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// What to print on stdout: the summary tables, or the snapshot as JSON (schema in
    /// docs/SNAPSHOT.md).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Rows per summary table (processes, servers, query types, names, listeners);
    /// a table with more says how many more. The snapshot has every row.
    #[arg(long, value_name = "N", default_value_t = crate::render::summary::ROWS,
          value_parser = checks::parse_top)]
    pub top: usize,

    #[command(flatten)]
    pub continuous: continuous::WatchContinuousArgs,

    #[command(flatten)]
    pub traffic: RequireTraffic,
}

/// `--require-traffic`, shared by `watch` and `doctor`.
#[derive(Debug, Clone, Args)]
pub struct RequireTraffic {
    /// Exit 6 when fewer than N DNS queries were seen (sent by local clients or
    /// received by local servers): a CI smoke check on a quiet node, or a capture
    /// scoped to the wrong cgroup or port, must not pass silently.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub require_traffic: Option<u64>,
}

/// How to observe: shared by `watch`, `doctor` (live mode) and `chaos --verify`.
#[derive(Debug, Clone, Args)]
pub struct CaptureArgs {
    /// How long to observe ("10s", "2m", "500ms"; at most 24h).
    #[arg(short, long, default_value = "10s", value_parser = parse_window)]
    pub duration: Duration,

    /// A query unanswered for this long counts as a timeout.
    #[arg(long, default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// DNS port to watch, UDP and TCP (repeatable, at most 8).
    #[arg(short, long = "port", value_name = "PORT", default_values_t = [53u16],
          value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,

    /// Only this cgroup v2 subtree (path under the cgroup2 mount, or absolute).
    /// Default: the cgroup v2 root, i.e. the whole machine.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,

    /// Only these client processes (repeatable). Local DNS servers' side is never
    /// filtered: it is the server's view of every query it received.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Only the Kubernetes pods of this namespace (repeatable). Pods are found from
    /// their cgroups and named from the node's files (see --node-root); no API server.
    #[arg(long = "namespace", value_name = "NS", conflicts_with = "cgroup")]
    pub namespaces: Vec<String>,

    /// Only the Kubernetes pod with this name or UID (repeatable; with --namespace,
    /// both must match).
    #[arg(long = "pod", value_name = "NAME", conflicts_with = "cgroup")]
    pub pods: Vec<String>,

    /// The node's root directory, where var/log/pods and run/containerd are read for
    /// pod and container names: `/` on the node, the host mount when dnsdoc runs in a
    /// pod (e.g. /host).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub node_root: PathBuf,

    /// Kernel ring buffer size: bytes, or with a unit (512K, 4M, 1G), rounded up to a
    /// power of two. The default holds about 30 ms of a saturated 2-core node's DNS
    /// (500K packets/s of ~170-byte records, zero drops measured); lost records are
    /// counted and mark the capture PARTIAL.
    #[arg(long, value_name = "SIZE", default_value_t = 2 << 20, hide_short_help = true,
          value_parser = checks::parse_ring_bytes)]
    pub ring_buffer_bytes: u32,

    /// Most queries tracked in flight; beyond, the oldest are evicted and counted.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 200_000,
        hide_short_help = true,
        value_parser = checks::parse_max_pending
    )]
    pub max_pending: usize,

    /// No live progress line on stderr.
    #[arg(long)]
    pub no_progress: bool,

    /// Read a capture file (pcap or pcapng, e.g. from `tcpdump -i any -w FILE port 53`)
    /// instead of the kernel: no root needed. The window is the file's first to last DNS
    /// packet; client and server roles come from ports; there are no processes.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "duration", "cgroup", "pids", "ring_buffer_bytes", "namespaces", "pods",
    ])]
    pub pcap: Option<PathBuf>,

    /// With --pcap: an address of the node the capture was taken on (repeatable).
    /// Default: loopback plus the address most DNS packets have at one end.
    #[arg(long = "local", value_name = "ADDR", requires = "pcap")]
    pub local: Vec<std::net::IpAddr>,
}

impl WatchArgs {
    /// The plain options `watch::run` takes.
    pub fn options(&self) -> WatchOptions {
        WatchOptions {
            observe: self.capture.observe_options(),
            output: self.output.clone(),
            format: self.format,
            continuous: self.continuous.options(),
            require_traffic: self.traffic.require_traffic,
            top: self.top,
        }
    }
}

impl CaptureArgs {
    /// The pipeline's options for one window.
    pub fn observe_options(&self) -> ObserveOptions {
        let a = self;
        ObserveOptions {
            duration: a.duration,
            timeout: a.timeout,
            ports: a.ports.clone(),
            cgroup: a.cgroup.clone(),
            pids: a.pids.clone(),
            ring_buffer_bytes: a.ring_buffer_bytes,
            max_pending: a.max_pending,
            progress: !a.no_progress,
            attached: None,
            pcap: self.pcap.clone(),
            local: self.local.clone(),
            kube: crate::pipeline::KubeOptions {
                pods: crate::host::kube::PodFilter {
                    namespaces: a.namespaces.clone(),
                    pods: a.pods.clone(),
                },
                node_root: a.node_root.clone(),
                cgroups: Vec::new(),
            },
        }
    }
}

/// A duration such as "30s"; shared by every command's duration flags.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 10s, 2m, 500ms)"))
}

fn parse_window(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > Duration::from_secs(24 * 3600) {
        return Err("must be more than 0 and at most 24h".into());
    }
    Ok(d)
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
        return Err("must be between 1ms and 1h".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse_window("10s"), Ok(Duration::from_secs(10)));
        assert!(parse_window("0s").is_err());
        assert!(parse_window("25h").is_err());
        assert!(parse_window("ten").unwrap_err().contains("examples"));
        assert!(parse_timeout("0ms").is_err());
    }

    #[test]
    fn watch_defaults() {
        let cli = Cli::try_parse_from(["dnsdoc", "watch"]).unwrap();
        let Command::Watch(w) = cli.command else {
            panic!("parsed as watch")
        };
        assert_eq!(w.capture.ports, vec![53]);
        assert_eq!(w.capture.duration, Duration::from_secs(10));
        assert_eq!(w.capture.timeout, Duration::from_secs(5));
        assert!(Cli::try_parse_from(["dnsdoc", "watch", "--port", "0"]).is_err());
    }
}
