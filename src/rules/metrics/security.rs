//! The metrics of the `domain` and `suffix` scopes (the security rules' features,
//! `domains.by_domain[]` and `domains.by_suffix[]` of the snapshot), as data like
//! [`super::tables`]. Only ever read by [`registry`](mod@super::registry).

use super::registry::{DomainFn, Read, Read::*, SuffixFn};
use super::tables::ratio;
use super::Unit;

/// (name, unit, samples, help, getter) of each `domain` subject.
pub(super) const DOMAIN: &[(&str, Unit, &str, &str, Read<DomainFn>)] = &[
    (
        "unique_subdomains",
        Unit::Count,
        "queries",
        "Distinct subdomain parts asked for under this registered domain by this process (exact up to 4096, then a lower bound).",
        Field,
    ),
    (
        "unique_subdomain_bytes",
        Unit::Count,
        "queries",
        "Characters of those distinct subdomain parts: the data the names could carry out.",
        Field,
    ),
    (
        "label_len_mean",
        Unit::Count,
        "queries",
        "Mean label length of the names asked for.",
        Field,
    ),
    (
        "label_len_max",
        Unit::Count,
        "queries",
        "Longest label of the names asked for (at most 63).",
        Field,
    ),
    (
        "name_len_max",
        Unit::Count,
        "queries",
        "Longest name asked for, in characters without the trailing dot.",
        Field,
    ),
    (
        "subdomain_entropy",
        Unit::Count,
        "queries",
        "Shannon entropy of the longest label of the subdomain part in bits per character, averaged over the queries that have a subdomain: about 2-3 for words, at most 4 for hex, 4.3-5 for long base32/base64 labels.",
        Field,
    ),
    (
        "txt_queries",
        Unit::Count,
        "queries",
        "TXT queries.",
        Field,
    ),
    (
        "null_queries",
        Unit::Count,
        "queries",
        "NULL queries (type 10: almost only tunnels such as iodine use it).",
        Field,
    ),
    (
        "cname_queries",
        Unit::Count,
        "queries",
        "CNAME queries.",
        Field,
    ),
    (
        "any_queries",
        Unit::Count,
        "queries",
        "ANY queries.",
        Field,
    ),
    (
        "txt_null_ratio",
        Unit::Ratio,
        "queries",
        "(TXT + NULL queries) / queries.",
        Field,
    ),
    (
        "long_queries",
        Unit::Count,
        "queries",
        "Queries for a long name: over 52 characters (without the trailing dot), or with a label over 30.",
        Field,
    ),
    (
        "long_query_ratio",
        Unit::Ratio,
        "queries",
        "long_queries / queries.",
        Field,
    ),
    (
        "cname_ratio",
        Unit::Ratio,
        "queries",
        "CNAME queries / queries.",
        Computed(|d| ratio(d.cname_queries, d.counts.queries)),
    ),
    (
        "any_ratio",
        Unit::Ratio,
        "queries",
        "ANY queries / queries.",
        Computed(|d| ratio(d.any_queries, d.counts.queries)),
    ),
    (
        "name_bytes_out",
        Unit::Count,
        "queries",
        "Characters of every name asked for, repeats included (bytes out in names).",
        Field,
    ),
    (
        "answer_bytes_in",
        Unit::Count,
        "queries",
        "Bytes of the answers received (bytes in).",
        Field,
    ),
];

/// (name, unit, samples, help, getter) of each `suffix` subject.
pub(super) const SUFFIX: &[(&str, Unit, &str, &str, Read<SuffixFn>)] = &[
    (
        "domains",
        Unit::Count,
        "domains",
        "Distinct registered domains asked for under this public suffix by this process (exact up to 4096).",
        Field,
    ),
    (
        "nxdomain_domains",
        Unit::Count,
        "domains",
        "Of those, the ones that do not exist: NXDOMAIN and no NOERROR answer for any name under them.",
        Field,
    ),
    (
        "nxdomain_domain_ratio",
        Unit::Ratio,
        "domains",
        "nxdomain_domains / domains.",
        Field,
    ),
    (
        "sld_len_mean",
        Unit::Count,
        "domains",
        "Mean length of the label left of the suffix over those domains (random DGA labels are often 10-20 characters).",
        Field,
    ),
];
