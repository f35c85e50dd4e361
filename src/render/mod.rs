//! Stage 6, report: turns snapshots and findings into text for people, in the formats
//! the commands offer.

pub mod findings;
mod kube;
pub mod style;
pub mod summary;

use clap::ValueEnum;

/// How `watch`, `chaos` and `version` print their result on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// The snapshot as JSON (schema in docs/SNAPSHOT.md).
    Json,
}

/// How `doctor` and `rules metrics` print a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Header, findings table, details (colour on a terminal).
    Table,
    /// The report as JSON (schema in docs/RULES.md).
    Json,
    /// Markdown, to paste into an incident ticket.
    Markdown,
}
