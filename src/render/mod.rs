//! Stage 6, report: turns snapshots and findings into text for people, in the formats
//! the commands offer.

pub mod explain;
pub mod findings;
mod kube;
pub mod latency_chart;
pub mod style;
pub mod summary;

use clap::ValueEnum;

/// How `watch`, `chaos` and `version` print their result on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text and tables.
    Table,
    /// Machine-readable JSON (the flag's help says which document).
    Json,
}

/// How `doctor` and `rules metrics` print a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Human-readable text and tables (colour on a terminal).
    Table,
    /// Machine-readable JSON (the flag's help says which document).
    Json,
    /// Markdown (the flag's help says what for).
    Markdown,
}
