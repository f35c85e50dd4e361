//! conntrack-race: real glibc sends A and AAAA together from one socket, and the second
//! of each pair is lost once on the way, as a failed conntrack insert under DNAT loses it.

use super::glibc::GlibcPlan;
use super::names::NameMix;
use super::scenario::{preset, presets_text, Intensity, LoadShape, Params, Plan, Scenario};

pub struct ConntrackRace;

/// (lookups per second cap, getent workers) per intensity: each lookup stalls for the
/// resolver's 1 s timeout, so workers ≈ rate.
const PRESETS: [(Intensity, u32, u32); 3] = [
    (Intensity::Low, 4, 6),
    (Intensity::Medium, 10, 16),
    (Intensity::High, 30, 40),
];

impl Scenario for ConntrackRace {
    fn name(&self) -> &'static str {
        "conntrack-race"
    }

    fn description(&self) -> &'static str {
        "Real glibc clients (getent ahosts, in a private mount namespace whose \
         /etc/resolv.conf is a bind mount: options timeout:1 attempts:2, no search list) \
         resolve existing services fully qualified: getaddrinfo sends A and AAAA together \
         from one socket. They ask a relay dnsdoc runs on 127.53.x.y:53 (the Service IP) \
         that forwards to --target and drops the second query of each socket's pair once, \
         as a lost conntrack insert does; glibc re-sends it after its 1 s timeout."
    }

    fn paired_rules(&self) -> &'static [&'static str] {
        &["dns_conntrack_race"]
    }

    fn rationale(&self) -> &'static str {
        "When both queries of a parallel pair create the same conntrack entry at once \
         (kube-proxy DNAT to the cluster DNS Service IP), one insert can fail and that \
         packet is gone: one answer comes in microseconds, its sibling only after the \
         resolver's timeout. dnsdoc sees that fingerprint per lookup (dns_conntrack_race). \
         Nothing else is wrong: the target answers everything it gets. The baseline runs \
         the same clients with nothing dropped."
    }

    fn intensities(&self) -> String {
        presets_text(&PRESETS, "getent workers") + "; one pair sibling dropped per lookup"
    }

    fn plan(&self, p: &Params) -> Plan {
        let (qps, conc) = preset(&PRESETS, p.intensity);
        Plan {
            load: LoadShape {
                qps: p.qps.unwrap_or(qps),
                concurrency: p.concurrency.unwrap_or(conc),
                names: NameMix::Existing {
                    domain: p.domain.clone(),
                },
            },
            fault: None,
        }
    }

    fn glibc(&self, p: &Params) -> Option<GlibcPlan> {
        let d = &p.domain;
        Some(GlibcPlan {
            search: Vec::new(),
            options: "timeout:1 attempts:2".into(),
            names: vec![
                format!("kubernetes.default.svc.{d}."),
                format!("kube-dns.kube-system.svc.{d}."),
            ],
            drop_pair_sibling: !p.baseline,
        })
    }
}
