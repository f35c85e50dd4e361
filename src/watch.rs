//! `dnsdoc watch`: runs one observation window (see [`crate::pipeline`]) and prints
//! or saves its snapshot.

use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{Format, WatchArgs};
use crate::pipeline::observe;
use crate::render;
use crate::snapshot::check_output_path;

/// Runs `dnsdoc watch`.
pub fn run(args: &WatchArgs) -> Result<()> {
    if let Some(path) = &args.output {
        check_output_path(path)?;
    }
    let snap = observe(&args.capture.observe_options())?;
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
