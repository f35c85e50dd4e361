//! The scenarios `dnsdoc chaos` knows, in --list order. The one place a new scenario
//! is registered (its file holds the rest); kept apart from `scenario.rs`, which the
//! scenarios themselves import, so that nothing imports in a circle.

use super::conntrack_race::ConntrackRace;
use super::dga::Dga;
use super::dns_flood::DnsFlood;
use super::dns_loss::DnsLoss;
use super::nxdomain_storm::NxdomainStorm;
use super::scenario::Scenario;
use super::search_path::SearchPath;
use super::truncation::Truncation;
use super::tunnel::Tunnel;
use super::upstream_timeout::UpstreamTimeout;

/// Every scenario, in --list order.
pub fn registry() -> &'static [&'static dyn Scenario] {
    &[
        &DnsFlood,
        &NxdomainStorm,
        &DnsLoss,
        &Truncation,
        &UpstreamTimeout,
        &Tunnel,
        &Dga,
        &SearchPath,
        &ConntrackRace,
    ]
}

/// Looks a scenario up by name.
pub fn find(name: &str) -> Option<&'static dyn Scenario> {
    registry().iter().copied().find(|s| s.name() == name)
}

/// The valid names, for error messages.
pub fn names() -> Vec<&'static str> {
    registry().iter().map(|s| s.name()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::scenario::{Fault, Intensity, Params, Plan};
    use crate::rules::RuleSet;

    fn params(intensity: Intensity, baseline: bool) -> Params {
        Params {
            intensity,
            qps: None,
            concurrency: None,
            loss: None,
            domain: "cluster.local".into(),
            baseline,
        }
    }

    #[test]
    fn registry_names_are_unique_and_findable() {
        let names = names();
        assert_eq!(
            names,
            [
                "dns-flood",
                "nxdomain-storm",
                "dns-loss",
                "truncation",
                "upstream-timeout",
                "tunnel",
                "dga",
                "search-path",
                "conntrack-race",
            ]
        );
        for n in &names {
            assert_eq!(find(n).unwrap().name(), *n);
        }
        assert!(find("dns-floods").is_none());
    }

    #[test]
    fn every_paired_rule_is_a_builtin_rule() {
        let builtin = RuleSet::builtin().unwrap();
        for s in registry() {
            for id in s.paired_rules() {
                assert!(
                    builtin.get(id).is_some(),
                    "{}: no built-in rule {id}",
                    s.name()
                );
            }
        }
    }

    #[test]
    fn every_scenario_pairs_rules_and_explains_why() {
        for s in registry() {
            assert!(!s.paired_rules().is_empty(), "{}", s.name());
            assert!(s.rationale().len() > 40, "{}", s.name());
            assert!(s.intensities().contains("high"), "{}", s.name());
            for r in s.paired_rules() {
                assert!(r.starts_with("dns_"), "{r}");
            }
        }
    }

    #[test]
    fn intensities_grow_and_overrides_win() {
        for s in registry() {
            let lo = s.plan(&params(Intensity::Low, false));
            let hi = s.plan(&params(Intensity::High, false));
            let severity = |p: &Plan| match p.fault {
                Some(Fault::PacketLoss { fraction }) => (fraction * 1e6) as u64,
                Some(Fault::SilentUpstream) | None => {
                    u64::from(p.load.qps) * u64::from(p.load.concurrency)
                }
            };
            assert!(severity(&lo) < severity(&hi), "{}", s.name());
            let mut p = params(Intensity::Medium, false);
            p.qps = Some(123);
            p.concurrency = Some(7);
            let plan = s.plan(&p);
            assert_eq!((plan.load.qps, plan.load.concurrency), (123, 7));
        }
    }

    #[test]
    fn baselines_have_no_fault() {
        for s in registry() {
            let plan = s.plan(&params(Intensity::High, true));
            assert_eq!(plan.fault, None, "{}", s.name());
        }
    }
}
