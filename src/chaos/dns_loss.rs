//! dns-loss: a BPF program drops a fraction of the DNS packets to and from the target
//! while a steady load of existing names runs.

use super::names::NameMix;
use super::scenario::{Fault, Intensity, LoadShape, Params, Plan, Scenario};

pub struct DnsLoss;

/// Fraction of matching packets dropped per intensity.
const LOSS: [(Intensity, f64); 3] = [
    (Intensity::Low, 0.05),
    (Intensity::Medium, 0.2),
    (Intensity::High, 0.5),
];
/// The steady load the loss is applied to (qps, workers), the same at every intensity.
/// Enough workers that lookups stuck in re-sends (700 ms each, up to 2 s per lookup
/// at 50% loss) do not slow the rate: in flight = rate × time per lookup.
const LOAD: (u32, u32) = (200, 256);

impl Scenario for DnsLoss {
    fn name(&self) -> &'static str {
        "dns-loss"
    }

    fn description(&self) -> &'static str {
        "A cgroup_skb BPF program drops a random fraction of DNS packets (UDP and TCP, \
         both directions) to and from --target, inside --cgroup when given, while a \
         steady load of existing names runs. The program goes away with dnsdoc."
    }

    fn paired_rules(&self) -> &'static [&'static str] {
        &["dns_failure_rate", "dns_timeouts"]
    }

    fn rationale(&self) -> &'static str {
        "A lost query or answer is never answered: the client re-sends with a new DNS id \
         after 700 ms, and the lost one is a timeout, which counts as a failure \
         (dns_timeouts, dns_failure_rate). Latency of the re-sent lookups rises too, but \
         only for the unlucky ones."
    }

    fn intensities(&self) -> String {
        LOSS.iter()
            .map(|(i, f)| format!("{}: {:.0}% packet loss", i.as_str(), f * 100.0))
            .collect::<Vec<_>>()
            .join("; ")
            + &format!("; under a steady {} qps, {} workers", LOAD.0, LOAD.1)
    }

    fn plan(&self, p: &Params) -> Plan {
        let (qps, conc) = LOAD;
        let fraction = p.loss.unwrap_or_else(|| {
            LOSS.iter()
                .find(|(i, _)| *i == p.intensity)
                .map(|(_, f)| *f)
                .expect("every intensity has a loss")
        });
        Plan {
            load: LoadShape {
                qps: p.qps.unwrap_or(qps),
                concurrency: p.concurrency.unwrap_or(conc),
                names: NameMix::Existing {
                    domain: p.domain.clone(),
                },
            },
            fault: (!p.baseline).then_some(Fault::PacketLoss { fraction }),
        }
    }
}
