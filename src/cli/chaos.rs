//! `dnsdoc chaos`: flags, help and examples, and their conversion into the plain
//! options the `chaos` command runs on.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::chaos::scenario::Intensity;
use crate::chaos::{names, safety, ChaosOptions};
use crate::render::Format;

/// The long description, shown by `dnsdoc chaos --help` after the options.
macro_rules! about {
    () => {
        "\
Induce a DNS fault on purpose, watch dnsdoc detect it, and get a PASS/FAIL for each
rule that should have fired. A rule nobody has seen fire is a guess.

Every scenario sends its own load (hickory-proto clients, at most --qps lookups per
second from --concurrency workers) to --target only: never the system resolver, never a
public server. A target outside loopback needs --allow-remote and gets lower limits.
search-path and conntrack-race test the stub resolver itself, so their clients are real
glibc (getent, one process per lookup) in private mount namespaces whose resolv.conf is
a bind mount naming a relay dnsdoc runs on 127.53.x.y:53, which forwards to --target
(conntrack-race: and loses the second query of each A/AAAA pair once); the machine's
resolv.conf is never touched. They need root.
dns-loss also attaches a BPF program that drops DNS packets to and from the target, and
upstream-timeout one that drops those to and from the target's --upstream; it is a BPF
link that dies with dnsdoc, so even kill -9 leaves nothing behind.

With --verify, the same capture as `watch` runs during the scenario, scoped to the
scenario's own queries (this process, the target's port, --cgroup), and each paired rule
is checked: PASS when it fired at WARNING or above. --baseline runs the healthy twin of a
scenario (same length and shape, no fault) and expects the paired rules to stay quiet.

With --verify the report reconciles the clients' lookups with the queries dnsdoc saw
(re-sends with new ids, TCP after truncation) over the same interval, times the same
lookups in the client, in the kernel and at the target, and says why a paired rule did
not fire: the value it saw, its threshold, the samples, and whether the target held or
the rule was blind.

Ctrl-C stops the load and removes the fault at once, then prints the summary; a run cut
short cannot pass.
Exit codes: 0 done (all checks passed), 1 a --verify check failed, 3 no BPF/privileges,
4 bad rule file, 64 bad usage, 130 cut short by Ctrl-C or SIGTERM."
    };
}

macro_rules! examples {
    () => {
        "\
Examples:
  dnsdoc chaos --list
  dnsdoc chaos --induce nxdomain-storm --target 127.0.0.1:5353 --duration 20s --yes
  sudo dnsdoc chaos --induce dns-flood --target 127.0.0.1:5353 --verify
  sudo dnsdoc chaos --induce dns-flood --target 127.0.0.1:5353 --verify --baseline
  sudo dnsdoc chaos --induce dns-loss --target [::1]:53 --loss 30% --duration 1m --verify
  sudo dnsdoc chaos --induce truncation --target 127.0.0.1:5353 --verify
  sudo dnsdoc chaos --induce upstream-timeout --target 127.0.0.1:53 --upstream 127.0.0.1:5300 \\
       --cgroup system.slice/unbound.service --verify
  sudo dnsdoc chaos --induce search-path --target 127.0.0.1:5353 --verify
  sudo dnsdoc chaos --induce conntrack-race --target 127.0.0.1:5353 --verify --baseline
  sudo dnsdoc chaos --induce dns-flood --target 127.0.0.1:5353 --qps 50000 --concurrency 1024 \\
       --verify --rules ./tuned-rules.toml --format json > gameday.json"
    };
}

/// `dnsdoc chaos` options.
#[derive(Debug, Args)]
#[command(after_help = examples!(), after_long_help = concat!(about!(), "\n\n", examples!()))]
pub struct ChaosArgs {
    /// List the scenarios, what each does and the rules it should make fire.
    #[arg(long, conflicts_with = "induce")]
    pub list: bool,

    /// The scenario to run (see --list for what each does and the rules it pairs).
    #[arg(
        long,
        value_name = "NAME",
        value_parser = clap::builder::PossibleValuesParser::new(crate::chaos::registry::names())
    )]
    pub induce: Option<String>,

    /// The DNS server under test, as IP:PORT (127.0.0.1:5353, [::1]:53). Required.
    #[arg(long, value_name = "ADDR:PORT")]
    pub target: Option<String>,

    /// upstream-timeout: the server the target forwards to, as IP:PORT. Its DNS
    /// packets are dropped inside --cgroup, where the target must run.
    #[arg(long, value_name = "ADDR:PORT")]
    pub upstream: Option<String>,

    /// Allow a target outside loopback (then at most 1000 qps, 64 workers, 5 minutes).
    #[arg(long)]
    pub allow_remote: bool,

    /// Allow a target listed in /etc/resolv.conf: everything on this host depends on it.
    #[arg(long, hide_short_help = true)]
    pub allow_system_resolver: bool,

    /// How long the load (and the fault) lasts; at most 10m (5m for a remote target).
    #[arg(short, long, default_value = "30s", value_parser = super::parse_duration)]
    pub duration: Duration,

    /// How hard the scenario pushes (numbers per scenario in --list).
    #[arg(long, value_enum, default_value_t = Intensity::Medium)]
    pub intensity: Intensity,

    /// Most lookups per second, overriding the intensity (at most 100000).
    #[arg(long, value_name = "N")]
    pub qps: Option<u32>,

    /// Concurrent clients (lookups in flight), overriding the intensity (at most 4096).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,

    /// dns-loss: fraction of packets to drop, overriding the intensity (0.2 or 20%).
    #[arg(long, value_name = "FRACTION", value_parser = safety::parse_fraction)]
    pub loss: Option<f64>,

    /// Cluster domain the scenario's names are built under.
    #[arg(long, value_name = "DOMAIN", default_value = "cluster.local",
          value_parser = names::parse_domain)]
    pub domain: String,

    /// cgroup v2 subtree the fault applies to and --verify watches (path under the
    /// cgroup2 mount, or absolute). Default: the root (the whole machine). dnsdoc itself
    /// must run inside it for --verify.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,

    /// Capture during the scenario and check that each paired rule fires (needs root).
    #[arg(long)]
    pub verify: bool,

    /// Run the healthy twin (same length and shape, no fault); with --verify, paired
    /// rules must NOT fire.
    #[arg(long)]
    pub baseline: bool,

    /// Extra rule file or directory for --verify, e.g. tuned thresholds (repeatable).
    #[arg(long = "rules", value_name = "PATH", requires = "verify")]
    pub rules: Vec<PathBuf>,

    /// With --verify: write the snapshot (JSON) to this file, for `dnsdoc doctor`.
    #[arg(short, long, value_name = "FILE", requires = "verify")]
    pub output: Option<PathBuf>,

    /// Do not ask for confirmation on a terminal.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// What to print on stdout: the run's summary, or its report as JSON (load,
    /// fault, reconciliation, checks, findings and snapshot; see docs/CHAOS.md).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// No live progress line on stderr.
    #[arg(long)]
    pub no_progress: bool,
}

impl ChaosArgs {
    /// The plain options `chaos::run` takes.
    pub fn options(&self) -> ChaosOptions {
        ChaosOptions {
            list: self.list,
            induce: self.induce.clone(),
            target: self.target.clone(),
            upstream: self.upstream.clone(),
            allow_remote: self.allow_remote,
            allow_system_resolver: self.allow_system_resolver,
            duration: self.duration,
            intensity: self.intensity,
            qps: self.qps,
            concurrency: self.concurrency,
            loss: self.loss,
            domain: self.domain.clone(),
            cgroup: self.cgroup.clone(),
            verify: self.verify,
            baseline: self.baseline,
            rules: self.rules.clone(),
            output: self.output.clone(),
            yes: self.yes,
            format: self.format,
            progress: !self.no_progress,
        }
    }
}
