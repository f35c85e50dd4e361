//! Declarative health rules: TOML files that turn a [`Snapshot`] into findings.
//!
//! A rule reads one metric of one scope (the node, each process, each server...),
//! compares it with INFO/WARNING/CRITICAL thresholds once enough samples exist, and
//! explains itself with templates, evidence and remediation. Rules are data so that
//! operators can tune, disable, add and test them without rebuilding dnsdoc; the
//! format is documented in docs/RULES.md.
//!
//! - [`metrics`]: the metric registry (what a rule may read, per scope).
//! - [`load`]: TOML parsing with file:line:col errors, overrides, validation.
//! - [`eval`]: evaluation and ranking.
//! - [`testing`]: rule fixtures (`dnsdoc rules test`).
//!
//! [`Snapshot`]: crate::snapshot::Snapshot

pub mod builtin;
pub mod eval;
pub mod load;
pub mod metrics;
pub mod report;
pub mod template;
pub mod testing;

use serde::{Deserialize, Serialize, Serializer};

pub use eval::{
    evaluate, evaluate_all, Check, CheckStatus, Evaluation, Evidence, Finding, NearMiss,
};
pub use load::{Diag, LayerStats, RuleSet};
pub use metrics::{Scope, Unit};
pub use template::Template;

use std::path::PathBuf;

/// The rule set a run judges with: built-ins, then each `--rules` path in order, then
/// `--disable`. `doctor` and `chaos --verify` both build theirs here.
pub fn build(paths: &[PathBuf], disable: &[String]) -> anyhow::Result<RuleSet> {
    let mut set = RuleSet::builtin()?;
    for p in paths {
        set.load_path(p)?;
    }
    for id in disable {
        set.disable(id)?;
    }
    Ok(set)
}

/// How bad a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether larger values are worse (`above`, the default) or smaller ones (`below`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Above,
    Below,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Above => "above",
            Direction::Below => "below",
        }
    }

    /// True when `value` is past `threshold` in the bad direction (strictly).
    pub fn crossed(self, value: f64, threshold: f64) -> bool {
        match self {
            Direction::Above => value > threshold,
            Direction::Below => value < threshold,
        }
    }
}

/// A comparison operator of a `when` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    /// Longest first, so ">=" is not read as ">".
    pub const ALL: [(&'static str, Op); 6] = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
    ];

    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// An extra condition a subject must meet for the rule to fire: `"failures >= 3"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    pub metric: String,
    pub op: Op,
    pub value: f64,
    /// The text as written.
    pub source: String,
}

impl Serialize for Guard {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// What a finding shows as evidence besides its own value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceSpec {
    /// More metrics of the same subject.
    pub metrics: Vec<String>,
    /// Node-wide breakdowns: the top subjects of these scopes (node rules only).
    pub top: Vec<Scope>,
    /// What the breakdowns are ranked by (defaults to the rule's metric).
    pub top_by: String,
}

/// How many subjects each evidence breakdown lists.
pub const TOP_EVIDENCE: usize = 3;

/// One validated rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub scope: Scope,
    pub metric: String,
    pub direction: Direction,
    pub info: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// Subjects with fewer than this many `samples` are not judged.
    pub min_samples: u64,
    /// The count metric `min_samples` is measured on.
    pub samples: String,
    pub when: Vec<Guard>,
    pub summary: Template,
    pub remediation: Vec<Template>,
    pub docs: Option<String>,
    pub evidence: EvidenceSpec,
    pub enabled: bool,
    /// Domains (with their subdomains) whose subjects the rule never judges: scopes
    /// `domain` (the registered domain) and `suffix` (the public suffix).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Where it was defined (and overridden).
    pub source: String,
}

impl Rule {
    /// Thresholds that are set, lowest severity first.
    pub fn thresholds(&self) -> Vec<(Severity, f64)> {
        [
            (Severity::Info, self.info),
            (Severity::Warning, self.warning),
            (Severity::Critical, self.critical),
        ]
        .into_iter()
        .filter_map(|(s, t)| t.map(|t| (s, t)))
        .collect()
    }

    /// The worst severity whose threshold `value` crosses, and that threshold.
    pub fn classify(&self, value: f64) -> Option<(Severity, f64)> {
        self.thresholds()
            .into_iter()
            .rev()
            .find(|(_, t)| self.direction.crossed(value, *t))
    }

    /// True when `key` (a subject's domain or suffix) is on the allow list, itself or
    /// as a subdomain of an entry.
    pub fn allows(&self, key: &str) -> bool {
        let key = key.trim_end_matches('.');
        self.allow.iter().any(|a| {
            key == a
                || key
                    .strip_suffix(a.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }

    /// The metric's unit (rules are validated, so the metric exists).
    pub fn unit(&self) -> Unit {
        metrics::registry()
            .find(self.scope, &self.metric)
            .map_or(Unit::Count, |m| m.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_serializes_uppercase() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        assert_eq!(
            serde_json::to_string(&Severity::Critical).unwrap(),
            "\"CRITICAL\""
        );
        let s: Severity = serde_json::from_str("\"WARNING\"").unwrap();
        assert_eq!(s, Severity::Warning);
        assert_eq!(Severity::parse("INFO"), Some(Severity::Info));
        assert_eq!(Severity::parse("warning"), None);
    }

    #[test]
    fn thresholds_are_strict() {
        assert!(Direction::Above.crossed(100.1, 100.0));
        assert!(!Direction::Above.crossed(100.0, 100.0));
        assert!(Direction::Below.crossed(0.0, 1.0));
        assert!(!Direction::Below.crossed(1.0, 1.0));
    }
}
