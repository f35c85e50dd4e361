//! upstream-timeout: the target is a local forwarder, and its upstream stops answering.

use super::names::NameMix;
use super::scenario::{preset, presets_text, Fault, Intensity, LoadShape, Params, Plan, Scenario};

pub struct UpstreamTimeout;

/// (qps cap, workers) per intensity: every lookup waits on a silent upstream, so
/// workers are many and the rate is modest.
const PRESETS: [(Intensity, u32, u32); 3] = [
    (Intensity::Low, 50, 32),
    (Intensity::Medium, 200, 128),
    (Intensity::High, 1_000, 512),
];

impl Scenario for UpstreamTimeout {
    fn name(&self) -> &'static str {
        "upstream-timeout"
    }

    fn description(&self) -> &'static str {
        "The target is a local forwarder (CoreDNS, unbound, dnsmasq) and --upstream is \
         the server it forwards to. A cgroup_skb BPF program drops every DNS packet to \
         and from the upstream inside --cgroup (where the forwarder must run), so the \
         upstream never answers, while clients ask for names the forwarder cannot answer \
         from cache. The program goes away with dnsdoc."
    }

    fn paired_rules(&self) -> &'static [&'static str] {
        &["dns_failure_rate", "dns_local_server_failures"]
    }

    fn rationale(&self) -> &'static str {
        "A forwarder whose upstream is silent can only give up: it answers SERVFAIL once \
         its own timeout expires (unbound, CoreDNS) or not at all (dnsmasq), and clients \
         time out and re-send. Both are failures on the client side (dns_failure_rate) \
         and on the forwarder's own side, which dnsdoc sees when it is local \
         (dns_local_server_failures). The baseline sends the same names with the \
         upstream reachable."
    }

    fn intensities(&self) -> String {
        presets_text(&PRESETS, "workers") + "; the upstream drops 100% of DNS packets"
    }

    fn plan(&self, p: &Params) -> Plan {
        let (qps, conc) = preset(&PRESETS, p.intensity);
        Plan {
            load: LoadShape {
                qps: p.qps.unwrap_or(qps),
                concurrency: p.concurrency.unwrap_or(conc),
                names: NameMix::Forwarded,
            },
            fault: (!p.baseline).then_some(Fault::SilentUpstream),
        }
    }
}
