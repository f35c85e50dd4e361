//! dns-flood: many concurrent clients flood the target with a realistic mix of names.

use super::names::NameMix;
use super::scenario::{preset, presets_text, Intensity, LoadShape, Params, Plan, Scenario};

pub struct DnsFlood;

/// (qps cap, workers) per intensity.
const PRESETS: [(Intensity, u32, u32); 3] = [
    (Intensity::Low, 5_000, 64),
    (Intensity::Medium, 20_000, 512),
    (Intensity::High, 100_000, 2_048),
];
/// The healthy twin: the same names at a rate any server handles.
const BASELINE: (u32, u32) = (200, 4);

impl Scenario for DnsFlood {
    fn name(&self) -> &'static str {
        "dns-flood"
    }

    fn description(&self) -> &'static str {
        "Hundreds of concurrent clients (hickory-proto queries, one socket each) flood the target with a \
         Kubernetes-style mix of names (existing services, search-path expansions that \
         are NXDOMAIN, deleted services)."
    }

    fn paired_rules(&self) -> &'static [&'static str] {
        &["dns_high_latency", "dns_failure_rate"]
    }

    fn rationale(&self) -> &'static str {
        "Past its capacity a server queues: answers wait behind the backlog in its socket \
         buffer, so p99 climbs past 100 ms (dns_high_latency); then the buffer overflows, \
         queries are dropped and clients re-send with new ids, so the unanswered ones \
         fail (dns_failure_rate; dns_timeouts fires too). A server with headroom shows \
         neither: dnsmasq answers ~20k qps in microseconds, more than one 2-core box can \
         send, so aim the flood at a server with a CPU budget (see docs/CHAOS.md)."
    }

    fn intensities(&self) -> String {
        presets_text(&PRESETS, "workers")
    }

    fn plan(&self, p: &Params) -> Plan {
        let (qps, conc) = if p.baseline {
            BASELINE
        } else {
            preset(&PRESETS, p.intensity)
        };
        Plan {
            load: LoadShape {
                qps: p.qps.unwrap_or(qps),
                concurrency: p.concurrency.unwrap_or(conc),
                names: NameMix::Cluster {
                    domain: p.domain.clone(),
                },
            },
            fault: None,
        }
    }
}
