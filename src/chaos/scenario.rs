//! What a scenario is, and the registry of them. One scenario per file; adding one is
//! one file and one line in [`registry`].

use std::time::Duration;

use clap::ValueEnum;
use serde::Serialize;

use super::names::NameMix;

/// How hard a scenario pushes. Each scenario maps it to concrete numbers (see --list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Intensity {
    Low,
    Medium,
    High,
}

impl Intensity {
    pub fn as_str(self) -> &'static str {
        match self {
            Intensity::Low => "low",
            Intensity::Medium => "medium",
            Intensity::High => "high",
        }
    }
}

/// What the user asked for, validated.
#[derive(Debug, Clone)]
pub struct Params {
    pub intensity: Intensity,
    /// `--qps`, overriding the intensity.
    pub qps: Option<u32>,
    /// `--concurrency`, overriding the intensity.
    pub concurrency: Option<u32>,
    /// `--loss`, overriding the intensity (dns-loss only).
    pub loss: Option<f64>,
    /// The cluster domain names are built under.
    pub domain: String,
    /// Run the healthy twin: same length and shape, no fault.
    pub baseline: bool,
}

/// The shape of the load a scenario sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadShape {
    pub qps: u32,
    pub concurrency: u32,
    pub names: NameMix,
}

/// A fault applied for the duration of the load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// Drop this fraction of DNS packets to and from the target (bpf/loss.bpf.c).
    PacketLoss { fraction: f64 },
}

/// What one run does: the load, and the fault if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub load: LoadShape,
    pub fault: Option<Fault>,
}

/// A game-day scenario: something that should make some rules fire.
pub trait Scenario: Sync {
    /// The name given to `--induce`.
    fn name(&self) -> &'static str;
    /// What it does, one sentence.
    fn description(&self) -> &'static str;
    /// The rules that must fire (at WARNING or above) while it runs.
    fn paired_rules(&self) -> &'static [&'static str];
    /// Why these rules and not others: what the scenario really does to a server.
    fn rationale(&self) -> &'static str;
    /// The concrete numbers behind each intensity, for --list.
    fn intensities(&self) -> String;
    /// The plan for these parameters. With `params.baseline`, the healthy twin: the same
    /// duration and client shape, but nothing that should make a paired rule fire.
    fn plan(&self, params: &Params) -> Plan;
}

/// Every scenario, in --list order.
pub fn registry() -> &'static [&'static dyn Scenario] {
    &[
        &super::dns_flood::DnsFlood,
        &super::nxdomain_storm::NxdomainStorm,
        &super::dns_loss::DnsLoss,
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

/// The query timeout of the load's resolvers (per attempt). Short enough that a run's
/// lookups all end soon after its duration, long enough that a loaded loopback server
/// still answers in time.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(names, ["dns-flood", "nxdomain-storm", "dns-loss"]);
        for n in &names {
            assert_eq!(find(n).unwrap().name(), *n);
        }
        assert!(find("dns-floods").is_none());
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
                None => u64::from(p.load.qps) * u64::from(p.load.concurrency),
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
