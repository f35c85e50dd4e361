//! dga: a seeded domain-generation algorithm asks for random second-level names.

use super::names::NameMix;
use super::scenario::{preset, presets_text, Intensity, LoadShape, Params, Plan, Scenario};

pub struct Dga;

/// (qps cap, workers) per intensity: malware tries its list steadily, not as a flood.
const PRESETS: [(Intensity, u32, u32); 3] = [
    (Intensity::Low, 20, 1),
    (Intensity::Medium, 50, 2),
    (Intensity::High, 150, 4),
];

impl Scenario for Dga {
    fn name(&self) -> &'static str {
        "dga"
    }

    fn description(&self) -> &'static str {
        "A seeded domain-generation algorithm asks for random second-level names of 10 to \
         16 letters under the test TLD (RFC 6761: a resolver answers NXDOMAIN and never \
         asks upstream), A and AAAA like malware looking for its command server."
    }

    fn paired_rules(&self) -> &'static [&'static str] {
        &["dns_dga_suspected"]
    }

    fn rationale(&self) -> &'static str {
        "Every question is a new registered domain under one suffix (test) and none \
         exists: distinct NXDOMAIN domains pass 50 within seconds, all of them NXDOMAIN \
         (dns_dga_suspected, which must name this process). The target must answer \
         NXDOMAIN for test (dnsmasq: --local=/test/; unbound and systemd-resolved do for \
         RFC 6761 names). The baseline asks for existing services only."
    }

    fn intensities(&self) -> String {
        presets_text(&PRESETS, "workers")
    }

    fn names_process(&self) -> bool {
        true
    }

    fn plan(&self, p: &Params) -> Plan {
        let (qps, conc) = preset(&PRESETS, p.intensity);
        let names = if p.baseline {
            NameMix::Existing {
                domain: p.domain.clone(),
            }
        } else {
            NameMix::Dga
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
