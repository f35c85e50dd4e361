//! truncation: clients ask for an answer too large for UDP, so every such answer comes
//! back truncated (TC) and the client asks again over TCP.

use super::names::{large_name, NameMix, LARGE_SERVICE};
use super::scenario::{preset, presets_text, Intensity, LoadShape, Params, Plan, Scenario};

pub struct Truncation;

/// (qps cap, workers) per intensity: each large answer costs a TCP connection.
const PRESETS: [(Intensity, u32, u32); 3] = [
    (Intensity::Low, 50, 4),
    (Intensity::Medium, 200, 16),
    (Intensity::High, 1_000, 64),
];
/// Share of questions for the large answer (the rest are existing services).
const PERCENT_LARGE: u8 = 60;

impl Scenario for Truncation {
    fn name(&self) -> &'static str {
        "truncation"
    }

    fn description(&self) -> &'static str {
        "Clients ask (without EDNS, like a classic stub resolver) for the A records of \
         headless.default.svc.<domain>, a headless service with many pods, whose answer \
         does not fit in 512 bytes: it comes back truncated (TC) and each client asks \
         again over TCP. The target must serve that name with 40 or more A records \
         (dnsmasq: one --host-record per pod)."
    }

    fn paired_rules(&self) -> &'static [&'static str] {
        &["dns_truncation_tcp_fallback"]
    }

    fn rationale(&self) -> &'static str {
        "A UDP answer over 512 bytes (without EDNS) is cut and flagged TC, and the client \
         must retry over TCP: one more round trip and a TCP connection per lookup, and a \
         failure wherever TCP port 53 is blocked. dnsdoc counts truncated answers and \
         whether the same process asked again over TCP (dns_truncation_tcp_fallback). \
         The baseline asks for existing services only, whose answers fit."
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
            NameMix::Large {
                domain: p.domain.clone(),
                name: large_name(&p.domain),
                percent: PERCENT_LARGE,
            }
        };
        debug_assert!(large_name(&p.domain).starts_with(LARGE_SERVICE));
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
