//! `dnsdoc doctor` and `dnsdoc rules`: judge a window against the health rules, and
//! the tooling to check and test rule files. The report itself is `rules::report`.
//!
//! Rules are loaded (and validated) before any capture starts, so a typo in a rule
//! file fails in a second, not after a one-minute window.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::exit;
use crate::host::coredns;
use crate::pipeline::ObserveOptions;
use crate::render::{self, ReportFormat};
use crate::rules::{self, testing, Diag, RuleSet, Scope};
use crate::snapshot::Snapshot;

pub use crate::rules::report::{FailOn, Report, Status};

/// What `dnsdoc doctor` was asked to do (parsed from the command line by `cli`).
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// How to observe a live window (ignored with `snapshot`).
    pub observe: ObserveOptions,
    /// Judge this snapshot instead of observing.
    pub snapshot: Option<PathBuf>,
    /// Also write the live window's snapshot here.
    pub output: Option<PathBuf>,
    /// Rule files or directories, applied in order on top of the built-ins.
    pub rules: Vec<PathBuf>,
    /// Rule ids to disable.
    pub disable: Vec<String>,
    pub format: ReportFormat,
    pub fail_on: FailOn,
    /// Print the rule catalog and exit.
    pub list_rules: bool,
    /// Exit with [`exit::NO_TRAFFIC`] when fewer queries than this were seen.
    pub require_traffic: Option<u64>,
    /// A CoreDNS /metrics URL to judge too.
    pub coredns_metrics: Option<String>,
}

/// What `dnsdoc rules` was asked to do.
#[derive(Debug, Clone)]
pub enum RulesTask {
    /// Validate rule files and rule test files.
    Check(Vec<PathBuf>),
    /// Run rule test files.
    Test(Vec<PathBuf>),
    /// List the metrics rules can read, optionally of one scope.
    Metrics {
        scope: Option<String>,
        format: ReportFormat,
    },
    /// Export the effective rules as Prometheus alerting rules.
    Export(ExportTask),
}

/// `rules export`: which rules, how, and where to.
#[derive(Debug, Clone)]
pub struct ExportTask {
    pub rules: Vec<PathBuf>,
    pub disable: Vec<String>,
    pub export: crate::alerts::ExportOptions,
    pub output: Option<PathBuf>,
}

/// Runs `dnsdoc doctor`; returns the exit code.
pub fn run(args: &DoctorOptions) -> Result<i32> {
    if let Some(path) = &args.output {
        crate::snapshot::check_output_path(path)?;
    }
    if let Some(url) = &args.coredns_metrics {
        coredns::check_url(url)?;
    }
    let rules = rules::build(&args.rules, &args.disable)?;
    let mut out = std::io::stdout().lock();
    if args.list_rules {
        match args.format {
            ReportFormat::Json => {
                serde_json::to_writer_pretty(&mut out, rules.rules())?;
                writeln!(out)?;
            }
            ReportFormat::Table => {
                write!(out, "{}", render::findings::catalog_table(rules.rules()))?
            }
            ReportFormat::Markdown => {
                write!(out, "{}", render::findings::catalog_markdown(rules.rules()))?
            }
        }
        return Ok(exit::OK);
    }
    let mut write_failed = None;
    let (snap, source) = match &args.snapshot {
        Some(path) => {
            let mut snap = Snapshot::read(path)?;
            if let Some(url) = &args.coredns_metrics {
                snap.coredns = Some(coredns::metrics(url, &coredns::scrape(url)?, None));
            }
            (snap, path.display().to_string())
        }
        None => {
            // CoreDNS's counters are cumulative: read them around the window and judge
            // the increase. The first read also fails fast, before a window is spent.
            let first = match &args.coredns_metrics {
                Some(url) => Some((url, coredns::scrape(url)?, std::time::Instant::now())),
                None => None,
            };
            let mut snap = crate::pipeline::observe(&args.observe)?;
            if let Some((url, page, t0)) = first {
                let last = coredns::scrape(url)?;
                let span = t0.elapsed().as_secs_f64();
                snap.coredns = Some(coredns::metrics(url, &page, Some((&last, span))));
            }
            // A failed write must not cost the window: judge it anyway, keep a fallback.
            if let Some(path) = &args.output {
                if let Err((e, fallback)) = snap.write_or_fallback(path) {
                    write_failed = Some(match fallback {
                        Some(f) => {
                            format!("{e:#}; the snapshot was saved to {} instead", f.display())
                        }
                        None => format!("{e:#}; a fallback in the temporary directory failed too"),
                    });
                }
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
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        ReportFormat::Table => write!(
            out,
            "{}",
            render::findings::table(&report, render::style::color_stdout())
        )?,
        ReportFormat::Markdown => write!(out, "{}", render::findings::markdown(&report))?,
    }
    out.flush()?;
    if let Some(msg) = write_failed {
        eprintln!("dnsdoc: error: {msg}");
        return Ok(exit::RUNTIME);
    }
    if let Some(path) = &args.output {
        eprintln!("dnsdoc: snapshot written to {}", path.display());
    }
    // Findings on a quiet window prove nothing: too little traffic wins.
    if let Some((line, code)) = exit::require_traffic(snap.queries_seen(), args.require_traffic) {
        eprintln!("{line}");
        return Ok(code);
    }
    Ok(report.exit_code)
}

/// What `dnsdoc explain` was asked for.
#[derive(Debug, Clone)]
pub struct ExplainOptions {
    pub rule: String,
    /// Rule files or directories, as for `doctor --rules`: an override is explained
    /// with its own thresholds.
    pub rules: Vec<PathBuf>,
}

/// Runs `dnsdoc explain RULE`: the rule's documentation, offline.
pub fn explain(args: &ExplainOptions) -> Result<i32> {
    let rules = rules::build(&args.rules, &[])?;
    let Some(rule) = rules.get(&args.rule) else {
        return Err(crate::exit::UsageError(render::explain::unknown(&args.rule, &rules)).into());
    };
    print!("{}", render::explain::text(rule));
    Ok(exit::OK)
}

/// Runs `dnsdoc rules ...`; returns the exit code.
pub fn run_rules(task: &RulesTask) -> Result<i32> {
    match task {
        RulesTask::Check(paths) => check(paths),
        RulesTask::Test(paths) => test(paths),
        RulesTask::Metrics { scope, format } => {
            let scope = scope.as_deref().and_then(Scope::parse);
            let text = match format {
                ReportFormat::Markdown => render::findings::metrics_markdown(scope),
                ReportFormat::Json => format!("{:#}\n", render::findings::metrics_json(scope)),
                ReportFormat::Table => render::findings::metrics_table(scope),
            };
            print!("{text}");
            Ok(exit::OK)
        }
        RulesTask::Export(t) => export(t),
    }
}

/// `rules export`: the alerting-rules file on stdout or `-o`, skipped rules on stderr.
fn export(t: &ExportTask) -> Result<i32> {
    if let Some(path) = &t.output {
        crate::snapshot::check_output_path(path)?;
    }
    let set = rules::build(&t.rules, &t.disable)?;
    let e = crate::alerts::export(&set, &t.export);
    let mut sources = vec!["built-in".to_string()];
    sources.extend(t.rules.iter().map(|p| p.display().to_string()));
    if !t.disable.is_empty() {
        sources.push(format!("disabled: {}", t.disable.join(", ")));
    }
    let yaml = crate::alerts::to_yaml(&e, &t.export, &sources.join(", "));
    match &t.output {
        Some(path) => crate::alerts::write_atomic(path, &yaml)?,
        None => print!("{yaml}"),
    }
    for s in &e.skipped {
        eprintln!("dnsdoc: skipped {}: {}", s.rule, s.reason);
    }
    eprintln!(
        "dnsdoc: exported {} alerts from {} rules ({} skipped){}",
        e.alerts.len(),
        set.rules().iter().filter(|r| r.enabled).count() - e.skipped.len(),
        e.skipped.len(),
        t.output
            .as_ref()
            .map_or(String::new(), |p| format!(" to {}", p.display()))
    );
    Ok(exit::OK)
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
