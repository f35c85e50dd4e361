//! The security rules against generated traffic, through the real aggregation: a
//! benign corpus of a few thousand names with the shapes that look most like tunnels
//! and DGA malware (search-path expansions, CDN and cloud names, DKIM/DNSSEC TXT
//! lookups, reverse lookups, SRV, UUIDs, hash-sharded buckets, telemetry) must give no
//! finding at all; a tunnel, an exfiltration in hex and a DGA added to the same traffic
//! must each be found, naming their own process.
//!
//! The generator is seeded and deterministic: a failure names the subject and the
//! numbers, and reproduces.

use std::rc::Rc;

use dnsdoc::analysis::aggregate::Aggregator;
use dnsdoc::analysis::dns::Question;
use dnsdoc::analysis::matcher::{Outcome, Role, Transaction};
use dnsdoc::analysis::owners::Owner;
use dnsdoc::analysis::Attributed;
use dnsdoc::capture::Protocol;
use dnsdoc::rules::{evaluate, Finding, RuleSet, Scope};
use dnsdoc::snapshot::Snapshot;

const SECURITY_RULES: [&str; 3] = [
    "dns_tunnel_suspected",
    "dns_dga_suspected",
    "dns_exfil_volume",
];

const A: u16 = 1;
const AAAA: u16 = 28;
const TXT: u16 = 16;
const SRV: u16 = 33;
const PTR: u16 = 12;
const DS: u16 = 43;
const DNSKEY: u16 = 48;
const NOERROR: u16 = 0;
const NXDOMAIN: u16 = 3;

/// splitmix64: the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char)
            .collect()
    }

    fn hex(&mut self, len: usize) -> String {
        self.chars(b"0123456789abcdef", len)
    }

    fn base36(&mut self, len: usize) -> String {
        self.chars(b"abcdefghijklmnopqrstuvwxyz0123456789", len)
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
}

/// One process's queries, as the aggregator receives them.
struct Traffic {
    agg: Aggregator,
    ts_ns: u64,
}

impl Traffic {
    fn new() -> Self {
        Traffic {
            agg: Aggregator::new(),
            ts_ns: 0,
        }
    }

    fn query(&mut self, pid: u32, comm: &str, name: &str, qtype: u16, rcode: u16) {
        // Spread over a 60 s window.
        self.ts_ns += 5_000_000;
        let name = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
        let a = Attributed {
            tx: Transaction {
                role: Role::Client,
                cookie: u64::from(pid),
                protocol: Protocol::Udp,
                server: "127.0.0.53:53".parse().unwrap(),
                client: "127.0.0.1:40000".parse().unwrap(),
                question: Some(Question {
                    name: Rc::from(name.as_str()),
                    qtype,
                    qclass: 1,
                }),
                query_ts_ns: self.ts_ns,
                outcome: Outcome::Answered {
                    rcode,
                    truncated: false,
                    latency_ns: 2_000_000,
                },
                response_bytes: 40 + 2 * name.len() as u32,
            },
            owner: Some(Owner {
                tgid: pid,
                thread_comm: comm.into(),
            }),
        };
        self.agg.add(&a);
    }

    /// A+AAAA, as getaddrinfo asks.
    fn lookup(&mut self, pid: u32, comm: &str, name: &str, rcode: u16) {
        self.query(pid, comm, name, A, rcode);
        self.query(pid, comm, name, AAAA, rcode);
    }

    fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot {
            schema: dnsdoc::snapshot::SCHEMA,
            ..Default::default()
        };
        s.window.duration_s = 60.0;
        s.domains = self.agg.domains(60.0, |pid| (format!("proc{pid}"), None));
        s
    }
}

const WORDS: &[&str] = &[
    "api",
    "auth",
    "billing",
    "cart",
    "catalog",
    "checkout",
    "config",
    "events",
    "gateway",
    "inventory",
    "login",
    "media",
    "metrics",
    "notifications",
    "orders",
    "payments",
    "profile",
    "search",
    "static",
    "users",
    "web",
    "worker",
    "reports",
    "ledger",
];
const EXTERNAL: &[&str] = &[
    "api.github.com",
    "registry-1.docker.io",
    "login.microsoftonline.com",
    "sts.googleapis.com",
    "storage.googleapis.com",
    "hooks.slack.com",
    "api.stripe.com",
    "o123456.ingest.sentry.io",
    "prod-registry-k8s-io-eu-west-1.s3.dualstack.eu-west-1.amazonaws.com",
    "management.azure.com",
];
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
];

/// Kubernetes pods with ndots:5: every outside name first with each search suffix
/// (NXDOMAIN), then as itself; in-cluster services by their short names.
fn kubernetes(t: &mut Traffic, rng: &mut Rng) {
    for pod in 0..6u32 {
        let pid = 1000 + pod;
        let ns = rng.pick(&["default", "shop", "payments", "observability"]);
        for _ in 0..60 {
            let ext = if rng.below(3) == 0 {
                format!("{}.{}", rng.pick(WORDS), rng.pick(EXTERNAL))
            } else {
                rng.pick(EXTERNAL).to_string()
            };
            for search in [
                format!("{ns}.svc.cluster.local"),
                "svc.cluster.local".to_string(),
                "cluster.local".to_string(),
                "eu-west-1.compute.internal".to_string(),
            ] {
                t.lookup(pid, "app", &format!("{ext}.{search}"), NXDOMAIN);
            }
            t.lookup(pid, "app", &ext, NOERROR);
            let svc = format!("{}-{}", rng.pick(WORDS), rng.pick(WORDS));
            let other_ns = rng.pick(&["default", "shop", "kube-system", "monitoring"]);
            t.lookup(
                pid,
                "app",
                &format!("{svc}.{other_ns}.svc.cluster.local"),
                NOERROR,
            );
            // Pod A records and headless StatefulSet members.
            let ip = format!(
                "10-{}-{}-{}",
                rng.below(256),
                rng.below(256),
                rng.below(256)
            );
            t.lookup(pid, "app", &format!("{ip}.{ns}.pod.cluster.local"), NOERROR);
            t.lookup(
                pid,
                "app",
                &format!("{svc}-{}.{svc}.{ns}.svc.cluster.local", rng.below(5)),
                NOERROR,
            );
        }
    }
}

/// CDN and cloud endpoints: every bucket, distribution and balancer its own name.
fn cdn_and_cloud(t: &mut Traffic, rng: &mut Rng) {
    let pid = 2000;
    for _ in 0..250 {
        let region = rng.pick(REGIONS);
        let names = [
            format!("d{}.cloudfront.net", rng.base36(13)),
            format!(
                "{}-{}-assets.s3.amazonaws.com",
                rng.pick(WORDS),
                rng.below(10_000)
            ),
            format!(
                "{}-{}.s3.{region}.amazonaws.com",
                rng.pick(WORDS),
                rng.hex(8)
            ),
            format!(
                "internal-{}-{}-{}.{region}.elb.amazonaws.com",
                rng.pick(WORDS),
                rng.base36(6),
                rng.below(10_000_000_000)
            ),
            format!("{}-{}.azureedge.net", rng.pick(WORDS), rng.base36(8)),
            format!(
                "{}-{}.apps.googleusercontent.com",
                rng.below(1_000_000_000_000),
                rng.base36(32)
            ),
            format!("lh{}.googleusercontent.com", rng.below(7)),
            format!("{}.blob.core.windows.net", rng.base36(20)),
        ];
        for n in names {
            t.lookup(pid, "envoy", &n, NOERROR);
        }
    }
}

/// A mail server: DKIM, DMARC, SPF and MTA-STS TXT lookups, MX, DNSSEC keys, and a
/// resolver validating DNSSEC.
fn mail_and_dnssec(t: &mut Traffic, rng: &mut Rng) {
    let pid = 3000;
    for i in 0..300 {
        let domain = format!(
            "{}{}.{}",
            rng.pick(WORDS),
            i,
            rng.pick(&["com", "org", "net", "co.uk", "de", "io"])
        );
        let selector = rng.pick(&["selector1", "selector2", "google", "k1", "s1024", "default"]);
        t.query(
            pid,
            "postfix",
            &format!("{selector}._domainkey.{domain}"),
            TXT,
            NOERROR,
        );
        t.query(pid, "postfix", &format!("_dmarc.{domain}"), TXT, NOERROR);
        t.query(pid, "postfix", &domain, TXT, NOERROR);
        t.query(pid, "postfix", &format!("_mta-sts.{domain}"), TXT, NXDOMAIN);
        t.query(
            pid,
            "postfix",
            &format!("_smtp._tls.{domain}"),
            TXT,
            NXDOMAIN,
        );
        t.query(pid, "postfix", &domain, 15, NOERROR);
        t.query(4000, "unbound", &domain, DNSKEY, NOERROR);
        t.query(4000, "unbound", &domain, DS, NOERROR);
    }
    // Many DKIM keys of one big sender (a selector per key rotation).
    for _ in 0..150 {
        t.query(
            pid,
            "postfix",
            &format!("{}._domainkey.mail.example-sender.com", rng.base36(10)),
            TXT,
            NOERROR,
        );
    }
}

/// Reverse lookups of many addresses, most without PTR records (a log server).
fn reverse(t: &mut Traffic, rng: &mut Rng) {
    let pid = 5000;
    for _ in 0..800 {
        let name = format!(
            "{}.{}.{}.{}.in-addr.arpa",
            rng.below(256),
            rng.below(256),
            rng.below(256),
            rng.below(256)
        );
        let rcode = if rng.below(10) < 7 { NXDOMAIN } else { NOERROR };
        t.query(pid, "rsyslogd", &name, PTR, rcode);
    }
    for _ in 0..300 {
        let nibbles: Vec<String> = rng.hex(32).chars().map(String::from).collect();
        let name = format!("{}.ip6.arpa", nibbles.join("."));
        t.query(pid, "rsyslogd", &name, PTR, NXDOMAIN);
    }
}

/// Service discovery: SRV names of Kubernetes services, Active Directory, SIP, XMPP.
fn service_discovery(t: &mut Traffic, rng: &mut Rng) {
    let pid = 6000;
    for _ in 0..200 {
        let svc = format!("{}-{}", rng.pick(WORDS), rng.pick(WORDS));
        let names = [
            format!("_http._tcp.{svc}.default.svc.cluster.local"),
            format!("_grpc._tcp.{svc}.shop.svc.cluster.local"),
            format!(
                "_ldap._tcp.{}._sites.dc._msdcs.corp.example.com",
                rng.pick(WORDS)
            ),
            format!("_sip._udp.{svc}.example.net"),
            format!("_xmpp-client._tcp.{svc}.example.org"),
        ];
        for n in names {
            t.query(pid, "consul", &n, SRV, NOERROR);
        }
    }
}

/// UUIDs in names, hash-sharded buckets (hex digests) and telemetry hosts.
fn uuids_shards_telemetry(t: &mut Traffic, rng: &mut Rng) {
    let pid = 7000;
    for _ in 0..700 {
        let uuid = rng.uuid();
        t.lookup(
            pid,
            "agent",
            &format!("{uuid}.telemetry.example.com"),
            NOERROR,
        );
    }
    for _ in 0..300 {
        let uuid = rng.uuid().replace('-', "");
        t.lookup(
            pid,
            "agent",
            &format!("{uuid}.workers.dev-example.net"),
            NOERROR,
        );
    }
    for _ in 0..500 {
        let shard = rng.hex(40);
        t.lookup(
            8000,
            "backup",
            &format!("{shard}.shards.storage-example.net"),
            NOERROR,
        );
        let md5 = rng.hex(32);
        t.lookup(
            8000,
            "backup",
            &format!("cache-{md5}.cdn.example.org"),
            NOERROR,
        );
    }
    let hosts = [
        "v10.events.data.microsoft.com",
        "browser.events.data.msn.com",
        "incoming.telemetry.mozilla.org",
        "otlp.eu01.nr-data.net",
        "http-intake.logs.datadoghq.eu",
        "collector.newrelic.com",
        "api.honeycomb.io",
        "sentry.io",
    ];
    for _ in 0..600 {
        let h = rng.pick(&hosts);
        t.lookup(9000, "otel-collector", h, NOERROR);
    }
}

/// A browser-like client: many distinct domains under common TLDs, almost all exist.
fn browsing(t: &mut Traffic, rng: &mut Rng) {
    let pid = 9100;
    for i in 0..500 {
        let tld = rng.pick(&["com", "net", "org", "io", "de"]);
        let d = format!("{}{}{}.{tld}", rng.pick(WORDS), rng.pick(WORDS), i);
        let rcode = if rng.below(20) == 0 {
            NXDOMAIN
        } else {
            NOERROR
        };
        t.lookup(pid, "chrome", &format!("www.{d}"), rcode);
    }
}

fn benign() -> (Traffic, u64) {
    let mut t = Traffic::new();
    let mut rng = Rng(16);
    kubernetes(&mut t, &mut rng);
    cdn_and_cloud(&mut t, &mut rng);
    mail_and_dnssec(&mut t, &mut rng);
    reverse(&mut t, &mut rng);
    service_discovery(&mut t, &mut rng);
    uuids_shards_telemetry(&mut t, &mut rng);
    browsing(&mut t, &mut rng);
    let queries = t.agg.totals(60.0, 0).counts.queries;
    (t, queries)
}

fn security_findings(s: &Snapshot) -> Vec<Finding> {
    evaluate(s, &RuleSet::builtin().unwrap())
        .into_iter()
        .filter(|f| matches!(f.scope, Scope::Domain | Scope::Suffix))
        .collect()
}

#[test]
fn the_benign_corpus_gives_no_security_finding() {
    let (t, queries) = benign();
    let s = t.snapshot();
    // The corpus is big enough to matter: thousands of names, and domains with well
    // over 100 distinct subdomains (the tunnel rule's threshold) from one process.
    assert!(queries > 10_000, "{queries}");
    let busy = s
        .domains
        .by_domain
        .iter()
        .filter(|d| d.unique_subdomains > 100)
        .count();
    assert!(busy >= 5, "only {busy} domains with > 100 subdomains");
    assert!(s.domains.by_suffix.iter().any(|r| r.nxdomain_domains > 50));
    let found = security_findings(&s);
    let described: Vec<String> = found
        .iter()
        .map(|f| format!("{} {}: {}", f.rule, f.subject, f.summary))
        .collect();
    assert!(found.is_empty(), "false alarms:\n{}", described.join("\n"));
    for rule in SECURITY_RULES {
        assert!(
            RuleSet::builtin().unwrap().get(rule).is_some(),
            "{rule} is a built-in rule"
        );
    }
}

/// A dnscat-like tunnel: base32 chunks of data in long labels of TXT queries.
fn tunnel(t: &mut Traffic, rng: &mut Rng, pid: u32) {
    for seq in 0..300u32 {
        let a = rng.chars(b"abcdefghijklmnopqrstuvwxyz234567", 56);
        let b = rng.chars(b"abcdefghijklmnopqrstuvwxyz234567", 56);
        t.query(
            pid,
            "tunnel",
            &format!("{seq:04x}.{a}.{b}.t.exfil.test"),
            TXT,
            NOERROR,
        );
    }
}

/// Exfiltration in hex (low entropy): only the volume rule can see it.
fn hex_exfil(t: &mut Traffic, rng: &mut Rng, pid: u32) {
    for _ in 0..400 {
        let a = rng.hex(60);
        let b = rng.hex(60);
        t.query(pid, "curl", &format!("{a}.{b}.leak.example"), A, NXDOMAIN);
    }
}

/// A DGA: random second-level names under a TLD, nearly all NXDOMAIN.
fn dga(t: &mut Traffic, rng: &mut Rng, pid: u32) {
    for i in 0..200 {
        let len = 10 + rng.below(7) as usize;
        let name = format!("{}.test", rng.chars(b"abcdefghijklmnopqrstuvwxyz", len));
        let rcode = if i % 50 == 49 { NOERROR } else { NXDOMAIN };
        t.lookup(pid, "svc-agent", &name, rcode);
    }
}

#[test]
fn tunnel_exfiltration_and_dga_are_found_among_benign_traffic_naming_their_process() {
    let (mut t, _) = benign();
    let mut rng = Rng(61);
    tunnel(&mut t, &mut rng, 4242);
    hex_exfil(&mut t, &mut rng, 4343);
    dga(&mut t, &mut rng, 4444);
    let found = security_findings(&t.snapshot());
    let has =
        |rule: &str, subject: &str| found.iter().any(|f| f.rule == rule && f.subject == subject);
    let all: Vec<String> = found
        .iter()
        .map(|f| format!("{} {}", f.rule, f.subject))
        .collect();
    assert!(
        has(
            "dns_tunnel_suspected",
            "domain exfil.test by proc4242 (pid 4242)"
        ),
        "{all:?}"
    );
    assert!(
        has(
            "dns_exfil_volume",
            "domain exfil.test by proc4242 (pid 4242)"
        ),
        "{all:?}"
    );
    assert!(
        has(
            "dns_exfil_volume",
            "domain leak.example by proc4343 (pid 4343)"
        ),
        "{all:?}"
    );
    // Hex is not random enough for the tunnel rule: the volume rule alone sees it.
    assert!(
        !has(
            "dns_tunnel_suspected",
            "domain leak.example by proc4343 (pid 4343)"
        ),
        "{all:?}"
    );
    assert!(
        has("dns_dga_suspected", "suffix test by proc4444 (pid 4444)"),
        "{all:?}"
    );
    // Nothing else: the benign processes stay quiet next to the bad ones.
    assert_eq!(found.len(), 4, "{all:?}");
    let tunnel_finding = found
        .iter()
        .find(|f| f.rule == "dns_tunnel_suspected")
        .unwrap();
    let bytes = tunnel_finding
        .evidence
        .iter()
        .find(|e| e.metric == "unique_subdomain_bytes")
        .and_then(|e| e.value)
        .unwrap();
    assert!(
        bytes > 30_000.0,
        "the evidence gives the bytes moved: {bytes}"
    );
}
