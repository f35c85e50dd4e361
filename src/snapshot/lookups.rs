//! The snapshot's lookup sections: how queries group into lookups (a name and its
//! search-list expansions), node-wide, per process or pod, and per looked-up name.

use serde::{Deserialize, Serialize};

use super::Counts;

/// Lookups of one group (node, process, pod, looked-up name): each a chain of queries
/// for one name and its search-list expansions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LookupStats {
    /// Lookups finished in the window.
    pub lookups: u64,
    /// Queries those lookups sent (A and AAAA both count, re-sends too).
    pub queries: u64,
    /// Of those, the same name and type asked again (the resolver's re-send after its
    /// timeout): loss, not amplification.
    #[serde(default)]
    pub resends: u64,
    /// (queries - resends) / lookups: the search-path amplification (2.0 for a plain
    /// A+AAAA lookup, however often it was re-sent).
    pub queries_per_lookup: f64,
    /// Lookups that tried more than one name.
    pub expanded: u64,
    /// NXDOMAIN answers to search-suffix expansions.
    pub expansion_nxdomain: u64,
    /// Lookups whose every name failed (NXDOMAIN, errors, timeouts).
    pub unanswered: u64,
    /// Lookups with the conntrack-race fingerprint: two query types of one name (A and
    /// AAAA) sent together from one socket, one answered and its sibling only after the
    /// resolver's timeout and a resend, or never.
    #[serde(default)]
    pub race_suspects: u64,
    /// Time from a lookup's first query to the first query of the name it ended on,
    /// summed, averaged and at worst.
    pub time_lost_ms: f64,
    pub time_lost_mean_ms: f64,
    pub time_lost_max_ms: f64,
    /// Search suffixes tried, most tried first (at most 16).
    pub suffixes: Vec<SuffixTries>,
}

/// How often one search suffix was tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuffixTries {
    pub suffix: String,
    pub tries: u64,
}

/// Node-wide lookups and the names that cost the most queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LookupSummary {
    #[serde(flatten)]
    pub stats: LookupStats,
    /// Of the lookups that tried several names or raced, the looked-up names with the
    /// most queries, worst first (at most 20).
    pub by_name: Vec<LookupNameStats>,
}

/// One looked-up name (the name asked for, before search suffixes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupNameStats {
    pub name: String,
    /// Who looked it up: pods ("namespace/pod") or processes ("comm (pid N)"), at most 5.
    pub by: Vec<String>,
    #[serde(flatten)]
    pub lookups: LookupStats,
    /// The answers its queries got.
    pub answers: Counts,
}
