//! `dnsdoc doctor` and `dnsdoc rules`: flags, help and examples, and their conversion
//! into the plain options the `doctor` command runs on.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CaptureArgs;
use crate::doctor::{DoctorOptions, ExplainOptions, RulesTask};
use crate::render::ReportFormat;
use crate::rules::report::FailOn;

/// The long description of `doctor`, shown after the options by `--help`: the
/// `Doctor` variant's doc comment in cli.rs sets the about text and would override a
/// `long_about` given here. A macro so `concat!` can join it with the examples.
macro_rules! doctor_about {
    () => {
        "\
Evaluate dnsdoc's health rules and say what is wrong with DNS on this node, how sure
it is, and what to do.

Judges either a live window (the same capture as `watch`; needs root) or a saved
snapshot (--snapshot FILE; needs no privileges). Built-in rules cover latency,
failures, timeouts, NXDOMAIN, SERVFAIL, truncation, per-process and per-server
outliers, local DNS servers and their upstream hop (slow, failing, forwarding to
themselves), search-path amplification (ndots), the conntrack race, the node's UDP
drops, capture loss and silence; with --coredns-metrics, CoreDNS's own counters. On Kubernetes nodes findings name
the pods (--namespace and --pod narrow the window). Add, override or disable rules
with --rules and --disable (format: docs/RULES.md).

Exit codes: 0 healthy, 1 WARNING findings with --fail-on warning, 2 CRITICAL findings,
3 could not collect (no privileges, no BPF, no cgroup v2, --coredns-metrics page
unreadable or not CoreDNS's), 4 invalid rules or snapshot,
5 other runtime error, 6 fewer queries than --require-traffic N, 64 bad usage."
    };
}

macro_rules! doctor_examples {
    () => {
        "\
Examples:
  sudo dnsdoc doctor --duration 30s
  dnsdoc doctor --snapshot dns.json                      # no root needed
  ssh node sudo dnsdoc watch --format json | dnsdoc doctor --snapshot -
  sudo dnsdoc doctor --fail-on warning --format json     # CI smoke check on a node
  sudo dnsdoc doctor --duration 1m --require-traffic 10  # ... that fails on a silent node
  dnsdoc doctor --snapshot dns.json --format markdown    # paste into the incident
  dnsdoc doctor --snapshot dns.json --rules /etc/dnsdoc/rules.d --disable dns_nxdomain_ratio
  sudo dnsdoc doctor --duration 1m --coredns-metrics http://10.96.0.10:9153/metrics
  dnsdoc doctor --list-rules"
    };
}

/// What `doctor` is for, in full: its `long_about` in cli/mod.rs.
pub const DOCTOR_ABOUT: &str = doctor_about!();

#[derive(Debug, Args)]
#[command(after_help = doctor_examples!())]
pub struct DoctorArgs {
    #[command(flatten)]
    pub capture: CaptureArgs,

    /// Judge this snapshot (from `watch -o` or `doctor -o`; `-` reads standard input)
    /// instead of observing. Needs no privileges.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "duration", "timeout", "ports", "cgroup", "pids", "ring_buffer_bytes",
        "max_pending", "output", "pcap", "namespaces", "pods",
    ])]
    pub snapshot: Option<PathBuf>,

    /// Also write the live window's snapshot to this file, atomically.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Rule file or directory (its *.toml) adding rules or overriding built-ins by id
    /// (repeatable; applied in order).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// Disable a rule by id (repeatable).
    #[arg(long = "disable", value_name = "RULE_ID")]
    pub disable: Vec<String>,

    /// What to print on stdout: the report as tables, as JSON (schema in
    /// docs/RULES.md), or as markdown to paste into an incident ticket.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,

    /// The lowest severity that makes the exit code non-zero.
    #[arg(long, value_enum, default_value_t = FailOn::Critical)]
    pub fail_on: FailOn,

    /// Print the rule catalog (after --rules and --disable) and exit; needs no root.
    #[arg(long)]
    pub list_rules: bool,

    /// Also judge a CoreDNS or NodeLocal DNSCache /metrics page (plain http, e.g.
    /// http://127.0.0.1:9153/metrics; node-cache's own setup errors are on :9353).
    /// Live, it is read at the window's start and end and the rules judge the increase
    /// over the window; with --snapshot it is read once and they judge the totals
    /// since CoreDNS started. An unreachable URL or a page without CoreDNS metrics is
    /// one line and exit 3.
    #[arg(long, value_name = "URL")]
    pub coredns_metrics: Option<String>,

    #[command(flatten)]
    pub traffic: super::RequireTraffic,
}

/// `dnsdoc explain RULE`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dnsdoc explain dns_high_latency
  dnsdoc explain dns_high_latency --rules /etc/dnsdoc/rules.d   # with site overrides")]
pub struct ExplainArgs {
    /// The rule id, as findings name it (dnsdoc doctor --list-rules lists them).
    #[arg(value_name = "RULE")]
    pub rule: String,

    /// Rule file or directory to load first, as for doctor --rules (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
}

impl ExplainArgs {
    /// The plain options `doctor::explain` takes.
    pub fn options(&self) -> ExplainOptions {
        ExplainOptions {
            rule: self.rule.clone(),
            rules: self.rules.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate rule files and rule test files; every problem with file:line:col.
    #[command(after_help = "\
Exit codes: 0 valid, 4 invalid.

Examples:
  dnsdoc rules check /etc/dnsdoc/rules.d
  dnsdoc rules check my_rule.toml my_rule.test.toml")]
    Check {
        /// Rule files (*.toml), rule test files (*.test.toml) or directories of them.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Run rule tests: snapshots and the findings they must produce.
    #[command(after_help = "\
Exit codes: 0 every case passed, 1 a case failed, 4 an invalid test, rule or snapshot file.

Examples:
  dnsdoc rules test tests/rules/            # every *.test.toml in the directory
  dnsdoc rules test my_rule.test.toml")]
    Test {
        /// Rule test files (*.test.toml) or directories of them.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// List the metrics rules can read, per scope.
    Metrics {
        /// Only the metrics of this scope.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
            crate::rules::Scope::ALL.map(crate::rules::Scope::as_str)))]
        scope: Option<String>,
        /// The metrics as a table, as JSON, or as markdown (the reference table of
        /// docs/RULES.md's metric section).
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Export the effective rules as Prometheus alerting rules over `dnsdoc serve`'s
    /// metrics: same thresholds, severities and summaries.
    #[command(long_about = EXPORT_ABOUT, after_help = "\
Examples:
  dnsdoc rules export --format prometheus -o /etc/prometheus/rules/dnsdoc.yml
  dnsdoc rules export --rules /etc/dnsdoc/rules.d --window 10m --for 5m
  promtool check rules dnsdoc.yml")]
    Export(super::continuous::ExportArgs),
}

const EXPORT_ABOUT: &str = "\
Turn the effective rules (built-ins, then --rules files, minus --disable) into a
Prometheus alerting-rules file over the metrics of `dnsdoc serve`. Each rule gives one
alert per severity with a threshold, labelled severity=warning|critical|info; the
metric is measured per dnsdoc (label `instance`) over --window, the rule's min_samples
and `when` conditions are `and` clauses, and its summary is the `summary` annotation.
Rules the metrics cannot express (per-process and per-server outliers, local-server
rules, truncation) are listed as skipped, with the reason, on stderr and in the file.

Exit codes: 0 written, 4 invalid rule files, 64 bad usage.";

impl DoctorArgs {
    /// The plain options `doctor::run` takes.
    pub fn options(&self) -> DoctorOptions {
        DoctorOptions {
            observe: self.capture.observe_options(),
            snapshot: self.snapshot.clone(),
            output: self.output.clone(),
            rules: self.rules.clone(),
            disable: self.disable.clone(),
            format: self.format,
            fail_on: self.fail_on,
            list_rules: self.list_rules,
            require_traffic: self.traffic.require_traffic,
            coredns_metrics: self.coredns_metrics.clone(),
        }
    }
}

impl RulesArgs {
    /// The task `doctor::run_rules` performs.
    pub fn task(&self) -> RulesTask {
        match &self.command {
            RulesCommand::Check { paths } => RulesTask::Check(paths.clone()),
            RulesCommand::Test { paths } => RulesTask::Test(paths.clone()),
            RulesCommand::Metrics { scope, format } => RulesTask::Metrics {
                scope: scope.clone(),
                format: *format,
            },
            RulesCommand::Export(a) => RulesTask::Export(a.options()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::rules::report::FailOn;
    use clap::Parser;

    fn doctor(args: &[&str]) -> Result<DoctorArgs, clap::Error> {
        let mut v = vec!["dnsdoc", "doctor"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).map(|c| match c.command {
            Command::Doctor(d) => d,
            _ => panic!("parsed as doctor"),
        })
    }

    #[test]
    fn doctor_defaults_and_conflicts() {
        let d = doctor(&[]).unwrap();
        assert_eq!(d.fail_on, FailOn::Critical);
        assert_eq!(d.format, ReportFormat::Table);
        assert_eq!(d.capture.ports, vec![53]);
        let d = doctor(&[
            "--snapshot",
            "x.json",
            "--rules",
            "a",
            "--rules",
            "b",
            "--disable",
            "dns_servfail",
        ])
        .unwrap();
        assert_eq!(d.rules.len(), 2);
        assert_eq!(d.disable, ["dns_servfail"]);
        // A saved snapshot has no capture to configure.
        for bad in [
            ["--snapshot", "x", "--duration", "5s"],
            ["--snapshot", "x", "-o", "y.json"],
        ] {
            let e = doctor(&bad).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{bad:?}"
            );
        }
        assert!(doctor(&["--fail-on", "info"]).is_err());
    }

    #[test]
    fn rules_subcommands_parse() {
        let c = Cli::try_parse_from(["dnsdoc", "rules", "check", "a.toml", "b"]).unwrap();
        let Command::Rules(RulesArgs {
            command: RulesCommand::Check { paths },
        }) = c.command
        else {
            panic!("rules check")
        };
        assert_eq!(paths.len(), 2);
        assert!(Cli::try_parse_from(["dnsdoc", "rules", "check"]).is_err());
        assert!(
            Cli::try_parse_from(["dnsdoc", "rules", "metrics", "--scope", "container"]).is_err()
        );
        for scope in crate::rules::Scope::ALL {
            Cli::try_parse_from(["dnsdoc", "rules", "metrics", "--scope", scope.as_str()])
                .unwrap_or_else(|e| panic!("--scope {scope}: {e}"));
        }
    }
}
