//! Lookups, not queries: the chain of names a stub resolver walks for one lookup
//! (`api` -> `api.default.svc.cluster.local`, `api.svc.cluster.local`, ... -> `api`)
//! grouped back into that one lookup, so ndots and search-list amplification is a
//! number per process and per pod instead of a pile of NXDOMAINs.
//!
//! A chain is one process's queries (glibc opens a new socket for every name it tries,
//! so the socket cannot be the key: measured with strace), for names that are one base
//! name with the search suffixes in turn, each sent within a short gap after the
//! previous try ended, ending in the first NOERROR answer (its sibling query type still
//! belongs to it) or in the last failure. The same name and type asked again starts a
//! new lookup. The process's search list, when known (its resolv.conf), says what a
//! suffix is; without it the base is inferred as the leading labels two consecutive
//! tries share, after a try that did not succeed.

use foldhash::{HashMap, HashMapExt};
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::analysis::matcher::Outcome;
use crate::host::ResolvConf;

/// After a try ends, the next one of the same lookup starts within this (glibc sends it
/// microseconds after the answer).
pub const GAP_NS: u64 = 1_000_000_000;
/// Open lookups kept per process (concurrent lookups of a multi-threaded process).
const MAX_OPEN_PER_PROCESS: usize = 16;

/// One query as the tracker needs it.
#[derive(Debug, Clone, Copy)]
pub struct Try<'a> {
    pub tgid: u32,
    pub query_ts_ns: u64,
    pub name: &'a Rc<str>,
    pub qtype: u16,
    /// The socket it was sent from.
    pub cookie: u64,
    pub outcome: Outcome,
}

/// One finished lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub tgid: u32,
    /// The name asked for, fully qualified (`api.`).
    pub base: Rc<str>,
    pub queries: u64,
    /// Queries that asked a name and type this lookup had asked before (re-sends).
    pub resends: u64,
    /// Distinct names tried.
    pub tries: u64,
    /// Search suffixes tried, in order (without dots).
    pub suffixes: Vec<String>,
    /// NXDOMAIN answers to names with a search suffix.
    pub expansion_nxdomain: u64,
    /// From the first query to the first query of the last name tried.
    pub time_lost_ns: u64,
    /// Whether the last name tried got a NOERROR answer.
    pub answered: bool,
    /// Answers of all its queries, by RCODE (timeouts counted apart).
    pub rcodes: SmallVec<[u16; 4]>,
    pub timeouts: u64,
    /// The conntrack-race fingerprint: two query types of one name sent together from
    /// one socket, one answered and its sibling only after a resend (or never).
    pub race: bool,
}

/// A sibling answered this late, and this much later than the other, was resent after
/// the resolver's timeout (glibc's shortest is 1 s). A difference, not a ratio: "20
/// times the other's latency" missed every race behind a relay on an emulated CPU,
/// where the answered sibling took 60 ms.
const RESENT_AFTER_NS: u64 = 900_000_000;
const RESENT_GAP_NS: u64 = 800_000_000;

/// One query type asked for a name: on which socket, when, and how long the answer
/// took (None: timed out).
#[derive(Debug, Clone, Copy)]
struct Asked {
    qtype: u16,
    cookie: u64,
    query_ts: u64,
    latency: Option<u64>,
}

/// One name tried by a lookup.
#[derive(Debug, Clone)]
struct Tried {
    name: Rc<str>,
    asked: SmallVec<[Asked; 2]>,
}

impl Tried {
    fn has(&self, qtype: u16) -> bool {
        self.asked.iter().any(|a| a.qtype == qtype)
    }
}

/// Whether two queries were in flight together: the later one was sent before the
/// earlier one's answer came (or it never came). glibc's sendmmsg puts microseconds
/// between siblings; a fixed window (10 ms) missed the first lookup on an emulated
/// CPU, where kernel code that runs for the first time is slow. A resolver that asks
/// one type after the other (`single-request`) does not race, and is not counted.
fn together(a: &Asked, b: &Asked) -> bool {
    let (first, second) = if a.query_ts <= b.query_ts {
        (a, b)
    } else {
        (b, a)
    };
    let answered_at = first.latency.unwrap_or(RESENT_AFTER_NS);
    second.query_ts - first.query_ts < answered_at
}

/// Whether two query types of one name show the conntrack race: sent together from one
/// socket, one answered, the other answered only after a resend (or not at all).
fn race(a: &Asked, b: &Asked) -> bool {
    if a.cookie != b.cookie || !together(a, b) {
        return false;
    }
    let late = |fast: u64, slow: Option<u64>| match slow {
        None => true,
        Some(l) => l >= RESENT_AFTER_NS && l >= fast.saturating_add(RESENT_GAP_NS),
    };
    match (a.latency, b.latency) {
        (Some(x), y) if late(x, y) => true,
        (x, Some(y)) => late(y, x),
        _ => false,
    }
}

#[derive(Debug, Clone)]
struct Chain {
    /// None while only one name was tried and no search list said what it is.
    base: Option<Rc<str>>,
    /// Names tried, in order, with the query types asked for each.
    names: SmallVec<[Tried; 2]>,
    /// One bit per name tried (`name_bit`): a query whose bit is clear is none of
    /// them, so an answered chain is skipped without comparing names. With a full set
    /// of 16 answered chains (any busy process) the name comparisons were most of the
    /// tracker's cost.
    names_mask: u64,
    race: bool,
    suffixes: Vec<String>,
    first_ts: u64,
    last_try_ts: u64,
    /// When the latest try ended (answer or timeout): the gap counts from here.
    end_ts: u64,
    queries: u64,
    resends: u64,
    expansion_nxdomain: u64,
    answered: bool,
    rcodes: SmallVec<[u16; 4]>,
    timeouts: u64,
}

/// Groups one window's client queries into lookups.
#[derive(Debug)]
pub struct LookupTracker {
    timeout_ns: u64,
    /// Open chains per process, oldest first: a full set (a busy process) evicts its
    /// oldest per new lookup, O(1) at the front (a Vec shifted 15 chains per query).
    open: HashMap<u32, VecDeque<Chain>>,
    done: Vec<Lookup>,
    latest_ts: u64,
    adds: u64,
}

impl LookupTracker {
    /// `timeout_ns`: the capture timeout; a try that timed out may be followed by the
    /// next one up to that much later (the resolver waits its own timeout first).
    pub fn new(timeout_ns: u64) -> Self {
        LookupTracker {
            timeout_ns,
            open: HashMap::new(),
            done: Vec::new(),
            latest_ts: 0,
            adds: 0,
        }
    }

    /// Adds one completed client query of process `t.tgid`, whose resolver
    /// configuration is `resolv` when known.
    pub fn add(&mut self, t: Try, resolv: Option<&ResolvConf>) {
        if matches!(t.outcome, Outcome::Pending) || t.tgid == 0 {
            return;
        }
        self.latest_ts = self.latest_ts.max(t.query_ts_ns);
        self.adds += 1;
        if self.adds % 4096 == 0 {
            self.sweep(self.latest_ts);
        }
        let long = self.timeout_ns.max(GAP_NS) + GAP_NS;
        let chains = self.open.entry(t.tgid).or_default();
        // Lookups nothing can join any more (not even a resend) are finished.
        let mut i = 0;
        while i < chains.len() {
            if t.query_ts_ns > chains[i].end_ts.saturating_add(long) {
                let c = chains.swap_remove_back(i).expect("i < len");
                self.done.push(finish(t.tgid, c));
            } else {
                i += 1;
            }
        }
        let name = t.name;
        // The name's readings under the search list, computed once for every chain.
        let cands: Option<SmallVec<[Reading; 4]>> = resolv.map(|r| candidates(name, r).collect());
        let bit = name_bit(name);
        let pos = chains.iter().position(|c| {
            // Only a chain that tried the name, or one still searching, can take it.
            (c.names_mask & bit != 0 || !c.answered)
                && joins(c, &t, bit, self.timeout_ns, cands.as_deref())
        });
        let idx = match pos {
            Some(i) => i,
            None => {
                if chains.len() >= MAX_OPEN_PER_PROCESS {
                    let c = chains.pop_front().expect("the set is full");
                    self.done.push(finish(t.tgid, c));
                }
                chains.push_back(Chain {
                    base: resolv.map(|r| split(name, r)),
                    names: SmallVec::new(),
                    names_mask: 0,
                    race: false,
                    suffixes: Vec::new(),
                    first_ts: t.query_ts_ns,
                    last_try_ts: t.query_ts_ns,
                    end_ts: t.query_ts_ns,
                    queries: 0,
                    resends: 0,
                    expansion_nxdomain: 0,
                    answered: false,
                    rcodes: SmallVec::new(),
                    timeouts: 0,
                });
                chains.len() - 1
            }
        };
        record(&mut chains[idx], t, resolv, self.timeout_ns);
    }

    /// Finishes lookups idle since before `now_ns` minus the gap (bounded memory).
    fn sweep(&mut self, now_ns: u64) {
        let horizon = now_ns.saturating_sub(self.timeout_ns.max(GAP_NS) * 2);
        for (&tgid, chains) in self.open.iter_mut() {
            let (old, keep): (Vec<Chain>, Vec<Chain>) =
                chains.drain(..).partition(|c| c.end_ts < horizon);
            *chains = keep.into();
            self.done.extend(old.into_iter().map(|c| finish(tgid, c)));
        }
        self.open.retain(|_, c| !c.is_empty());
    }

    /// Finishes the lookups no query can join any more, by the clock instead of by the
    /// next query: a continuous run (`serve`, `watch --interval`) closes windows on a
    /// node that may go quiet, and a process that looked up one name and went silent
    /// (or exited) would otherwise keep its lookup open, out of every window's and the
    /// exported series' counts, until the run ends. A query still in flight at `now_ns`
    /// was sent after `now_ns - timeout` (older ones have timed out), so this is the
    /// sweep a query sent then would run: nothing it could still join is finished.
    pub fn finish_idle(&mut self, now_ns: u64) {
        self.sweep(now_ns.saturating_sub(self.timeout_ns));
    }

    /// Lookups finished so far, taken (fold them as they come: see `LookupTallies`).
    pub fn take_done(&mut self) -> Vec<Lookup> {
        std::mem::take(&mut self.done)
    }

    /// Ends the window: every open lookup is finished.
    pub fn finish_all(&mut self) -> Vec<Lookup> {
        for (tgid, chains) in self.open.drain() {
            self.done
                .extend(chains.into_iter().map(|c| finish(tgid, c)));
        }
        self.done.sort_by_key(|l| l.tgid);
        std::mem::take(&mut self.done)
    }
}

/// Whether query (`name`, `qtype`) continues chain `c`.
fn joins(c: &Chain, t: &Try, bit: u64, timeout_ns: u64, cands: Option<&[Reading]>) -> bool {
    let (name, qtype, cookie) = (t.name, t.qtype, t.cookie);
    // The bit clear: the chain never tried the name (no comparisons needed).
    let tried = (c.names_mask & bit != 0)
        .then(|| c.names.iter().find(|n| n.name == *name))
        .flatten();
    if let Some(tried) = tried {
        // The sibling type of a name already tried, or the same type resent on the same
        // socket (glibc resends after its timeout; a new lookup opens a new socket):
        // up to a timeout after the name was first asked.
        let first = tried.asked.iter().map(|a| a.query_ts).min().unwrap_or(0);
        let in_time = t.query_ts_ns <= first + timeout_ns.max(GAP_NS) + GAP_NS;
        return in_time
            && tried
                .asked
                .iter()
                .all(|a| a.qtype != qtype || a.cookie == cookie);
    }
    // A new name continues the search only right after the last try ended (a timeout
    // later after a timeout: the resolver waits its own timeout first).
    let allowed = if c.timeouts > 0 {
        timeout_ns.max(GAP_NS)
    } else {
        GAP_NS
    };
    if c.answered || t.query_ts_ns > c.end_ts.saturating_add(allowed) {
        return false;
    }
    match (&c.base, cands) {
        (Some(base), Some(cands)) => cands.iter().any(|(b, _)| same_base(b, base)),
        (Some(base), None) => **name == **base || suffix_of(name, base).is_some(),
        (None, _) => {
            // Only one name tried: they share leading labels, and differ.
            let first = &c.names[0].name;
            common_labels(first, name) > 0
        }
    }
}

/// Records query `t` in chain `c`.
fn record(c: &mut Chain, t: Try, resolv: Option<&ResolvConf>, timeout_ns: u64) {
    let name = t.name;
    if c.base.is_none() && !c.names.is_empty() && c.names[0].name != *name {
        // Second name without a search list: the shared leading labels are the base.
        let first = c.names[0].name.clone();
        let n = common_labels(&first, name);
        let base: Rc<str> = format!("{}.", labels(&first)[..n].join(".")).into();
        if let Some(s) = suffix_of(&first, &base) {
            c.suffixes.push(s);
            c.expansion_nxdomain += c.rcodes.iter().filter(|&&r| r == 3).count() as u64;
        }
        c.base = Some(base);
    }
    let suffix = match (resolv, &c.base) {
        (Some(r), Some(base)) => candidates(name, r)
            .find(|(b, _)| same_base(b, base))
            .and_then(|(_, s)| s.map(str::to_string)),
        (None, Some(base)) => suffix_of(name, base),
        _ => None,
    };
    let asked = Asked {
        qtype: t.qtype,
        cookie: t.cookie,
        query_ts: t.query_ts_ns,
        latency: match t.outcome {
            Outcome::Answered { latency_ns, .. } => Some(latency_ns),
            _ => None,
        },
    };
    match c.names.iter_mut().find(|n| n.name == *name) {
        None => {
            c.names_mask |= name_bit(name);
            c.names.push(Tried {
                name: name.clone(),
                asked: smallvec::smallvec![asked],
            });
            c.last_try_ts = t.query_ts_ns;
            if let Some(s) = &suffix {
                c.suffixes.push(s.clone());
            }
        }
        Some(tried) => {
            if tried.has(t.qtype) {
                c.resends += 1;
            } else {
                c.race |= tried.asked.iter().any(|a| race(a, &asked));
            }
            tried.asked.push(asked);
        }
    }
    c.queries += 1;
    match t.outcome {
        Outcome::Answered {
            rcode, latency_ns, ..
        } => {
            c.rcodes.push(rcode);
            c.end_ts = c.end_ts.max(t.query_ts_ns + latency_ns);
            if rcode == 3 && suffix.is_some() {
                c.expansion_nxdomain += 1;
            }
            // NOERROR on the name now last tried ends the lookup.
            if rcode == 0 && c.names.last().is_some_and(|n| n.name == *name) {
                c.answered = true;
            }
        }
        Outcome::TimedOut => {
            c.timeouts += 1;
            c.end_ts = c.end_ts.max(t.query_ts_ns + timeout_ns);
        }
        Outcome::Pending => {}
    }
}

/// A name's bit in [`Chain::names_mask`] (by content: equal names are not always one
/// shared string).
fn name_bit(name: &str) -> u64 {
    use std::hash::BuildHasher;
    1 << (foldhash::fast::FixedState::with_seed(0).hash_one(name) % 64)
}

fn finish(tgid: u32, c: Chain) -> Lookup {
    let base = c.base.clone().unwrap_or_else(|| {
        c.names
            .first()
            .map_or_else(|| ".".into(), |n| n.name.clone())
    });
    Lookup {
        tgid,
        base,
        queries: c.queries,
        resends: c.resends,
        tries: c.names.len() as u64,
        suffixes: c.suffixes,
        expansion_nxdomain: c.expansion_nxdomain,
        time_lost_ns: c.last_try_ts.saturating_sub(c.first_ts),
        answered: c.answered,
        rcodes: c.rcodes,
        timeouts: c.timeouts,
        race: c.race,
    }
}

/// The (base, suffix) readings of `name` under search list `r`: each suffix it ends
/// with, in search-list order, then the name itself.
/// Bases are without their trailing dot here: slices of the name, nothing allocated.
fn candidates<'a>(name: &'a str, r: &'a ResolvConf) -> impl Iterator<Item = Reading<'a>> + 'a {
    let bare = name.trim_end_matches('.');
    r.search
        .iter()
        .filter_map(move |s| {
            let base = bare.strip_suffix(s.as_str())?.strip_suffix('.')?;
            (!base.is_empty()).then_some((base, Some(s.as_str())))
        })
        .chain(std::iter::once((bare, None)))
}

/// A reading of a name: its base (without the trailing dot) and search suffix.
type Reading<'a> = (&'a str, Option<&'a str>);

/// Whether a base read from a name (no trailing dot) is a chain's base (with one).
fn same_base(read: &str, base: &str) -> bool {
    base.strip_suffix('.') == Some(read)
}

/// The first reading of `name`: the earliest search suffix it ends with.
fn split(name: &Rc<str>, r: &ResolvConf) -> Rc<str> {
    let (b, suffix) = candidates(name, r).next().expect("the name itself");
    match suffix {
        // The name itself (most queries, and every one when there is no search list):
        // share it instead of formatting a copy per query.
        None if name.ends_with('.') => Rc::clone(name),
        _ => format!("{b}.").into(),
    }
}

/// `name` minus `base`'s labels in front: the suffix (None when name is base).
fn suffix_of(name: &str, base: &str) -> Option<String> {
    let bare = name.trim_end_matches('.');
    let b = base.trim_end_matches('.');
    let rest = bare.strip_prefix(b)?.strip_prefix('.')?;
    (!rest.is_empty()).then(|| rest.to_string())
}

fn labels(name: &str) -> Vec<&str> {
    name.trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .collect()
}

/// How many leading labels two different names share (0 when equal: no chain).
fn common_labels(a: &str, b: &str) -> usize {
    if a == b {
        return 0;
    }
    split_labels(a)
        .zip(split_labels(b))
        .take_while(|(x, y)| x == y)
        .count()
}

/// The labels of a name, without allocating (the root has none).
fn split_labels(n: &str) -> impl Iterator<Item = &str> {
    let n = n.trim_end_matches('.');
    n.split('.').take(if n.is_empty() { 0 } else { usize::MAX })
}

#[cfg(test)]
mod tests;
