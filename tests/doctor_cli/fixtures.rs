//! The fixture snapshots the tests judge, what the built-in rules make of them as the
//! library evaluates it, and a warnings-only snapshot made from the healthy one.

use std::path::Path;

use dnsdoc::rules::{evaluate_all, RuleSet};
use dnsdoc::snapshot::Snapshot;

use crate::common::{builtin_rule, TempDir};

pub const HEALTHY: &str = "tests/fixtures/snapshots/healthy.json";
pub const INCIDENT: &str = "tests/fixtures/snapshots/incident.json";
pub const EMPTY: &str = "tests/fixtures/snapshots/empty.json";
pub const LOW: &str = "tests/fixtures/snapshots/low_traffic.json";

/// How many built-in rules there are.
pub fn builtin_rules() -> usize {
    RuleSet::builtin().unwrap().rules().len()
}

/// What the built-in rules make of a fixture snapshot, as the library evaluates it.
pub fn evaluate_builtin(snapshot: &str) -> dnsdoc::rules::Evaluation {
    let s = Snapshot::read(Path::new(snapshot)).unwrap();
    evaluate_all(&s, &RuleSet::builtin().unwrap())
}

/// A warnings-only snapshot: the healthy one with enough SERVFAIL (2% with the shipped
/// thresholds) to be past the WARNING and below the CRITICAL threshold of both
/// dns_servfail and dns_failure_rate, as the built-in rules set them.
pub fn warnings_only(tmp: &TempDir) -> String {
    let (servfail, failure) = (
        builtin_rule("dns_servfail"),
        builtin_rule("dns_failure_rate"),
    );
    let lo = servfail.warning.unwrap().max(failure.warning.unwrap());
    let hi = servfail.critical.unwrap().min(failure.critical.unwrap());
    assert!(lo < hi, "no ratio is WARNING for both rules");
    let mut s = Snapshot::read(Path::new(HEALTHY)).unwrap();
    let c = &mut s.totals.counts;
    let completed = (c.responses + c.timeouts) as f64;
    let n = ((lo + (hi - lo) / 4.0) * completed).round() as u64;
    c.failures += n - c.rcodes.SERVFAIL;
    c.rcodes.SERVFAIL = n;
    let p = tmp.path().join("warn.json");
    s.write_atomic(&p).unwrap();
    p.display().to_string()
}
