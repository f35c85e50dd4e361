//! `dnsdoc doctor` and `dnsdoc rules`: judge a window against the health rules, and
//! the tooling to check and test rule files.
//!
//! Rules are loaded (and validated) before any capture starts, so a typo in a rule
//! file fails in a second, not after a one-minute window.

pub mod report;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use crate::cli::CaptureArgs;
use crate::exit;
use crate::render;
use crate::rules::{self, testing, Diag, RuleSet, Scope};
use crate::snapshot::Snapshot;

pub use report::{FailOn, Report, Status};

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
outliers, local DNS servers, capture loss and silence. Add, override or disable rules
with --rules and --disable (format: docs/RULES.md).

Exit codes: 0 healthy, 1 WARNING findings with --fail-on warning, 2 CRITICAL findings,
3 could not collect (no privileges, no BPF, no cgroup v2), 4 invalid rules or snapshot,
5 other runtime error, 64 bad usage."
    };
}

macro_rules! doctor_examples {
    () => {
        "\
Examples:
  sudo dnsdoc doctor --duration 30s
  dnsdoc doctor --snapshot dns.json                      # no root needed
  sudo dnsdoc doctor --fail-on warning --format json     # CI smoke check on a node
  dnsdoc doctor --snapshot dns.json --format markdown    # paste into the incident
  dnsdoc doctor --snapshot dns.json --rules /etc/dnsdoc/rules.d --disable dns_nxdomain_ratio
  dnsdoc doctor --list-rules"
    };
}

/// What `doctor` is for, in full: its `long_about` in cli.rs.
pub const DOCTOR_ABOUT: &str = doctor_about!();

/// Output format of `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    /// Header, findings table, details (colour on a terminal).
    Table,
    /// The report as JSON (schema in docs/RULES.md).
    Json,
    /// Markdown, to paste into an incident ticket.
    Markdown,
}

#[derive(Debug, Args)]
#[command(after_help = doctor_examples!())]
pub struct DoctorArgs {
    #[command(flatten)]
    pub capture: CaptureArgs,

    /// Judge this snapshot (from `watch -o` or `doctor -o`) instead of observing.
    /// Needs no privileges.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "duration", "timeout", "ports", "cgroup", "pids", "ring_buffer_bytes",
        "max_pending", "output",
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

    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = DoctorFormat::Table)]
    pub format: DoctorFormat,

    /// The lowest severity that makes the exit code non-zero.
    #[arg(long, value_enum, default_value_t = FailOn::Critical)]
    pub fail_on: FailOn,

    /// Print the rule catalog (after --rules and --disable) and exit; needs no root.
    #[arg(long)]
    pub list_rules: bool,
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
            ["node", "process", "server", "qtype", "name", "listener"]))]
        scope: Option<String>,
        /// Table, JSON, or markdown (the reference table of docs/RULES.md).
        #[arg(long, value_enum, default_value_t = DoctorFormat::Table)]
        format: DoctorFormat,
    },
}

/// Built-ins, then each `--rules` path in order, then `--disable`.
pub(crate) fn build_rules(paths: &[PathBuf], disable: &[String]) -> Result<RuleSet> {
    let mut set = RuleSet::builtin()?;
    for p in paths {
        set.load_path(p)?;
    }
    for id in disable {
        set.disable(id)?;
    }
    Ok(set)
}

/// Runs `dnsdoc doctor`; returns the exit code.
pub fn run(args: &DoctorArgs) -> Result<i32> {
    if let Some(path) = &args.output {
        crate::snapshot::check_output_path(path)?;
    }
    let rules = build_rules(&args.rules, &args.disable)?;
    let mut out = std::io::stdout().lock();
    if args.list_rules {
        match args.format {
            DoctorFormat::Json => {
                serde_json::to_writer_pretty(&mut out, rules.rules())?;
                writeln!(out)?;
            }
            DoctorFormat::Table => {
                write!(out, "{}", render::findings::catalog_table(rules.rules()))?
            }
            DoctorFormat::Markdown => {
                write!(out, "{}", render::findings::catalog_markdown(rules.rules()))?
            }
        }
        return Ok(exit::OK);
    }
    let (snap, source) = match &args.snapshot {
        Some(path) => (Snapshot::read(path)?, path.display().to_string()),
        None => {
            let snap = crate::pipeline::observe(&args.capture.observe_options())?;
            if let Some(path) = &args.output {
                snap.write_atomic(path)
                    .with_context(|| format!("writing snapshot {}", path.display()))?;
            }
            (snap, "live".to_string())
        }
    };
    let report = Report::new(
        &snap,
        source,
        rules::evaluate_all(&snap, &rules),
        args.fail_on,
    );
    match args.format {
        DoctorFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        DoctorFormat::Table => write!(
            out,
            "{}",
            render::findings::table(&report, render::style::color_stdout())
        )?,
        DoctorFormat::Markdown => write!(out, "{}", render::findings::markdown(&report))?,
    }
    out.flush()?;
    if let Some(path) = &args.output {
        eprintln!("dnsdoc: snapshot written to {}", path.display());
    }
    Ok(report.exit_code)
}

/// Runs `dnsdoc rules ...`; returns the exit code.
pub fn run_rules(args: &RulesArgs) -> Result<i32> {
    match &args.command {
        RulesCommand::Check { paths } => check(paths),
        RulesCommand::Test { paths } => test(paths),
        RulesCommand::Metrics { scope, format } => {
            let scope = scope.as_deref().and_then(Scope::parse);
            let text = match format {
                DoctorFormat::Markdown => render::findings::metrics_markdown(scope),
                DoctorFormat::Json => format!("{:#}\n", render::findings::metrics_json(scope)),
                DoctorFormat::Table => render::findings::metrics_table(scope),
            };
            print!("{text}");
            Ok(exit::OK)
        }
    }
}

fn is_test_file(p: &Path) -> bool {
    p.to_string_lossy().ends_with(".test.toml")
}

fn print_diags(diags: &[Diag]) {
    for d in diags {
        eprintln!("dnsdoc: error: {d}");
    }
}

/// `rules check`: each path is checked on its own, on top of the built-ins (so
/// overrides of built-in ids are valid), and every problem is printed.
fn check(paths: &[PathBuf]) -> Result<i32> {
    let builtin = RuleSet::builtin()?;
    let mut problems = 0;
    for path in paths {
        let mut test_files = Vec::new();
        if path.is_dir() {
            if let Ok(files) = testing::test_files(path) {
                test_files = files;
            }
            if test_files.is_empty() || crate::rules::load::rule_files(path).is_ok() {
                problems += check_rules(&builtin, path);
            }
        } else if is_test_file(path) {
            test_files.push(path.clone());
        } else {
            problems += check_rules(&builtin, path);
        }
        for tf in test_files {
            match testing::load_test_file(&tf) {
                Ok(t) => println!("ok: {}: {} test cases", tf.display(), t.cases.len()),
                Err(d) => {
                    problems += d.len();
                    print_diags(&d);
                }
            }
        }
    }
    if problems > 0 {
        eprintln!(
            "dnsdoc: {problems} problem{} found",
            if problems == 1 { "" } else { "s" }
        );
        return Ok(exit::INPUT);
    }
    Ok(exit::OK)
}

fn check_rules(builtin: &RuleSet, path: &Path) -> usize {
    let mut set = builtin.clone();
    match set.load_path_diags(path) {
        Ok(st) => {
            let n = st.added.len() + st.overridden.len();
            println!(
                "ok: {}: {n} rule{} ({} new, {} overriding built-in or earlier rules)",
                path.display(),
                if n == 1 { "" } else { "s" },
                st.added.len(),
                st.overridden.len()
            );
            0
        }
        Err(d) => {
            print_diags(&d);
            d.len()
        }
    }
}

/// `rules test`: runs every case, prints one line per case and the differences.
fn test(paths: &[PathBuf]) -> Result<i32> {
    let mut files = Vec::new();
    let mut invalid = Vec::new();
    for p in paths {
        match testing::test_files(p) {
            Ok(f) => files.extend(f),
            Err(d) => invalid.extend(d),
        }
    }
    let mut loaded = Vec::new();
    for f in files {
        match testing::load_test_file(&f) {
            Ok(t) => loaded.push(t),
            Err(d) => invalid.extend(d),
        }
    }
    if !invalid.is_empty() {
        print_diags(&invalid);
        return Ok(exit::INPUT);
    }
    let (mut passed, mut failed) = (0, 0);
    let mut out = std::io::stdout().lock();
    for file in &loaded {
        for case in &file.cases {
            let r = testing::run_case(&file.rules, case);
            if r.passed() {
                passed += 1;
                writeln!(out, "ok   {}: {}", r.location, r.name)?;
            } else {
                failed += 1;
                writeln!(out, "FAIL {}: {}", r.location, r.name)?;
                for m in &r.missing {
                    writeln!(out, "       missing:    {m}")?;
                }
                for u in &r.unexpected {
                    writeln!(out, "       unexpected: {u}")?;
                }
            }
        }
    }
    writeln!(
        out,
        "\n{} passed, {} failed ({} file{})",
        passed,
        failed,
        loaded.len(),
        if loaded.len() == 1 { "" } else { "s" }
    )?;
    Ok(if failed > 0 { exit::WARNING } else { exit::OK })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
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
        assert_eq!(d.format, DoctorFormat::Table);
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
        assert!(Cli::try_parse_from(["dnsdoc", "rules", "metrics", "--scope", "pod"]).is_err());
    }
}
