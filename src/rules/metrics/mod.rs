//! The metric registry: every number a rule may read from a snapshot, per scope.
//!
//! Rules name metrics by string (`latency.p99_ms`), so this table is what makes a typo
//! an error instead of a rule that silently never fires. It is also the reference for
//! `dnsdoc rules metrics` and docs/RULES.md (a test keeps the two in step).
//!
//! - [`scope`]: [`Scope`] and [`Unit`].
//! - [`registry`](mod@registry): [`Metric`], [`Registry`] and [`registry()`].
//! - [`tables`]: the plain metrics as data.
//! - [`server_tables`]: local servers' hops and loops, CoreDNS's counters.
//! - [`view`]: reading a metric for one subject of a snapshot ([`View`]).
//! - [`suggest`]: edit distance for "did you mean" hints.

mod registry;
mod scope;
mod security;
mod server_tables;
mod suggest;
mod tables;
mod view;

pub use registry::{registry, Metric, Registry};
pub use scope::{Scope, Unit};
pub(crate) use suggest::edit_distance;
pub use view::{Row, View};

#[cfg(test)]
mod tests {
    use super::view::{median, Peers};
    use super::*;

    #[test]
    fn names_are_unique_per_scope_and_samples_are_counts() {
        let r = registry();
        for scope in Scope::ALL {
            let mut seen = std::collections::HashSet::new();
            for m in r.for_scope(scope) {
                assert!(seen.insert(&m.name), "{} twice in {scope}", m.name);
                let s = r
                    .find(scope, &m.samples)
                    .unwrap_or_else(|| panic!("{}: samples {} not in {scope}", m.name, m.samples));
                assert_eq!(s.unit, Unit::Count, "{}: samples must be a count", m.name);
            }
        }
        assert!(r.find(Scope::Name, "latency.p99_ms").is_none());
        assert!(r.find(Scope::Process, "capture.dropped.total").is_none());
        assert!(r.find(Scope::Node, "latency.p99_vs_peers").is_none());
    }

    #[test]
    fn suggests_close_names_only() {
        let r = registry();
        let hint = r.suggest(Scope::Node, "latency.p98_ms");
        assert!(
            matches!(hint, Some("latency.p90_ms" | "latency.p99_ms")),
            "{hint:?}"
        );
        assert_eq!(
            r.suggest(Scope::Node, "failure_rate"),
            Some("failure_ratio")
        );
        assert_eq!(r.suggest(Scope::Node, "zzzzzzzzzzzzzzzzzzzz"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("vaule", "value"), 1);
    }

    #[test]
    fn units_format_for_people() {
        assert_eq!(Unit::Ms.format(812.4), "812 ms");
        assert_eq!(Unit::Ratio.format(0.052), "5.2%");
        assert_eq!(Unit::Points.format(0.295), "+29.5 points");
        assert_eq!(Unit::Count.format(12.0), "12");
        assert_eq!(Unit::Factor.format(4.25), "4.2x");
        let m = |v: &[f64], skip| median(&Peers { sorted: v, skip });
        assert_eq!(m(&[1.0, 2.0, 3.0], None), Some(2.0));
        assert_eq!(m(&[1.0, 4.0], None), Some(2.5));
        assert_eq!(
            m(&[1.0, 2.0, 3.0, 10.0], Some(3)),
            Some(2.0),
            "without itself"
        );
        assert_eq!(m(&[1.0, 2.0, 3.0, 10.0], Some(0)), Some(3.0));
        assert_eq!(m(&[5.0], Some(0)), None);
    }
}
