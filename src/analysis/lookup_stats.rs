//! Folds finished [`Lookup`]s into the snapshot's [`LookupStats`], per group (node,
//! process, pod, looked-up name).

use std::rc::Rc;

use foldhash::HashMap;

use crate::analysis::lookups::Lookup;
use crate::snapshot::{Counts, LookupStats, Rcodes, SuffixTries};
use crate::units::{round3, round6};

/// Suffixes listed per group.
const MAX_SUFFIXES: usize = 16;
/// Looked-up names tracked individually (the rest count in the other groups only).
pub const MAX_NAMES: usize = 10_000;
/// Processes remembered per looked-up name (who looked it up).
const MAX_BY: usize = 5;

/// A window's lookups folded as they finish (so memory does not grow with their
/// number): the node's, each process's and each looked-up name's.
#[derive(Debug, Default)]
pub struct LookupTallies {
    pub node: LookupTally,
    pub by_tgid: HashMap<u32, LookupTally>,
    /// Per base name of lookups that tried several names or raced: its tally and (some
    /// of) the processes that looked it up.
    pub by_name: HashMap<Rc<str>, (LookupTally, Vec<u32>)>,
}

impl LookupTallies {
    pub fn add(&mut self, l: &Lookup) {
        self.node.add(l);
        self.by_tgid.entry(l.tgid).or_default().add(l);
        // Names are kept for what they cost beyond one query per type: expansions and
        // races (a plain lookup would cost a table insert for nothing to report).
        let costly = l.tries > 1 || l.race;
        if costly && (self.by_name.len() < MAX_NAMES || self.by_name.contains_key(&l.base)) {
            let (t, who) = self
                .by_name
                .entry(l.base.clone())
                .or_insert_with(|| (LookupTally::default(), Vec::new()));
            t.add(l);
            if who.len() < MAX_BY && !who.contains(&l.tgid) {
                who.push(l.tgid);
            }
        }
    }
}

/// Running totals of one group's lookups.
#[derive(Debug, Clone, Default)]
pub struct LookupTally {
    lookups: u64,
    queries: u64,
    resends: u64,
    expanded: u64,
    expansion_nxdomain: u64,
    unanswered: u64,
    races: u64,
    lost_sum_ns: u64,
    lost_max_ns: u64,
    suffixes: HashMap<String, u64>,
    /// Answers of the group's queries (for looked-up names).
    rcodes: Rcodes,
    timeouts: u64,
}

impl LookupTally {
    pub fn add(&mut self, l: &Lookup) {
        self.lookups += 1;
        self.queries += l.queries;
        self.resends += l.resends;
        self.expanded += u64::from(l.tries > 1);
        self.expansion_nxdomain += l.expansion_nxdomain;
        self.unanswered += u64::from(!l.answered);
        self.races += u64::from(l.race);
        self.lost_sum_ns += l.time_lost_ns;
        self.lost_max_ns = self.lost_max_ns.max(l.time_lost_ns);
        for s in &l.suffixes {
            *self.suffixes.entry(s.clone()).or_default() += 1;
        }
        for &r in &l.rcodes {
            self.rcodes.add(r);
        }
        self.timeouts += l.timeouts;
    }

    pub fn queries(&self) -> u64 {
        self.queries
    }

    /// Adds another group's lookups (a pod's from its processes').
    pub fn merge(&mut self, o: &LookupTally) {
        self.lookups += o.lookups;
        self.queries += o.queries;
        self.resends += o.resends;
        self.expanded += o.expanded;
        self.expansion_nxdomain += o.expansion_nxdomain;
        self.unanswered += o.unanswered;
        self.races += o.races;
        self.lost_sum_ns += o.lost_sum_ns;
        self.lost_max_ns = self.lost_max_ns.max(o.lost_max_ns);
        for (k, v) in &o.suffixes {
            *self.suffixes.entry(k.clone()).or_default() += v;
        }
        self.rcodes.merge(&o.rcodes);
        self.timeouts += o.timeouts;
    }

    pub fn stats(&self) -> LookupStats {
        let ms = |ns: u64| round3(ns as f64 / 1e6);
        let mut suffixes: Vec<SuffixTries> = self
            .suffixes
            .iter()
            .map(|(s, &n)| SuffixTries {
                suffix: s.clone(),
                tries: n,
            })
            .collect();
        suffixes.sort_by(|a, b| b.tries.cmp(&a.tries).then(a.suffix.cmp(&b.suffix)));
        suffixes.truncate(MAX_SUFFIXES);
        let per = |v: f64| {
            if self.lookups == 0 {
                0.0
            } else {
                round3(v / self.lookups as f64)
            }
        };
        LookupStats {
            lookups: self.lookups,
            queries: self.queries,
            resends: self.resends,
            queries_per_lookup: per(self.queries.saturating_sub(self.resends) as f64),
            expanded: self.expanded,
            expansion_nxdomain: self.expansion_nxdomain,
            unanswered: self.unanswered,
            race_suspects: self.races,
            time_lost_ms: ms(self.lost_sum_ns),
            time_lost_mean_ms: per(self.lost_sum_ns as f64 / 1e6),
            time_lost_max_ms: ms(self.lost_max_ns),
            suffixes,
        }
    }

    /// The answers the group's queries got, as the counts every group carries.
    pub fn answers(&self, duration_s: f64) -> Counts {
        let responses = self.rcodes.total();
        let failures = self.timeouts + self.rcodes.failed();
        let completed = responses + self.timeouts;
        let ratio = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                round6(a as f64 / b as f64)
            }
        };
        Counts {
            queries: self.queries,
            queries_per_s: if duration_s > 0.0 {
                round3(self.queries as f64 / duration_s)
            } else {
                0.0
            },
            responses,
            timeouts: self.timeouts,
            rcodes: self.rcodes.clone(),
            failures,
            failure_ratio: ratio(failures, completed),
            nxdomain_ratio: ratio(self.rcodes.NXDOMAIN, responses),
            // Lookups keep no timestamps: their rate is over the whole window.
            active_s: round3(duration_s),
            queries_per_active_s: if duration_s > 0.0 {
                round3(self.queries as f64 / duration_s)
            } else {
                0.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(queries: u64, suffixes: &[&str], lost_ms: u64, answered: bool) -> Lookup {
        Lookup {
            tgid: 1,
            base: "api.".into(),
            queries,
            resends: 0,
            tries: suffixes.len() as u64 + 1,
            suffixes: suffixes.iter().map(|s| s.to_string()).collect(),
            expansion_nxdomain: suffixes.len() as u64,
            time_lost_ns: lost_ms * 1_000_000,
            answered,
            rcodes: vec![3; suffixes.len()].into_iter().chain([0]).collect(),
            timeouts: 0,
            race: !answered,
        }
    }

    #[test]
    fn amplification_and_time_lost() {
        let mut t = LookupTally::default();
        t.add(&lookup(8, &["a.test", "b.test", "c.test"], 6, true));
        t.add(&lookup(2, &[], 0, true));
        t.add(&lookup(4, &["a.test"], 3, false));
        let s = t.stats();
        assert_eq!((s.lookups, s.queries, s.queries_per_lookup), (3, 14, 4.667));
        assert_eq!((s.expanded, s.expansion_nxdomain, s.unanswered), (2, 4, 1));
        assert_eq!(s.race_suspects, 1);
        assert_eq!(
            (s.time_lost_ms, s.time_lost_mean_ms, s.time_lost_max_ms),
            (9.0, 3.0, 6.0)
        );
        assert_eq!(s.suffixes[0].suffix, "a.test");
        assert_eq!(s.suffixes[0].tries, 2);
        let a = t.answers(1.0);
        assert_eq!(
            (a.rcodes.NXDOMAIN, a.rcodes.NOERROR, a.responses),
            (4, 3, 7)
        );
        assert_eq!(LookupTally::default().stats().queries_per_lookup, 0.0);
    }

    #[test]
    fn resends_are_loss_not_amplification() {
        // A conntrack race: A+AAAA, both re-sent after the timeout.
        let mut t = LookupTally::default();
        t.add(&Lookup {
            resends: 2,
            ..lookup(4, &[], 0, true)
        });
        let s = t.stats();
        assert_eq!((s.queries, s.resends, s.queries_per_lookup), (4, 2, 2.0));
    }
}
