//! The registry itself: [`Metric`] (a name, unit, help and how to read it from a
//! snapshot) and [`Registry`], built once from the tables in [`super::tables`] plus the
//! relative metrics (rest, vs_rest, peers) that only make sense per scope.

use std::sync::OnceLock;

use super::suggest::edit_distance;
use super::tables::{completed, ratio, COUNTS, LATENCY, NODE};
use super::{Scope, Unit};
use crate::snapshot::{Counts, Latency, Snapshot};

/// Which counts/latency of the node a node-scope metric reads.
#[derive(Debug, Clone, Copy)]
pub(super) enum Source {
    /// The row itself (for the node: the client-side totals).
    Row,
    /// The node's server-side aggregate (`server_side`).
    ServerSide,
}

pub(super) type CountsFn = fn(&Counts) -> Option<f64>;
pub(super) type LatencyFn = fn(&Latency) -> Option<f64>;

/// How a metric's value is read from a [`View`](super::View) row.
#[derive(Debug, Clone, Copy)]
pub(super) enum Get {
    Counts(Source, CountsFn),
    Latency(Source, LatencyFn),
    Node(fn(&Snapshot) -> Option<f64>),
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
    let grouped = vec![Process, Server, Qtype, Name, Listener];
    let peers = vec![Process, Server, Qtype, Listener];

    for &(name, unit, samples, help, f) in COUNTS {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: all.clone(),
            get: Get::Counts(Source::Row, f),
        });
    }
    for &(name, unit, help, f) in LATENCY {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: "latency.samples".into(),
            scopes: with_latency.clone(),
            get: Get::Latency(Source::Row, f),
        });
    }
    for &(name, unit, samples, help, f) in NODE {
        m.push(Metric {
            name: name.into(),
            unit,
            help: help.into(),
            samples: samples.into(),
            scopes: vec![Node],
            get: Get::Node(f),
        });
    }
    for &(name, unit, samples, help, f) in COUNTS {
        m.push(Metric {
            name: format!("server_side.{name}"),
            unit,
            help: format!("All local DNS servers: {}", lower_first(help)),
            samples: format!("server_side.{samples}"),
            scopes: vec![Node],
            get: Get::Counts(Source::ServerSide, f),
        });
    }
    for &(name, unit, help, f) in LATENCY {
        m.push(Metric {
            name: format!("server_side.{name}"),
            unit,
            help: format!("Local DNS servers' processing time: {}", lower_first(help)),
            samples: "server_side.latency.samples".into(),
            scopes: vec![Node],
            get: Get::Latency(Source::ServerSide, f),
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
