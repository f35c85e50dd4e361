//! The security features of a window (schema 3): per registered domain and process,
//! and per public suffix and process. Filled by `analysis::domains`.

use serde::{Deserialize, Serialize};

use super::Counts;

/// Domains the window's processes asked for, with what tells tunnels, DGA malware and
/// exfiltration from ordinary traffic. Bounded: the best-scoring rows are kept, the
/// rest counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DomainSummary {
    /// (registered domain, process) rows, most distinct subdomain bytes first.
    pub by_domain: Vec<DomainStats>,
    /// (public suffix, process) rows, most NXDOMAIN registered domains first.
    pub by_suffix: Vec<SuffixStats>,
    /// (domain, process) rows left out of `by_domain`, and their queries.
    pub other_rows: u64,
    pub other_queries: u64,
    /// (suffix, process) rows left out of `by_suffix`.
    pub other_suffix_rows: u64,
    /// Queries not tracked per domain because the window's row table was full.
    pub untracked_queries: u64,
}

/// One registered domain (Public Suffix List) as one process asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DomainStats {
    pub domain: String,
    pub pid: u32,
    pub comm: String,
    /// `namespace/pod` of the process, when it runs in a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Distinct subdomain parts (`a.b` of `a.b.example.com`); exact up to 4096.
    pub unique_subdomains: u64,
    /// True when the count reached its cap (4096, or the window's budget): a lower bound.
    pub unique_subdomains_capped: bool,
    /// Bytes of those distinct subdomain parts: the data the names could carry out.
    pub unique_subdomain_bytes: u64,
    /// Mean and longest label of the names asked for (over every query).
    pub label_len_mean: f64,
    pub label_len_max: u64,
    /// Longest name, in characters without the trailing dot, and the name itself.
    pub name_len_max: u64,
    pub longest_name: String,
    /// Shannon entropy of the longest label of the subdomain part, bits per
    /// character, averaged over the queries that have a subdomain; null when none has.
    pub subdomain_entropy: Option<f64>,
    pub txt_queries: u64,
    pub null_queries: u64,
    pub cname_queries: u64,
    pub any_queries: u64,
    /// (TXT + NULL queries) / queries.
    pub txt_null_ratio: f64,
    /// Queries for a long name: over 52 characters, or with a label over 30.
    pub long_queries: u64,
    /// long_queries / queries.
    pub long_query_ratio: f64,
    /// Characters of every name asked for (bytes out in names).
    pub name_bytes_out: u64,
    /// Bytes of the answers received (bytes in).
    pub answer_bytes_in: u64,
}

/// One public suffix (`com`, `co.uk`, `test`) as one process asked for names under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SuffixStats {
    pub suffix: String,
    pub pid: u32,
    pub comm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Distinct registered domains asked for under the suffix; exact up to 4096.
    pub domains: u64,
    pub domains_capped: bool,
    /// Of those, the ones that do not exist: NXDOMAIN answers and no NOERROR answer
    /// for any name under them.
    pub nxdomain_domains: u64,
    /// nxdomain_domains / domains.
    pub nxdomain_domain_ratio: f64,
    /// Mean length of the label left of the suffix, over the distinct domains.
    pub sld_len_mean: f64,
}
