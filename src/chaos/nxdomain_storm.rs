//! nxdomain-storm: clients ask for random names that do not exist.

use super::names::NameMix;
use super::scenario::{preset, presets_text, Intensity, LoadShape, Params, Plan, Scenario};

pub struct NxdomainStorm;

/// (qps cap, workers) per intensity: a storm of wrong names, not a flood.
const PRESETS: [(Intensity, u32, u32); 3] = [
    (Intensity::Low, 100, 8),
    (Intensity::Medium, 300, 16),
    (Intensity::High, 1_000, 32),
];
/// Share of the storm's questions that are random (the rest are existing services).
const PERCENT_RANDOM: u8 = 80;

impl Scenario for NxdomainStorm {
    fn name(&self) -> &'static str {
        "nxdomain-storm"
    }

    fn description(&self) -> &'static str {
        "Clients ask for random subdomains that do not exist (80% of questions, the rest \
         existing services), like a misconfigured client or a random-subdomain attack."
    }

    fn paired_rules(&self) -> &'static [&'static str] {
        &["dns_nxdomain_ratio"]
    }

    fn rationale(&self) -> &'static str {
        "Every random name is answered NXDOMAIN, quickly: latency and failure rate stay \
         normal (NXDOMAIN is an answer, not a failure), so only the NXDOMAIN share of \
         answers moves, to about 80% (dns_nxdomain_ratio). The baseline asks for existing \
         names only."
    }

    fn intensities(&self) -> String {
        presets_text(&PRESETS, "workers")
    }

    fn plan(&self, p: &Params) -> Plan {
        let (qps, conc) = preset(&PRESETS, p.intensity);
        let names = if p.baseline {
            NameMix::Existing {
                domain: p.domain.clone(),
            }
        } else {
            NameMix::RandomSubdomains {
                domain: p.domain.clone(),
                percent_random: PERCENT_RANDOM,
            }
        };
        Plan {
            load: LoadShape {
                qps: p.qps.unwrap_or(qps),
                concurrency: p.concurrency.unwrap_or(conc),
                names,
            },
            fault: None,
        }
    }
}
