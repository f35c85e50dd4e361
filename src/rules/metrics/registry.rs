//! The registry itself: [`Metric`] (a name, unit, help and how to read it from a
//! snapshot) and [`Registry`], built once from the tables in [`super::tables`] plus the
//! relative metrics (rest, vs_rest, peers) that only make sense per scope.

use std::sync::OnceLock;

use super::security::{DOMAIN, SUFFIX};
use super::server_tables::{COREDNS, LOCAL_SERVER};
use super::suggest::edit_distance;
use super::tables::{completed, ratio, COUNTS, LATENCY, LOOKUPS, NODE};
use super::{Scope, Unit};
use crate::snapshot::{
    Counts, DomainStats, Latency, LocalServer, LookupStats, Snapshot, SuffixStats,
};

/// Which counts/latency of the node a node-scope metric reads.
#[derive(Debug, Clone, Copy)]
pub(super) enum Source {
    /// The row itself (for the node: the client-side totals).
    Row,
    /// The node's server-side aggregate (`server_side`).
    ServerSide,
    /// A local server's upstream hop (`local_servers[].upstream`).
    Upstream,
}

pub(super) type CountsFn = fn(&Counts) -> Option<f64>;
pub(super) type LatencyFn = fn(&Latency) -> Option<f64>;
pub(super) type NodeFn = fn(&Snapshot) -> Option<f64>;
pub(super) type LookupsFn = fn(&LookupStats) -> Option<f64>;
pub(super) type LocalServerFn = fn(&LocalServer) -> Option<f64>;
pub(super) type DomainFn = fn(&DomainStats) -> Option<f64>;
pub(super) type SuffixFn = fn(&SuffixStats) -> Option<f64>;

/// How a table row reads its value.
#[derive(Debug, Clone, Copy)]
pub(super) enum Read<F> {
    /// The field its name names, in the row's snapshot struct (`queries`,
    /// `rcodes.SERVFAIL`; `latency.p99_ms` in `Latency` is `p99_ms`;
    /// `capture.packets` in the snapshot): nothing to restate.
    Field,
    /// The field at this path (when the name is not the path: `truncated` is
    /// `totals.truncated`).
    At(&'static str),
    /// Computed from several fields.
    Computed(F),
}

/// Where a counts/latency metric's value comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<F> {
    Path(&'static str),
    Fn(F),
}

impl<F> Val<F> {
    /// Resolves a table row's `Read` for the metric `name` (with `prefix` stripped).
    fn of(read: Read<F>, name: &'static str, prefix: &str) -> Self {
        match read {
            Read::Field => Val::Path(name.strip_prefix(prefix).unwrap_or(name)),
            Read::At(path) => Val::Path(path),
            Read::Computed(f) => Val::Fn(f),
        }
    }
}

/// The number at a dotted `path` of `value`'s JSON form; None when absent or null.
pub(super) fn field_at<T: serde::Serialize>(value: &T, path: &str) -> Option<f64> {
    let json = serde_json::to_value(value).ok()?;
    path.split('.')
        .try_fold(&json, |v, key| v.get(key))?
        .as_f64()
}

/// How a metric's value is read from a [`View`](super::View) row.
#[derive(Debug, Clone, Copy)]
pub(super) enum Get {
    Counts(Source, Val<CountsFn>),
    Latency(Source, Val<LatencyFn>),
    Node(Val<NodeFn>),
    /// The row's lookups (node, process, pod, looked-up name).
    Lookups(Val<LookupsFn>),
    /// The row's local server (its loop counts, its hops compared).
    LocalServer(Val<LocalServerFn>),
    /// The row's domain features (scope `domain`).
    Domain(Val<DomainFn>),
    /// The row's suffix features (scope `suffix`).
    Suffix(Val<SuffixFn>),
    /// The same counts metric over all other traffic of the view (baseline minus row).
    Rest(CountsFn),
    /// The row's value minus the rest's.
    VsRest(CountsFn),
    /// Median p99 of the peers (other rows with enough samples).
    PeersP99,
    PeersCount,
    /// The row's p99 divided by the peers' median p99.
    P99VsPeers,
}

/// One metric a rule can read.
#[derive(Debug, Clone)]
pub struct Metric {
    pub name: String,
    pub unit: Unit,
    pub help: String,
    /// The count metric `min_samples` is measured on unless the rule says otherwise.
    pub samples: String,
    pub scopes: Vec<Scope>,
    pub(super) get: Get,
}

impl Metric {
    pub fn applies_to(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Every metric, in documentation order.
#[derive(Debug)]
pub struct Registry {
    metrics: Vec<Metric>,
}

impl Registry {
    pub fn all(&self) -> &[Metric] {
        &self.metrics
    }

    pub fn find(&self, scope: Scope, name: &str) -> Option<&Metric> {
        self.metrics
            .iter()
            .find(|m| m.name == name && m.applies_to(scope))
    }

    pub fn for_scope(&self, scope: Scope) -> impl Iterator<Item = &Metric> {
        self.metrics.iter().filter(move |m| m.applies_to(scope))
    }

    /// The known metric of `scope` closest to a misspelt `name`, if any is close.
    pub fn suggest(&self, scope: Scope, name: &str) -> Option<&str> {
        self.for_scope(scope)
            .map(|m| (edit_distance(&m.name, name), m.name.as_str()))
            .filter(|(d, _)| *d <= 3.max(name.len() / 4))
            .min()
            .map(|(_, n)| n)
    }
}

fn build() -> Registry {
    use Scope::*;
    let mut m = Vec::new();
    let all = Scope::ALL.to_vec();
    let with_latency: Vec<Scope> = Scope::ALL.into_iter().filter(|s| s.has_latency()).collect();
    let grouped = vec![
        Process,
        Server,
        Qtype,
        Name,
        Listener,
        Pod,
        Lookup,
        LocalServer,
    ];
    let peers = vec![Process, Server, Qtype, Listener, Pod, LocalServer];
    let with_lookups: Vec<Scope> = Scope::ALL.into_iter().filter(|s| s.has_lookups()).collect();

    for &(name, unit, samples, help, read) in COUNTS {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: all.clone(),
            get: Get::Counts(Source::Row, Val::of(read, name, "")),
        });
    }
    for &(name, unit, help, read) in LATENCY {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: "latency.samples".into(),
            scopes: with_latency.clone(),
            get: Get::Latency(Source::Row, Val::of(read, name, "latency.")),
        });
    }
    for &(name, unit, samples, help, read) in LOOKUPS {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: with_lookups.clone(),
            get: Get::Lookups(Val::of(read, name, "lookups.")),
        });
    }
    for &(name, unit, samples, help, read) in DOMAIN {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: vec![Domain],
            get: Get::Domain(Val::of(read, name, "")),
        });
    }
    for &(name, unit, samples, help, read) in SUFFIX {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: vec![Suffix],
            get: Get::Suffix(Val::of(read, name, "")),
        });
    }
    for &(name, unit, samples, help, read) in NODE.iter().chain(COREDNS) {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: vec![Node],
            get: Get::Node(Val::of(read, name, "")),
        });
    }
    for &(name, unit, samples, help, read) in COUNTS {
        m.push(Metric {
            name: format!("server_side.{name}"),
            unit,
            help: format!("All local DNS servers: {}", lower_first(help)),
            samples: format!("server_side.{samples}"),
            scopes: vec![Node],
            get: Get::Counts(Source::ServerSide, Val::of(read, name, "")),
        });
    }
    for &(name, unit, help, read) in LATENCY {
        m.push(Metric {
            name: format!("server_side.{name}"),
            unit,
            help: format!("Local DNS servers' processing time: {}", lower_first(help)),
            samples: "server_side.latency.samples".into(),
            scopes: vec![Node],
            get: Get::Latency(Source::ServerSide, Val::of(read, name, "latency.")),
        });
    }
    for &(name, unit, samples, help, read) in COUNTS {
        m.push(Metric {
            name: format!("upstream.{name}"),
            unit,
            help: format!("Its upstream hop: {}", lower_first(help)),
            samples: format!("upstream.{samples}"),
            scopes: vec![LocalServer],
            get: Get::Counts(Source::Upstream, Val::of(read, name, "")),
        });
    }
    for &(name, unit, help, read) in LATENCY {
        m.push(Metric {
            name: format!("upstream.{name}"),
            unit,
            help: format!(
                "Its upstream hop (its send to the upstream's answer): {}",
                lower_first(help)
            ),
            samples: "upstream.latency.samples".into(),
            scopes: vec![LocalServer],
            get: Get::Latency(Source::Upstream, Val::of(read, name, "latency.")),
        });
    }
    for &(name, unit, samples, help, read) in LOCAL_SERVER {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: vec![LocalServer],
            get: Get::LocalServer(Val::of(read, name, "")),
        });
    }
    let rest: &[(&str, Unit, &str, &str, CountsFn)] = &[
        ("queries", Unit::Count, "queries", "Queries of all other traffic in the same view (the node's client totals, or for listeners all local servers) minus this subject.", |c| Some(c.queries as f64)),
        ("completed", Unit::Count, "queries", "Completed queries of all other traffic.", |c| Some(completed(c) as f64)),
        ("failure_ratio", Unit::Ratio, "completed", "Failure ratio of all other traffic.", |c| ratio(c.failures, completed(c))),
        ("timeout_ratio", Unit::Ratio, "completed", "Timeout ratio of all other traffic.", |c| ratio(c.timeouts, completed(c))),
        ("nxdomain_ratio", Unit::Ratio, "responses", "NXDOMAIN ratio of all other traffic.", |c| ratio(c.rcodes.NXDOMAIN, c.responses)),
    ];
    for &(name, unit, samples, help, f) in rest {
        m.push(Metric {
            name: format!("rest.{name}"),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: grouped.clone(),
            get: Get::Rest(f),
        });
    }
    let vs_rest: &[(&str, &str, CountsFn)] = &[
        ("failure_ratio_vs_rest", "failure_ratio minus rest.failure_ratio: how much worse than all other traffic; null when there is no other traffic.", |c| ratio(c.failures, completed(c))),
        ("timeout_ratio_vs_rest", "timeout_ratio minus rest.timeout_ratio.", |c| ratio(c.timeouts, completed(c))),
        ("nxdomain_ratio_vs_rest", "nxdomain_ratio minus rest.nxdomain_ratio.", |c| ratio(c.rcodes.NXDOMAIN, c.responses)),
    ];
    for &(name, help, f) in vs_rest {
        m.push(Metric {
            name: name.into(),
            unit: Unit::Points,
            help: help.into(),
            samples: if name.starts_with("nxdomain") {
                "responses"
            } else {
                "completed"
            }
            .into(),
            scopes: grouped.clone(),
            get: Get::VsRest(f),
        });
    }
    m.push(Metric {
        name: "peers.count".into(),
        unit: Unit::Count,
        help: "Other subjects of the same scope with at least min_samples latency samples.".into(),
        samples: "latency.samples".into(),
        scopes: peers.clone(),
        get: Get::PeersCount,
    });
    m.push(Metric {
        name: "peers.latency.p99_ms".into(),
        unit: Unit::Ms,
        help: "Median p99 latency of the peers; null without peers.".into(),
        samples: "latency.samples".into(),
        scopes: peers.clone(),
        get: Get::PeersP99,
    });
    m.push(Metric {
        name: "latency.p99_vs_peers".into(),
        unit: Unit::Factor,
        help: "latency.p99_ms / peers.latency.p99_ms: how many times slower than a typical peer; null without peers.".into(),
        samples: "latency.samples".into(),
        scopes: peers,
        get: Get::P99VsPeers,
    });
    Registry { metrics: m }
}

/// Lower-cases the first letter to continue a sentence, but leaves an acronym
/// ("SERVFAIL answers") as it is.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match (c.next(), c.next()) {
        (Some(_), Some(second)) if second.is_uppercase() => s.to_string(),
        (Some(first), _) => first.to_lowercase().chain(s.chars().skip(1)).collect(),
        _ => String::new(),
    }
}

/// The registry (built once).
pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(build)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The dotted paths of every number (or null: an `Option<f64>`) under `v`, lists and
    /// per-name maps left out (they are rows, not fields).
    fn numeric_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "other_by_name" {
                        continue;
                    }
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    numeric_paths(v, &path, out);
                }
            }
            Value::Number(_) | Value::Null => out.push(prefix.to_string()),
            _ => {}
        }
    }

    /// The paths the registry reads, per struct.
    fn read_paths() -> (Vec<&'static str>, Vec<&'static str>, Vec<&'static str>) {
        let (mut counts, mut latency, mut node) = (Vec::new(), Vec::new(), Vec::new());
        for m in registry().all() {
            match m.get {
                Get::Counts(Source::Row, Val::Path(p)) => counts.push(p),
                // A computed row named after a field covers it (the snapshot's ratios
                // are rounded copies of what the row computes).
                Get::Counts(Source::Row, Val::Fn(_)) => counts.push(m.name.as_str()),
                Get::Latency(Source::Row, Val::Path(p)) => latency.push(p),
                Get::Node(Val::Path(p)) => node.push(p),
                _ => {}
            }
        }
        (counts, latency, node)
    }

    /// Every numeric field of the snapshot types is a metric, or is listed here as
    /// deliberately not one: a new field without its row (and help line) fails.
    #[test]
    fn every_numeric_snapshot_field_is_a_metric() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/snapshots/incident.json"
        ))
        .unwrap();
        let snap: Snapshot = serde_json::from_str(&text).unwrap();
        let (counts, latency, node) = read_paths();
        let not_metrics = [
            "schema",
            "capture.timeout_ms",
            "capture.owners_from_sock_diag",
        ];
        let mut missing = Vec::new();
        let mut paths = Vec::new();
        numeric_paths(
            &serde_json::to_value(&snap.totals.counts).unwrap(),
            "",
            &mut paths,
        );
        missing.extend(paths.drain(..).filter(|p| !counts.contains(&p.as_str())));
        numeric_paths(
            &serde_json::to_value(&snap.latency).unwrap(),
            "",
            &mut paths,
        );
        missing.extend(paths.drain(..).filter(|p| !latency.contains(&p.as_str())));
        let json = serde_json::to_value(&snap).unwrap();
        for part in ["capture", "window", "names", "node_counters", "coredns"] {
            numeric_paths(&json[part], part, &mut paths);
        }
        let totals = serde_json::to_value(&snap.totals).unwrap();
        let counts_json = serde_json::to_value(&snap.totals.counts).unwrap();
        for (k, v) in totals.as_object().unwrap() {
            if counts_json.get(k).is_none() && v.is_number() {
                paths.push(format!("totals.{k}"));
            }
        }
        missing.extend(
            paths
                .into_iter()
                .filter(|p| !node.contains(&p.as_str()) && !not_metrics.contains(&p.as_str())),
        );
        // Lookups: every number of LookupStats is a `lookups.` metric.
        let lookup_paths: Vec<&str> = registry()
            .all()
            .iter()
            .filter_map(|m| match m.get {
                Get::Lookups(Val::Path(p)) => Some(p),
                _ => None,
            })
            .collect();
        let mut paths = Vec::new();
        numeric_paths(
            &serde_json::to_value(crate::snapshot::LookupStats::default()).unwrap(),
            "",
            &mut paths,
        );
        missing.extend(
            paths
                .into_iter()
                .filter(|p| !lookup_paths.contains(&p.as_str()))
                .map(|p| format!("lookups.{p}")),
        );
        // Domain and suffix rows: every number but the pid is a metric (their counts
        // are the COUNTS rows).
        let reads = |f: fn(&Get) -> Option<&'static str>| -> Vec<&'static str> {
            registry().all().iter().filter_map(|m| f(&m.get)).collect()
        };
        let domain_paths = reads(|g| match g {
            Get::Domain(Val::Path(p)) => Some(p),
            _ => None,
        });
        let suffix_paths = reads(|g| match g {
            Get::Suffix(Val::Path(p)) => Some(p),
            _ => None,
        });
        let rows: [(Value, &Vec<&str>, &str); 2] = [
            (
                serde_json::to_value(crate::snapshot::DomainStats::default()).unwrap(),
                &domain_paths,
                "domain",
            ),
            (
                serde_json::to_value(crate::snapshot::SuffixStats::default()).unwrap(),
                &suffix_paths,
                "suffix",
            ),
        ];
        let mut count_paths = Vec::new();
        numeric_paths(
            &serde_json::to_value(crate::snapshot::Counts::default()).unwrap(),
            "",
            &mut count_paths,
        );
        for (json, read, scope) in rows {
            let mut paths = Vec::new();
            numeric_paths(&json, "", &mut paths);
            paths.retain(|p| !count_paths.contains(p));
            missing.extend(
                paths
                    .into_iter()
                    .filter(|p| p != "pid")
                    .filter(|p| !read.contains(&p.as_str()))
                    .map(|p| format!("{scope}: {p}")),
            );
        }
        assert!(
            missing.is_empty(),
            "snapshot fields with no metric row in rules/metrics/tables.rs: {missing:?}"
        );
        // And every path a row reads exists in the snapshot.
        for m in registry().all() {
            if let Get::Counts(Source::Row, Val::Path(p)) = m.get {
                assert!(
                    field_at(&snap.totals.counts, p).is_some(),
                    "no Counts field {p}"
                );
            }
        }
        for p in &node {
            assert!(field_at(&snap, p).is_some(), "no snapshot field {p}");
        }
    }
}
