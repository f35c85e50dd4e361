//! `dnsdoc watch`: runs one observation window (see [`crate::pipeline`]) and prints
//! or saves its snapshot.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::pipeline::{observe, ObserveOptions};
use crate::render::{self, Format};
use crate::snapshot::check_output_path;

/// What `dnsdoc watch` was asked to do (parsed from the command line by `cli`).
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub observe: ObserveOptions,
    /// Write the snapshot here, atomically.
    pub output: Option<PathBuf>,
    /// What to print on stdout.
    pub format: Format,
}

/// Runs `dnsdoc watch`.
pub fn run(args: &WatchOptions) -> Result<()> {
    if let Some(path) = &args.output {
        check_output_path(path)?;
    }
    let snap = observe(&args.observe)?;
    if let Some(path) = &args.output {
        snap.write_atomic(path)
            .with_context(|| format!("writing snapshot {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &snap)?;
            writeln!(out)?;
        }
        Format::Table => write!(out, "{}", render::summary::render(&snap))?,
    }
    if let Some(path) = &args.output {
        eprintln!("dnsdoc: snapshot written to {}", path.display());
    }
    Ok(())
}
