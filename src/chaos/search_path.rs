//! search-path: real glibc resolves short in-cluster names under Kubernetes' resolv.conf
//! (a search list and `options ndots:5`), so every lookup walks the search list.

use super::glibc::GlibcPlan;
use super::names::NameMix;
use super::scenario::{preset, presets_text, Intensity, LoadShape, Params, Plan, Scenario};

pub struct SearchPath;

/// (lookups per second cap, getent workers) per intensity: each lookup is a process.
const PRESETS: [(Intensity, u32, u32); 3] = [
    (Intensity::Low, 10, 2),
    (Intensity::Medium, 40, 4),
    (Intensity::High, 150, 8),
];
/// Services of every cluster, as a pod in another namespace writes them.
const SHORT: [&str; 2] = ["kubernetes.default", "kube-dns.kube-system"];

impl Scenario for SearchPath {
    fn name(&self) -> &'static str {
        "search-path"
    }

    fn description(&self) -> &'static str {
        "Real glibc clients (getent ahosts, in a private mount namespace whose \
         /etc/resolv.conf is a bind mount: search default.svc.<domain> svc.<domain> \
         <domain>, options ndots:5, as in a pod) resolve kubernetes.default and \
         kube-dns.kube-system. Each name has fewer than 5 dots, so glibc tries it with \
         every search domain in turn, A and AAAA each, until one answers. The clients ask \
         a relay dnsdoc runs on 127.53.x.y:53 that forwards to --target."
    }

    fn paired_rules(&self) -> &'static [&'static str] {
        &["dns_search_path_amplification"]
    }

    fn rationale(&self) -> &'static str {
        "Under ndots:5, kubernetes.default is first asked as \
         kubernetes.default.default.svc.<domain> (NXDOMAIN, A and AAAA), then as \
         kubernetes.default.svc.<domain>: 4 queries for one getaddrinfo call where 2 would \
         do, and an outside name costs 8. dnsdoc groups the chain back into one lookup \
         per process and counts queries per lookup (dns_search_path_amplification). The \
         baseline asks for the same services fully qualified (trailing dot): 2 queries \
         per lookup."
    }

    fn intensities(&self) -> String {
        presets_text(&PRESETS, "getent workers")
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
            search: vec![format!("default.svc.{d}"), format!("svc.{d}"), d.clone()],
            options: "ndots:5 timeout:1 attempts:2".into(),
            names: SHORT
                .iter()
                .map(|s| {
                    if p.baseline {
                        format!("{s}.svc.{d}.")
                    } else {
                        s.to_string()
                    }
                })
                .collect(),
            drop_pair_sibling: false,
        })
    }
}
