//! The doctor report: findings plus the context needed to trust them (window, traffic,
//! capture health, which rules could judge). `--format json` prints it as is; its
//! schema is documented in docs/RULES.md and versioned by [`REPORT_SCHEMA`].

use serde::Serialize;

use crate::exit;
use crate::rules::{Check, CheckStatus, Evaluation, Finding, Severity};
use crate::snapshot::{Host, Snapshot, Window};

/// Report schema version: add fields freely, renaming or removing one bumps it.
pub const REPORT_SCHEMA: u32 = 1;

/// The lowest severity that makes `doctor` exit non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Exit 1 on WARNING findings (2 on CRITICAL).
    Warning,
    /// Exit 2 on CRITICAL findings; WARNING findings still exit 0.
    Critical,
}

/// The overall verdict: the worst finding, or OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Info,
    Warning,
    Critical,
}

impl From<Severity> for Status {
    /// The report's status when this is the worst finding.
    fn from(s: Severity) -> Status {
        match s {
            Severity::Info => Status::Info,
            Severity::Warning => Status::Warning,
            Severity::Critical => Status::Critical,
        }
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Info => "INFO",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Traffic {
    /// Queries sent by local processes (client view).
    pub client_queries: u64,
    pub client_queries_per_s: f64,
    /// Client queries answered or timed out.
    pub client_completed: u64,
    /// Queries received by local DNS servers (server view).
    pub server_queries: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureSummary {
    /// No event was lost: counts are exact.
    pub complete: bool,
    pub dropped: u64,
    pub packets: u64,
    pub parse_errors: u64,
    pub unmatched_responses: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SeverityCounts {
    pub critical: u64,
    pub warning: u64,
    pub info: u64,
}

/// Everything `doctor` says about one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema: u32,
    pub dnsdoc_version: String,
    pub status: Status,
    /// The exit code `doctor` returns for this report (depends on `fail_on`).
    pub exit_code: i32,
    pub fail_on: FailOn,
    /// "live", or the snapshot file judged.
    pub source: String,
    pub host: Host,
    pub window: Window,
    pub traffic: Traffic,
    pub capture: CaptureSummary,
    pub counts: SeverityCounts,
    /// Ranked worst first.
    pub findings: Vec<Finding>,
    /// One per rule, in catalog order.
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(snap: &Snapshot, source: String, eval: Evaluation, fail_on: FailOn) -> Report {
        let mut counts = SeverityCounts::default();
        for f in &eval.findings {
            match f.severity {
                Severity::Critical => counts.critical += 1,
                Severity::Warning => counts.warning += 1,
                Severity::Info => counts.info += 1,
            }
        }
        let status = eval
            .findings
            .iter()
            .map(|f| f.severity)
            .max()
            .map_or(Status::Ok, Status::from);
        let exit_code = match (status, fail_on) {
            (Status::Critical, _) => exit::CRITICAL,
            (Status::Warning, FailOn::Warning) => exit::WARNING,
            _ => exit::OK,
        };
        let t = &snap.totals.counts;
        let c = &snap.capture;
        Report {
            schema: REPORT_SCHEMA,
            dnsdoc_version: env!("CARGO_PKG_VERSION").to_string(),
            status,
            exit_code,
            fail_on,
            source,
            host: snap.host.clone(),
            window: snap.window.clone(),
            traffic: Traffic {
                client_queries: t.queries,
                client_queries_per_s: t.queries_per_s,
                client_completed: t.responses + t.timeouts,
                server_queries: snap.server_side.counts.queries,
            },
            capture: CaptureSummary {
                complete: c.dropped.total == 0,
                dropped: c.dropped.total,
                packets: c.packets,
                parse_errors: c.parse_errors,
                unmatched_responses: c.unmatched_responses,
            },
            counts,
            findings: eval.findings,
            checks: eval.checks,
        }
    }

    /// Rules with this status, by id.
    pub fn rules_with(&self, status: CheckStatus) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.rule.as_str())
            .collect()
    }

    /// Any DNS traffic at all in the window.
    pub fn saw_traffic(&self) -> bool {
        self.traffic.client_queries + self.traffic.server_queries > 0
    }
}
