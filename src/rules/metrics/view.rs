//! Reading metrics from a snapshot: [`View`] holds the rows (subjects) of one scope
//! and computes a metric for a row, including the relative ones (the rest of the
//! traffic, the median of the peers).

use std::cell::RefCell;
use std::collections::HashMap;

use super::registry::{field_at, Get, Metric, Source, Val};
use super::Scope;
use crate::snapshot::{
    Counts, DomainStats, Latency, LocalServer, LookupStats, Snapshot, SuffixStats,
};

/// One subject: a row of a snapshot table.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// How the subject is named ("dig (pid 42)", "10.0.0.2:53/udp", "node").
    pub label: String,
    pub counts: &'a Counts,
    pub latency: Option<&'a Latency>,
    pub lookups: Option<&'a LookupStats>,
    /// A local server's row, for its upstream hop and loop metrics.
    pub local_server: Option<&'a LocalServer>,
    /// The security features of a `domain` or `suffix` subject.
    pub domain: Option<&'a DomainStats>,
    pub suffix: Option<&'a SuffixStats>,
    /// What a rule's allow list is matched against: the registered domain or suffix.
    pub allow_key: Option<&'a str>,
}

/// A static empty `Counts` for the defaults of [`Row::plain`].
static NO_COUNTS: std::sync::LazyLock<Counts> = std::sync::LazyLock::new(Counts::default);

impl Row<'_> {
    /// A row with nothing but empty counts: the base the scopes fill in.
    fn plain() -> Row<'static> {
        Row {
            label: String::new(),
            counts: &NO_COUNTS,
            latency: None,
            lookups: None,
            domain: None,
            suffix: None,
            allow_key: None,
            local_server: None,
        }
    }
}

/// "exfil.test by dig (pid 42) in pod default/web": a domain or suffix and who asked.
fn by_process(what: &str, comm: &str, pid: u32, pod: Option<&str>) -> String {
    match pod {
        Some(pod) => format!("{what} by {comm} (pid {pid}) in pod {pod}"),
        None => format!("{what} by {comm} (pid {pid})"),
    }
}

/// All subjects of one scope in a snapshot, with what relative metrics compare against.
#[derive(Debug)]
pub struct View<'a> {
    pub snapshot: &'a Snapshot,
    pub rows: Vec<Row<'a>>,
    /// The traffic the rows partition: node client totals, or server_side for listeners.
    baseline: &'a Counts,
    /// Sorted p99s of the rows eligible as peers, per `min_samples`: computed once, so
    /// peer medians stay O(n log n) on nodes with thousands of short-lived processes.
    peers: RefCell<HashMap<u64, Vec<f64>>>,
}

impl<'a> View<'a> {
    pub fn new(snapshot: &'a Snapshot, scope: Scope) -> View<'a> {
        let s = snapshot;
        let rows: Vec<Row<'a>> = match scope {
            Scope::Node => vec![Row {
                label: "node".into(),
                counts: &s.totals.counts,
                latency: Some(&s.latency),
                lookups: Some(&s.lookups.stats),
                ..Row::plain()
            }],
            Scope::Process => s
                .processes
                .iter()
                .map(|p| Row {
                    label: match &p.pod {
                        Some(pod) => format!("{} (pid {}) in pod {}", p.comm, p.pid, pod.label()),
                        None => format!("{} (pid {})", p.comm, p.pid),
                    },
                    counts: &p.counts,
                    latency: Some(&p.latency),
                    lookups: Some(&p.lookups),
                    ..Row::plain()
                })
                .collect(),
            Scope::Server => s
                .servers
                .iter()
                .map(|v| Row {
                    label: format!("{}/{}", v.server, v.protocol),
                    counts: &v.counts,
                    latency: Some(&v.latency),
                    lookups: None,
                    ..Row::plain()
                })
                .collect(),
            Scope::Qtype => s
                .qtypes
                .iter()
                .map(|q| Row {
                    label: q.qtype.clone(),
                    counts: &q.counts,
                    latency: Some(&q.latency),
                    lookups: None,
                    ..Row::plain()
                })
                .collect(),
            Scope::Name => {
                // The two top lists overlap; each name once, failing names first.
                let mut seen = std::collections::HashSet::new();
                s.names
                    .by_failures
                    .iter()
                    .chain(&s.names.by_volume)
                    .filter(|n| seen.insert(n.name.as_str()))
                    .map(|n| Row {
                        label: n.name.clone(),
                        counts: &n.counts,
                        latency: None,
                        lookups: None,
                        ..Row::plain()
                    })
                    .collect()
            }
            Scope::Listener => s
                .server_side
                .listeners
                .iter()
                .map(|l| Row {
                    label: format!("{} (pid {}) on {}/{}", l.comm, l.pid, l.address, l.protocol),
                    counts: &l.counts,
                    latency: Some(&l.latency),
                    lookups: None,
                    ..Row::plain()
                })
                .collect(),
            Scope::Pod => s
                .pods
                .iter()
                .map(|p| Row {
                    label: if p.pod.is_empty() {
                        format!("(uid {})", p.uid)
                    } else {
                        format!("{}/{}", p.namespace, p.pod)
                    },
                    counts: &p.counts,
                    latency: Some(&p.latency),
                    lookups: Some(&p.lookups),
                    ..Row::plain()
                })
                .collect(),
            Scope::Lookup => s
                .lookups
                .by_name
                .iter()
                .map(|n| Row {
                    label: format!("{} (by {})", n.name, n.by.join(", ")),
                    counts: &n.answers,
                    latency: None,
                    lookups: Some(&n.lookups),
                    ..Row::plain()
                })
                .collect(),
            Scope::LocalServer => s
                .local_servers
                .iter()
                .map(|l| Row {
                    label: format!(
                        "{} (pid {}, {}) on {}",
                        l.comm,
                        l.pid,
                        l.kind,
                        l.listens.join(", ")
                    ),
                    counts: &l.counts,
                    latency: Some(&l.latency),
                    lookups: None,
                    local_server: Some(l),
                    ..Row::plain()
                })
                .collect(),
            Scope::CorednsZone => s
                .coredns
                .iter()
                .flat_map(|c| &c.zones)
                .map(|z| Row {
                    label: z.zone.clone(),
                    counts: &z.counts,
                    latency: None,
                    lookups: None,
                    ..Row::plain()
                })
                .collect(),
            Scope::Domain => s
                .domains
                .by_domain
                .iter()
                .map(|d| Row {
                    label: by_process(&d.domain, &d.comm, d.pid, d.pod.as_deref()),
                    counts: &d.counts,
                    domain: Some(d),
                    allow_key: Some(&d.domain),
                    ..Row::plain()
                })
                .collect(),
            Scope::Suffix => s
                .domains
                .by_suffix
                .iter()
                .map(|d| Row {
                    label: by_process(&d.suffix, &d.comm, d.pid, d.pod.as_deref()),
                    counts: &d.counts,
                    suffix: Some(d),
                    allow_key: Some(&d.suffix),
                    ..Row::plain()
                })
                .collect(),
        };
        let baseline = if matches!(scope, Scope::Listener | Scope::LocalServer) {
            &s.server_side.counts
        } else {
            &s.totals.counts
        };
        View {
            snapshot,
            rows,
            baseline,
            peers: RefCell::new(HashMap::new()),
        }
    }

    /// The value of `metric` for row `i`; None when it cannot be computed (no samples,
    /// no peers, no other traffic). `min_samples` decides who counts as a peer.
    pub fn value(&self, metric: &Metric, i: usize, min_samples: u64) -> Option<f64> {
        let row = &self.rows[i];
        let v = match metric.get {
            Get::Counts(Source::Row, v) => read(v, row.counts),
            Get::Counts(Source::ServerSide, v) => read(v, &self.snapshot.server_side.counts),
            Get::Latency(Source::Row, v) => row.latency.and_then(|l| read(v, l)),
            Get::Latency(Source::ServerSide, v) => read(v, &self.snapshot.server_side.latency),
            Get::Counts(Source::Upstream, v) => {
                row.local_server.and_then(|l| read(v, &l.upstream.counts))
            }
            Get::Latency(Source::Upstream, v) => {
                row.local_server.and_then(|l| read(v, &l.upstream.latency))
            }
            Get::LocalServer(v) => row.local_server.and_then(|l| read(v, l)),
            Get::Node(v) => read(v, self.snapshot),
            Get::Lookups(v) => row.lookups.and_then(|l| read(v, l)),
            Get::Domain(v) => row.domain.and_then(|d| read(v, d)),
            Get::Suffix(v) => row.suffix.and_then(|d| read(v, d)),
            Get::Rest(f) => f(&minus(self.baseline, row.counts)),
            Get::VsRest(f) => match (f(row.counts), f(&minus(self.baseline, row.counts))) {
                (Some(a), Some(b)) => Some(a - b),
                _ => None,
            },
            Get::PeersCount => Some(self.peers_of(i, min_samples, |p| p.len() as f64)),
            Get::PeersP99 => self.peers_of(i, min_samples, median),
            Get::P99VsPeers => {
                let own = row.latency.and_then(|l| l.p99_ms);
                match (own, self.peers_of(i, min_samples, median)) {
                    (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                    _ => None,
                }
            }
        };
        v.filter(|v| v.is_finite())
    }

    /// This row's p99, if the row is eligible as a peer.
    fn eligible_p99(&self, i: usize, min_samples: u64) -> Option<f64> {
        self.rows[i]
            .latency
            .filter(|l| l.samples >= min_samples.max(1))
            .and_then(|l| l.p99_ms)
    }

    /// Applies `f` to the sorted p99s of row `i`'s peers: every eligible row but itself.
    fn peers_of<T>(&self, i: usize, min_samples: u64, f: impl Fn(&Peers) -> T) -> T {
        let mut cache = self.peers.borrow_mut();
        let all = cache.entry(min_samples).or_insert_with(|| {
            let mut v: Vec<f64> = (0..self.rows.len())
                .filter_map(|j| self.eligible_p99(j, min_samples))
                .collect();
            v.sort_by(f64::total_cmp);
            v
        });
        let skip = self
            .eligible_p99(i, min_samples)
            .and_then(|own| all.binary_search_by(|x| x.total_cmp(&own)).ok());
        f(&Peers { sorted: all, skip })
    }
}

/// A sorted list with at most one element left out (the subject itself).
pub(super) struct Peers<'a> {
    pub(super) sorted: &'a [f64],
    pub(super) skip: Option<usize>,
}

impl Peers<'_> {
    fn len(&self) -> usize {
        self.sorted.len() - usize::from(self.skip.is_some())
    }

    fn get(&self, j: usize) -> f64 {
        match self.skip {
            Some(s) if j >= s => self.sorted[j + 1],
            _ => self.sorted[j],
        }
    }
}

/// Counts of `all` minus `part` (the rest of the traffic).
fn minus(all: &Counts, part: &Counts) -> Counts {
    let r = &all.rcodes;
    let p = &part.rcodes;
    Counts {
        queries: all.queries.saturating_sub(part.queries),
        queries_per_s: (all.queries_per_s - part.queries_per_s).max(0.0),
        responses: all.responses.saturating_sub(part.responses),
        timeouts: all.timeouts.saturating_sub(part.timeouts),
        rcodes: crate::snapshot::Rcodes {
            NOERROR: r.NOERROR.saturating_sub(p.NOERROR),
            NXDOMAIN: r.NXDOMAIN.saturating_sub(p.NXDOMAIN),
            SERVFAIL: r.SERVFAIL.saturating_sub(p.SERVFAIL),
            REFUSED: r.REFUSED.saturating_sub(p.REFUSED),
            FORMERR: r.FORMERR.saturating_sub(p.FORMERR),
            NOTIMP: r.NOTIMP.saturating_sub(p.NOTIMP),
            other: r.other.saturating_sub(p.other),
            other_by_name: r
                .other_by_name
                .iter()
                .map(|(k, &v)| {
                    let part = p.other_by_name.get(k).copied().unwrap_or(0);
                    (k.clone(), v.saturating_sub(part))
                })
                .filter(|&(_, v)| v > 0)
                .collect(),
        },
        failures: all.failures.saturating_sub(part.failures),
        failure_ratio: 0.0,
        nxdomain_ratio: 0.0,
        // The rest was active for as long as the whole, at the most.
        active_s: all.active_s,
        queries_per_active_s: (all.queries_per_active_s - part.queries_per_active_s).max(0.0),
    }
}

/// The median of the peers' p99s; None without peers.
pub(super) fn median(p: &Peers) -> Option<f64> {
    let n = p.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(p.get(n / 2)),
        _ => Some((p.get(n / 2 - 1) + p.get(n / 2)) / 2.0),
    }
}

/// A metric's value from `of`: the field at its path, or its function.
fn read<T: serde::Serialize>(v: Val<fn(&T) -> Option<f64>>, of: &T) -> Option<f64> {
    match v {
        Val::Path(path) => field_at(of, path),
        Val::Fn(f) => f(of),
    }
}
