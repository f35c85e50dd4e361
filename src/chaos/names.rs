//! The names the load generator asks for, and a small seeded random number generator.
//!
//! Mixes are modelled on Kubernetes clients: `ndots:5` makes a resolver try every search
//! domain first, so a pod asking for `api.github.com` sends
//! `api.github.com.default.svc.cluster.local` and two more expansions (all NXDOMAIN)
//! before the real name. Only `kubernetes.default` and `kube-dns.kube-system` exist in
//! every cluster, so those are the "existing" names. Against a local dnsmasq, the same
//! answers come from:
//!
//! ```text
//! --local=/cluster.local/
//! --host-record=kubernetes.default.svc.cluster.local,10.96.0.1
//! --host-record=kube-dns.kube-system.svc.cluster.local,10.96.0.10
//! ```
//!
//! Every name is fully qualified (trailing dot): the resolver never appends a search
//! domain of its own, and never reads the host's resolver configuration.

use serde::Serialize;

/// A record type the load asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qtype {
    A,
    Aaaa,
    /// What DNS tunnels ask for: the answer carries the reply data.
    Txt,
}

/// splitmix64: tiny, fast and good enough to pick names and labels. Not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: no modulo bias worth mentioning for small n.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A random DNS label of `len` characters from [a-z0-9].
    pub fn label(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize] as char)
            .collect()
    }
}

/// Services that exist in every Kubernetes cluster: `<name>.<namespace>`.
const EXISTING: &[&str] = &["kubernetes.default", "kube-dns.kube-system"];
/// Names pods commonly resolve outside the cluster; with `ndots:5` each is first tried
/// with every search domain appended.
const EXTERNAL: &[&str] = &[
    "api.github.com",
    "s3.amazonaws.com",
    "registry-1.docker.io",
    "login.microsoftonline.com",
    "sts.googleapis.com",
];
/// Search domains of a pod in namespace `default`, without the cluster domain.
const SEARCH: &[&str] = &["default.svc.", "svc.", ""];
/// Services that were deleted but are still asked for (stale configuration).
const MISSING: &[&str] = &[
    "payments.default",
    "legacy-api.default",
    "redis-master.cache",
    "orders-v1.shop",
];

/// Which names a load asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NameMix {
    /// Realistic cluster traffic: 50% existing services, 35% search-path expansions of
    /// external names, 15% deleted services. About half the answers are NXDOMAIN, as
    /// on real clusters with `ndots:5`.
    Cluster { domain: String },
    /// Only names that exist: every answer is NOERROR.
    Existing { domain: String },
    /// `percent_random`% random labels under the domain (NXDOMAIN), the rest existing.
    RandomSubdomains { domain: String, percent_random: u8 },
    /// `percent`% type-A questions for `name`, whose answer must not fit in 512 bytes
    /// (a headless service with many pods), the rest existing services.
    Large {
        domain: String,
        name: String,
        percent: u8,
    },
    /// Names outside the cluster, each with a fresh random first label, so a
    /// forwarder cannot answer them from its cache and must ask its upstream.
    Forwarded,
    /// A dnscat-like tunnel: TXT questions whose labels are base32 chunks of `payload`
    /// (a local file) under [`TUNNEL_DOMAIN`], each with a sequence label.
    Tunnel {
        /// Where the payload came from, for --list and the report.
        source: String,
        #[serde(skip)]
        payload: std::sync::Arc<[u8]>,
    },
    /// A domain-generation algorithm: random second-level names (10 to 16 letters)
    /// under the RFC 6761 `test` TLD, which no resolver should send upstream.
    Dga,
}

/// The registered domain the tunnel's names end in (RFC 6761 `test`: never delegated).
pub const TUNNEL_DOMAIN: &str = "exfil.test";
/// The TLD the DGA's random names end in.
pub const DGA_TLD: &str = "test";
/// Payload bytes per tunnel question: 70 bytes are 112 base32 characters, two labels
/// of 56 (labels may hold 63).
const TUNNEL_CHUNK: usize = 70;

/// The large answer the truncation scenario asks for: a headless service whose A
/// records (one per pod) do not fit in a 512-byte UDP answer.
pub fn large_name(domain: &str) -> String {
    format!("{LARGE_SERVICE}.svc.{domain}.")
}

/// The headless service of [`large_name`], without the cluster domain.
pub const LARGE_SERVICE: &str = "headless.default";

impl NameMix {
    /// Picks the next question: a fully qualified name and a type (80% A, 20% AAAA).
    pub fn pick(&self, rng: &mut Rng) -> (String, Qtype) {
        let qtype = if rng.below(5) == 0 {
            Qtype::Aaaa
        } else {
            Qtype::A
        };
        let name = match self {
            NameMix::Large {
                domain,
                name,
                percent,
            } => {
                if rng.below(100) < u64::from(*percent) {
                    return (name.clone(), Qtype::A);
                }
                existing(rng, domain)
            }
            NameMix::Forwarded => {
                let ext = EXTERNAL[rng.below(EXTERNAL.len() as u64) as usize];
                format!("{}.{ext}.", rng.label(10))
            }
            NameMix::Existing { domain } => existing(rng, domain),
            NameMix::Tunnel { payload, .. } => return (tunnel_name(rng, payload), Qtype::Txt),
            NameMix::Dga => {
                let len = 10 + rng.below(7) as usize;
                const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
                let label: String = (0..len)
                    .map(|_| LETTERS[rng.below(26) as usize] as char)
                    .collect();
                format!("{label}.{DGA_TLD}.")
            }
            NameMix::Cluster { domain } => match rng.below(100) {
                0..50 => existing(rng, domain),
                50..85 => {
                    let ext = EXTERNAL[rng.below(EXTERNAL.len() as u64) as usize];
                    let search = SEARCH[rng.below(SEARCH.len() as u64) as usize];
                    format!("{ext}.{search}{domain}.")
                }
                _ => {
                    let svc = MISSING[rng.below(MISSING.len() as u64) as usize];
                    format!("{svc}.svc.{domain}.")
                }
            },
            NameMix::RandomSubdomains {
                domain,
                percent_random,
            } => {
                if rng.below(100) < u64::from(*percent_random) {
                    format!("{}.svc.{domain}.", rng.label(12))
                } else {
                    existing(rng, domain)
                }
            }
        };
        (name, qtype)
    }

    /// One line for --list and the summary.
    pub fn describe(&self) -> String {
        match self {
            NameMix::Large { name, percent, .. } => format!(
                "{percent}% A questions for {name} (an answer over 512 bytes), the rest \
                 existing services"
            ),
            NameMix::Forwarded => format!(
                "random names under {} (never cached: the target must ask its upstream)",
                EXTERNAL.join(", ")
            ),
            NameMix::Cluster { domain } => format!(
                "Kubernetes-style mix under {domain}: 50% existing services, 35% search-path \
                 expansions, 15% deleted services"
            ),
            NameMix::Existing { domain } => {
                format!("existing services under {domain} only")
            }
            NameMix::Tunnel { source, .. } => format!(
                "TXT questions for <seq>.<56 base32>.<56 base32>.t.{TUNNEL_DOMAIN}., the labels \
                 {TUNNEL_CHUNK}-byte chunks of {source}"
            ),
            NameMix::Dga => format!(
                "random second-level names of 10-16 letters under .{DGA_TLD} (NXDOMAIN from a \
                 resolver that honours RFC 6761)"
            ),
            NameMix::RandomSubdomains {
                domain,
                percent_random,
            } => format!(
                "{percent_random}% random names under svc.{domain} (NXDOMAIN), the rest existing \
                 services"
            ),
        }
    }
}

/// One tunnel question: a random sequence label and a chunk of the payload at a random
/// offset, base32 (RFC 4648, lower case, no padding) in two labels.
fn tunnel_name(rng: &mut Rng, payload: &[u8]) -> String {
    let seq = rng.next_u64() as u32;
    let chunk: Vec<u8> = if payload.len() >= TUNNEL_CHUNK {
        let at = rng.below((payload.len() - TUNNEL_CHUNK + 1) as u64) as usize;
        payload[at..at + TUNNEL_CHUNK].to_vec()
    } else {
        (0..TUNNEL_CHUNK).map(|_| rng.next_u64() as u8).collect()
    };
    let b32 = data_encoding::BASE32_NOPAD
        .encode(&chunk)
        .to_ascii_lowercase();
    let (a, b) = b32.split_at(b32.len() / 2);
    format!("{seq:08x}.{a}.{b}.t.{TUNNEL_DOMAIN}.")
}

/// The tunnel's payload: the first 256 KiB of the running executable (a local file
/// nobody minds sending to loopback, the same on every run), encrypted as real tunnels
/// send it (dnscat2 uses Salsa20; here a seeded keystream XOR stands in: an executable
/// is mostly zeros, which no tunnel sends as they are).
pub fn tunnel_payload() -> (String, std::sync::Arc<[u8]>) {
    use std::io::Read;
    let mut buf = Vec::new();
    let read =
        std::fs::File::open("/proc/self/exe").and_then(|f| f.take(256 << 10).read_to_end(&mut buf));
    let source = match read {
        Ok(_) if buf.len() >= TUNNEL_CHUNK => "the dnsdoc executable, encrypted",
        _ => {
            buf = vec![0; 4096];
            "4 KiB of zeros, encrypted"
        }
    };
    keystream_xor(&mut buf);
    (source.into(), buf.into())
}

/// XORs `data` with a keystream seeded by a constant: applying it twice gives `data`.
pub fn keystream_xor(data: &mut [u8]) {
    let mut rng = Rng::new(0x7475_6e6e_656c);
    for chunk in data.chunks_mut(8) {
        let k = rng.next_u64().to_le_bytes();
        for (b, k) in chunk.iter_mut().zip(k) {
            *b ^= k;
        }
    }
}

fn existing(rng: &mut Rng, domain: &str) -> String {
    let svc = EXISTING[rng.below(EXISTING.len() as u64) as usize];
    format!("{svc}.svc.{domain}.")
}

/// Normalizes a `--domain` value: lower case, no leading or trailing dot, valid labels.
pub fn parse_domain(s: &str) -> Result<String, String> {
    let d = s.trim().trim_matches('.').to_ascii_lowercase();
    if d.is_empty() || d.len() > 200 {
        return Err("must be a DNS domain such as cluster.local".into());
    }
    for label in d.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!("'{label}' is not a valid DNS label"));
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(mix: &NameMix, n: usize) -> Vec<(String, Qtype)> {
        let mut rng = Rng::new(7);
        (0..n).map(|_| mix.pick(&mut rng)).collect()
    }

    #[test]
    fn cluster_mix_has_the_documented_shape() {
        let mix = NameMix::Cluster {
            domain: "cluster.local".into(),
        };
        let names = sample(&mix, 10_000);
        let existing = names
            .iter()
            .filter(|(n, _)| {
                n == "kubernetes.default.svc.cluster.local."
                    || n == "kube-dns.kube-system.svc.cluster.local."
            })
            .count();
        let expansions = names
            .iter()
            .filter(|(n, _)| EXTERNAL.iter().any(|e| n.starts_with(e)))
            .count();
        assert!((4500..5500).contains(&existing), "{existing}");
        assert!((3000..4000).contains(&expansions), "{expansions}");
        let aaaa = names.iter().filter(|(_, t)| *t == Qtype::Aaaa).count();
        assert!((1500..2500).contains(&aaaa), "{aaaa}");
        assert!(names
            .iter()
            .all(|(n, _)| n.ends_with(".cluster.local.") && !n.contains("..")));
    }

    #[test]
    fn random_subdomains_do_not_repeat() {
        let mix = NameMix::RandomSubdomains {
            domain: "example.test".into(),
            percent_random: 100,
        };
        let names = sample(&mix, 1000);
        let distinct: std::collections::HashSet<_> = names.iter().map(|(n, _)| n).collect();
        assert_eq!(distinct.len(), 1000);
        assert!(names[0].0.ends_with(".svc.example.test."));
        assert_eq!(names[0].0.len(), 12 + ".svc.example.test.".len());
    }

    #[test]
    fn existing_mix_only_asks_for_existing_names() {
        let mix = NameMix::Existing {
            domain: "cluster.local".into(),
        };
        for (n, _) in sample(&mix, 100) {
            assert!(n.starts_with("kube"), "{n}");
        }
    }

    #[test]
    fn large_and_forwarded_mixes_have_their_shape() {
        let big = large_name("cluster.local");
        let mix = NameMix::Large {
            domain: "cluster.local".into(),
            name: big.clone(),
            percent: 60,
        };
        let s = sample(&mix, 1000);
        let large = s.iter().filter(|(n, _)| *n == big).count();
        assert!((520..680).contains(&large), "{large}");
        assert!(s
            .iter()
            .filter(|(n, _)| *n == big)
            .all(|(_, q)| *q == Qtype::A));
        let f = sample(&NameMix::Forwarded, 200);
        let distinct: std::collections::HashSet<_> = f.iter().map(|(n, _)| n).collect();
        assert_eq!(distinct.len(), 200, "never the same name twice");
        assert!(f
            .iter()
            .all(|(n, _)| !n.contains("cluster.local") && n.ends_with('.')));
    }

    #[test]
    fn tunnel_names_carry_base32_chunks_in_long_labels_of_txt_questions() {
        let (source, payload) = tunnel_payload();
        assert_eq!(source, "the dnsdoc executable, encrypted");
        // Decrypted, the payload is the executable itself.
        let mut plain = payload.to_vec();
        keystream_xor(&mut plain);
        assert_eq!(&plain[..4], b"\x7fELF");
        let mix = NameMix::Tunnel {
            source,
            payload: payload.clone(),
        };
        let s = sample(&mix, 300);
        let distinct: std::collections::HashSet<_> = s.iter().map(|(n, _)| n).collect();
        assert_eq!(distinct.len(), 300);
        for (n, q) in &s {
            assert_eq!(*q, Qtype::Txt);
            let labels: Vec<&str> = n.trim_end_matches('.').split('.').collect();
            assert_eq!(labels.len(), 6, "{n}");
            assert_eq!((labels[1].len(), labels[2].len()), (56, 56), "{n}");
            assert!(n.ends_with(".t.exfil.test."), "{n}");
            // The labels decode back to a chunk of the file.
            let data = data_encoding::BASE32_NOPAD
                .decode(
                    format!("{}{}", labels[1], labels[2])
                        .to_ascii_uppercase()
                        .as_bytes(),
                )
                .unwrap();
            assert!(payload.windows(data.len()).any(|w| w == data), "{n}");
        }
    }

    #[test]
    fn dga_names_are_random_second_level_names_under_test() {
        let s = sample(&NameMix::Dga, 500);
        let distinct: std::collections::HashSet<_> = s.iter().map(|(n, _)| n).collect();
        assert!(distinct.len() >= 499);
        for (n, _) in &s {
            let label = n.strip_suffix(".test.").unwrap();
            assert!((10..=16).contains(&label.len()), "{n}");
            assert!(label.bytes().all(|b| b.is_ascii_lowercase()), "{n}");
        }
    }

    #[test]
    fn domains_are_validated() {
        assert_eq!(parse_domain("Cluster.Local."), Ok("cluster.local".into()));
        assert!(parse_domain("").is_err());
        assert!(parse_domain("a..b").is_err());
        assert!(parse_domain("bad domain").is_err());
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut rng = Rng::new(1);
        let mut buckets = [0u32; 4];
        for _ in 0..40_000 {
            buckets[rng.below(4) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|b| (9_000..11_000).contains(b)),
            "{buckets:?}"
        );
    }
}
