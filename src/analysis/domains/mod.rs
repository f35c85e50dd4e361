//! Per registered domain and per process: the features that tell DNS tunnels, DGA
//! malware and exfiltration from ordinary traffic (issue 16).
//!
//! Cost on the hot path is O(1) amortised per query: a name is taken apart (Public
//! Suffix List lookup, label lengths, entropy, hash) once per distinct interned name
//! and cached by the name's `Rc` pointer; each query then costs a pointer-keyed lookup,
//! one lookup of its (domain, process) and (suffix, process) rows and an insert into a
//! bounded set of 32-bit subdomain hashes.
//!
//! Memory is bounded three ways: at most [`MAX_NAMES`] cached names (the cache starts
//! over when full), at most [`MAX_ROWS`] rows of each kind (queries for more are only
//! counted), and at most [`SET_BUDGET`] hashes over all distinct-counting sets, each
//! capped at [`SET_CAP`] (exact up to the cap, then reported as capped: a lower bound).

mod name;

use std::rc::Rc;

use foldhash::{HashMap, HashSet};

use crate::analysis::aggregate::Tally;
use crate::analysis::matcher::Outcome;
use crate::snapshot::{DomainStats, DomainSummary, SuffixStats};
use crate::units::{round3, round6};
pub use name::{describe, entropy, NameInfo};

/// Distinct names whose description is cached.
pub const MAX_NAMES: usize = 65_536;
/// Rows of each kind ((domain, process) and (suffix, process)) tracked per window.
pub const MAX_ROWS: usize = 8_192;
/// Distinct values one set counts exactly.
pub const SET_CAP: usize = 4_096;
/// Hashes held over all sets of a window (4 bytes each, about 8 MiB with overhead).
pub const SET_BUDGET: usize = 1 << 20;
/// A name longer than this (characters, no trailing dot) is long, as is one with a
/// label longer than [`LONG_LABEL`]: the usual tunnel signatures (docs/RULES.md says
/// where the numbers come from).
pub const LONG_NAME: u32 = 52;
pub const LONG_LABEL: u32 = 30;
/// Rows of each kind the snapshot keeps, best scores first.
pub const TOP_ROWS: usize = 100;

/// A set of 32-bit hashes, exact up to [`SET_CAP`] and the window's budget.
#[derive(Debug, Default, Clone)]
struct CappedSet {
    set: HashSet<u32>,
    capped: bool,
}

impl CappedSet {
    /// Inserts `h`; true when it was new. Past the cap nothing is new (a lower bound).
    fn insert(&mut self, h: u32, budget: &mut usize) -> bool {
        if self.set.contains(&h) {
            return false;
        }
        if self.set.len() >= SET_CAP || *budget == 0 {
            self.capped = true;
            return false;
        }
        *budget -= 1;
        self.set.insert(h)
    }

    fn len(&self) -> u64 {
        self.set.len() as u64
    }
}

/// A domain or suffix string from [`DomainTracker::strings`], where equal strings are
/// one allocation: rows are keyed by its address, so a query hashes a pointer instead of
/// the string (the string hashes and compares were most of the tracker's cost).
#[derive(Debug, Clone)]
struct Interned(Rc<str>);

impl PartialEq for Interned {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Interned {}

impl std::hash::Hash for Interned {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(Rc::as_ptr(&self.0) as *const u8 as usize);
    }
}

/// One (registered domain, process) row.
#[derive(Debug, Default, Clone)]
struct DomainRow {
    outcomes: Tally,
    subdomains: CappedSet,
    unique_subdomain_bytes: u64,
    labels: u64,
    label_chars: u64,
    label_max: u32,
    longest: Option<Rc<str>>,
    name_len_max: u32,
    entropy_sum: f64,
    entropy_n: u64,
    txt: u64,
    null: u64,
    cname: u64,
    any: u64,
    name_bytes_out: u64,
    answer_bytes_in: u64,
    long: u64,
}

/// One (public suffix, process) row: the registered domains asked for under it.
#[derive(Debug, Default, Clone)]
struct SuffixRow {
    outcomes: Tally,
    domains: CappedSet,
    /// Domains that got NXDOMAIN, and domains that got an answer (NOERROR): a domain
    /// that does not exist is in the first and not the second.
    nxdomain: CappedSet,
    resolved: CappedSet,
    sld_len_sum: u64,
}

/// Accumulates the features of one window.
#[derive(Debug, Default)]
pub struct DomainTracker {
    /// Name pointer -> (the name, kept alive so its address is not reused; its parts).
    names: HashMap<usize, (Rc<str>, NameInfo)>,
    /// Domain and suffix strings, shared by every cached name and row key. Starting
    /// over keeps the rows' strings, so one domain is always one allocation.
    strings: HashSet<Rc<str>>,
    hasher: foldhash::fast::RandomState,
    domains: HashMap<(Interned, u32), DomainRow>,
    suffixes: HashMap<(Interned, u32), SuffixRow>,
    budget: Option<usize>,
    untracked_queries: u64,
}

/// Query types the features count.
const TXT: u16 = 16;
const NULL: u16 = 10;
const CNAME: u16 = 5;
const ANY: u16 = 255;
const NXDOMAIN: u16 = 3;
const NOERROR: u16 = 0;

impl DomainTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one client query of process `tgid` (0 when unknown).
    pub fn add(
        &mut self,
        tgid: u32,
        name: &Rc<str>,
        qtype: u16,
        outcome: &Outcome,
        ts_ns: u64,
        response_bytes: u32,
    ) {
        let info = self.info(name).clone();
        let budget = self.budget.get_or_insert(SET_BUDGET);
        let full = self.domains.len() >= MAX_ROWS;
        let key = (Interned(Rc::clone(&info.domain)), tgid);
        let row = match self.domains.get_mut(&key) {
            Some(r) => Some(r),
            None if !full => Some(self.domains.entry(key).or_default()),
            None => None,
        };
        match row {
            Some(r) => {
                r.outcomes.add(outcome, ts_ns);
                if info.subdomain_len > 0 && r.subdomains.insert(info.subdomain_hash, budget) {
                    r.unique_subdomain_bytes += u64::from(info.subdomain_len);
                }
                r.labels += u64::from(info.labels);
                r.label_chars += u64::from(info.label_chars);
                r.label_max = r.label_max.max(info.label_max);
                if r.longest.is_none() || info.len > r.name_len_max {
                    r.name_len_max = info.len;
                    r.longest = Some(Rc::clone(name));
                }
                if let Some(e) = info.subdomain_entropy {
                    r.entropy_sum += e;
                    r.entropy_n += 1;
                }
                match qtype {
                    TXT => r.txt += 1,
                    NULL => r.null += 1,
                    CNAME => r.cname += 1,
                    ANY => r.any += 1,
                    _ => {}
                }
                r.name_bytes_out += u64::from(info.len);
                if info.len > LONG_NAME || info.label_max > LONG_LABEL {
                    r.long += 1;
                }
                r.answer_bytes_in += u64::from(response_bytes);
            }
            None => self.untracked_queries += 1,
        }
        let full = self.suffixes.len() >= MAX_ROWS;
        let key = (Interned(Rc::clone(&info.suffix)), tgid);
        let row = match self.suffixes.get_mut(&key) {
            Some(r) => Some(r),
            None if !full => Some(self.suffixes.entry(key).or_default()),
            None => None,
        };
        if let Some(r) = row {
            r.outcomes.add(outcome, ts_ns);
            let h = info.domain_hash;
            if r.domains.insert(h, budget) {
                r.sld_len_sum += u64::from(info.sld_len);
            }
            match outcome {
                Outcome::Answered {
                    rcode: NXDOMAIN, ..
                } => {
                    r.nxdomain.insert(h, budget);
                }
                Outcome::Answered { rcode: NOERROR, .. } => {
                    r.resolved.insert(h, budget);
                }
                _ => {}
            }
        }
    }

    /// The cached description of `name`, computed on first sight.
    fn info(&mut self, name: &Rc<str>) -> &NameInfo {
        let key = Rc::as_ptr(name) as *const u8 as usize;
        if !self.names.contains_key(&key) {
            if self.names.len() >= MAX_NAMES {
                self.names.clear();
            }
            if self.strings.len() >= MAX_NAMES {
                // Names cached before keep their strings alive and are still used, so
                // they go too; the rows' strings stay interned (at most 2 x MAX_ROWS).
                self.names.clear();
                self.strings.clear();
                let rows = self.domains.keys().chain(self.suffixes.keys());
                self.strings.extend(rows.map(|(s, _)| Rc::clone(&s.0)));
            }
            let strings = &mut self.strings;
            let mut intern = |s: &str| -> Rc<str> {
                if let Some(x) = strings.get(s) {
                    return Rc::clone(x);
                }
                let x: Rc<str> = s.into();
                strings.insert(Rc::clone(&x));
                x
            };
            let info = describe(name, &mut intern, &self.hasher);
            self.names.insert(key, (Rc::clone(name), info));
        }
        &self.names[&key].1
    }

    /// The window's rows, best scores first. `process` names a pid: (command, pod).
    pub fn summary(
        &self,
        duration_s: f64,
        process: impl Fn(u32) -> (String, Option<String>),
    ) -> DomainSummary {
        let mut by_domain: Vec<DomainStats> = self
            .domains
            .iter()
            .map(|((Interned(domain), pid), r)| {
                let (comm, pod) = process(*pid);
                let q = r.outcomes.queries.max(1) as f64;
                DomainStats {
                    domain: domain.to_string(),
                    pid: *pid,
                    comm,
                    pod,
                    counts: r.outcomes.counts(duration_s),
                    unique_subdomains: r.subdomains.len(),
                    unique_subdomains_capped: r.subdomains.capped,
                    unique_subdomain_bytes: r.unique_subdomain_bytes,
                    label_len_mean: round3(r.label_chars as f64 / r.labels.max(1) as f64),
                    label_len_max: u64::from(r.label_max),
                    name_len_max: u64::from(r.name_len_max),
                    longest_name: r.longest.as_deref().unwrap_or("").to_string(),
                    subdomain_entropy: (r.entropy_n > 0)
                        .then(|| round3(r.entropy_sum / r.entropy_n as f64)),
                    txt_queries: r.txt,
                    null_queries: r.null,
                    cname_queries: r.cname,
                    any_queries: r.any,
                    txt_null_ratio: round6((r.txt + r.null) as f64 / q),
                    long_queries: r.long,
                    long_query_ratio: round6(r.long as f64 / q),
                    name_bytes_out: r.name_bytes_out,
                    answer_bytes_in: r.answer_bytes_in,
                }
            })
            .collect();
        by_domain.sort_by(|a, b| {
            (b.unique_subdomain_bytes, b.counts.queries)
                .cmp(&(a.unique_subdomain_bytes, a.counts.queries))
                .then_with(|| (&a.domain, a.pid).cmp(&(&b.domain, b.pid)))
        });
        let mut by_suffix: Vec<SuffixStats> = self
            .suffixes
            .iter()
            .map(|((Interned(suffix), pid), r)| {
                let (comm, pod) = process(*pid);
                let domains = r.domains.len();
                let nx = r
                    .nxdomain
                    .set
                    .iter()
                    .filter(|h| !r.resolved.set.contains(h))
                    .count() as u64;
                SuffixStats {
                    suffix: suffix.to_string(),
                    pid: *pid,
                    comm,
                    pod,
                    counts: r.outcomes.counts(duration_s),
                    domains,
                    domains_capped: r.domains.capped,
                    nxdomain_domains: nx,
                    nxdomain_domain_ratio: round6(nx as f64 / domains.max(1) as f64),
                    sld_len_mean: round3(r.sld_len_sum as f64 / domains.max(1) as f64),
                }
            })
            .collect();
        by_suffix.sort_by(|a, b| {
            (b.nxdomain_domains, b.domains, b.counts.queries)
                .cmp(&(a.nxdomain_domains, a.domains, a.counts.queries))
                .then_with(|| (&a.suffix, a.pid).cmp(&(&b.suffix, b.pid)))
        });
        let rest = |rows: &[DomainStats]| rows.iter().map(|r| r.counts.queries).sum::<u64>();
        let other_rows = by_domain.len().saturating_sub(TOP_ROWS) as u64;
        let other_queries = by_domain.get(TOP_ROWS..).map_or(0, rest);
        by_domain.truncate(TOP_ROWS);
        let other_suffix_rows = by_suffix.len().saturating_sub(TOP_ROWS) as u64;
        by_suffix.truncate(TOP_ROWS);
        DomainSummary {
            by_domain,
            by_suffix,
            other_rows,
            other_queries,
            other_suffix_rows,
            untracked_queries: self.untracked_queries,
        }
    }
}

#[cfg(test)]
mod tests;
