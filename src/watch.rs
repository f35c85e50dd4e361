//! `dnsdoc watch`: runs one observation window (see [`crate::pipeline`]) and prints
//! or saves its snapshot.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::pipeline::continuous::{observe_continuous, ContinuousOptions, Flow, WindowSink};
use crate::pipeline::{observe, ObserveOptions};
use crate::render::{self, Format};
use crate::series::{textfile, Limits, Series};
use crate::snapshot::{check_output_path, Snapshot};

/// What `dnsdoc watch` was asked to do (parsed from the command line by `cli`).
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub observe: ObserveOptions,
    /// Write the snapshot here, atomically.
    pub output: Option<PathBuf>,
    /// What to print on stdout.
    pub format: Format,
    /// Run continuously, a window per interval (None: one window).
    pub continuous: Option<Continuous>,
    /// Exit with [`crate::exit::NO_TRAFFIC`] when fewer queries than this were seen.
    pub require_traffic: Option<u64>,
    /// Rows per summary table.
    pub top: usize,
}

/// `watch --interval` / `--textfile`: windows until stopped.
#[derive(Debug, Clone)]
pub struct Continuous {
    pub interval: std::time::Duration,
    /// Stop after this many windows.
    pub count: Option<u64>,
    /// Write DIR/dnsdoc.prom after every window.
    pub textfile: Option<PathBuf>,
    pub limits: Limits,
}

/// Runs `dnsdoc watch`; returns the exit code.
pub fn run(args: &WatchOptions) -> Result<i32> {
    if let Some(path) = &args.output {
        check_output_path(path)?;
    }
    if let Some(c) = &args.continuous {
        return run_continuous(args, c).map(|()| crate::exit::OK);
    }
    let snap = observe(&args.observe)?;
    // A failed write must not cost the window: the summary is printed anyway, and the
    // snapshot goes to a fallback file whose path is printed.
    let mut write_failed = None;
    if let Some(path) = &args.output {
        if let Err((e, fallback)) = snap.write_or_fallback(path) {
            write_failed = Some((e, fallback));
        }
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &snap)?;
            writeln!(out)?;
        }
        Format::Table => write!(out, "{}", render::summary::render_top(&snap, args.top))?,
    }
    out.flush()?;
    match (&args.output, write_failed) {
        (Some(path), None) => eprintln!("dnsdoc: snapshot written to {}", path.display()),
        (_, Some((e, fallback))) => {
            let saved = fallback.map_or_else(
                || "a fallback in the temporary directory failed too".to_string(),
                |f| format!("the snapshot was saved to {} instead", f.display()),
            );
            return Err(anyhow::anyhow!("{e:#}; {saved}"));
        }
        (None, None) => {}
    }
    if let Some((line, code)) =
        crate::exit::require_traffic(snap.queries_seen(), args.require_traffic)
    {
        eprintln!("{line}");
        return Ok(code);
    }
    Ok(crate::exit::OK)
}

/// Windows until Ctrl-C/SIGTERM (or `--count`): each one printed (NDJSON with
/// `--format json`), written to `-o` and to the textfile.
fn run_continuous(args: &WatchOptions, c: &Continuous) -> Result<()> {
    if let Some(dir) = &c.textfile {
        if !dir.is_dir() {
            return Err(crate::exit::UsageError(format!(
                "--textfile {}: not a directory",
                dir.display()
            ))
            .into());
        }
    }
    let opts = ContinuousOptions {
        observe: args.observe.clone(),
        interval: c.interval,
        max_windows: c.count,
        limits: c.limits,
    };
    let mut sink = Printer { args, c };
    observe_continuous(&opts, &mut sink)
}

/// Prints and writes every window as it closes.
struct Printer<'a> {
    args: &'a WatchOptions,
    c: &'a Continuous,
}

impl WindowSink for Printer<'_> {
    fn window(&mut self, snap: &Snapshot, series: &Series) -> Result<Flow> {
        if let Some(dir) = &self.c.textfile {
            textfile::write(dir, series)?;
        }
        if let Some(path) = &self.args.output {
            snap.write_atomic(path)
                .with_context(|| format!("writing snapshot {}", path.display()))?;
        }
        let mut out = std::io::stdout().lock();
        let written = match self.args.format {
            Format::Json => serde_json::to_writer(&mut out, snap)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out)),
            Format::Table => write!(out, "{}", render::summary::render_top(snap, self.args.top)),
        };
        // A reader that went away (`| head`) ends the run, like any other Unix filter.
        match written.and_then(|()| out.flush()) {
            Ok(()) => Ok(Flow::Continue),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Flow::Stop),
            Err(e) => Err(e.into()),
        }
    }
}
