//! tunnel: a dnscat-like client moves a local file out in the names of TXT questions.

use super::names::{tunnel_payload, NameMix};
use super::scenario::{preset, presets_text, Intensity, LoadShape, Params, Plan, Scenario};

pub struct Tunnel;

/// (qps cap, workers) per intensity: a tunnel is one client, sending steadily.
const PRESETS: [(Intensity, u32, u32); 3] = [
    (Intensity::Low, 30, 1),
    (Intensity::Medium, 100, 2),
    (Intensity::High, 300, 4),
];

impl Scenario for Tunnel {
    fn name(&self) -> &'static str {
        "tunnel"
    }

    fn description(&self) -> &'static str {
        "A dnscat-like client writes base32 chunks of a local file (the dnsdoc executable, \
         encrypted as tunnels send data) \
         as two 56-character labels of TXT questions under exfil.test, a name no resolver \
         should send upstream (RFC 6761)."
    }

    fn paired_rules(&self) -> &'static [&'static str] {
        &["dns_tunnel_suspected", "dns_exfil_volume"]
    }

    fn rationale(&self) -> &'static str {
        "Every question is a new, long, random-looking name of one registered domain \
         (exfil.test), 112 base32 characters of data each: distinct subdomains pass 100 \
         within seconds, their labels average over 4 bits per character and all names are \
         long (dns_tunnel_suspected), and the bytes of those names pass 32 KiB \
         (dns_exfil_volume). Both must name this process. The baseline asks for existing \
         services only."
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
            let (source, payload) = tunnel_payload();
            NameMix::Tunnel { source, payload }
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
