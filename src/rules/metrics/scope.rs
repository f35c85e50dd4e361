//! What a rule looks at ([`Scope`]) and the unit of what it reads ([`Unit`]): the
//! vocabulary of rule files, shared by the registry, validation and rendering.

use serde::{Deserialize, Serialize};

use crate::units;

/// What a rule looks at: one subject per row of the snapshot table of that scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The whole node, client-side view (`totals`, `latency`), plus node-wide facts
    /// (capture health, truncation, `server_side.*`).
    Node,
    /// Each local process that sent queries (`processes[]`).
    Process,
    /// Each upstream server and protocol queried (`servers[]`).
    Server,
    /// Each query type (`qtypes[]`).
    Qtype,
    /// Each name in the top lists (`names.by_failures[]`, `names.by_volume[]`).
    Name,
    /// Each local DNS server socket that answered (`server_side.listeners[]`).
    Listener,
    /// Each Kubernetes pod that sent queries (`pods[]`).
    Pod,
    /// Each looked-up name with the most queries (`lookups.by_name[]`).
    Lookup,
    /// Each local DNS server process with its two hops (`local_servers[]`).
    #[serde(rename = "local_server")]
    LocalServer,
    /// Each zone of a CoreDNS /metrics page (`coredns.zones[]`).
    #[serde(rename = "coredns_zone")]
    CorednsZone,
    /// Each registered domain as one process asked for it (`domains.by_domain[]`).
    Domain,
    /// Each public suffix as one process asked for names under it
    /// (`domains.by_suffix[]`).
    Suffix,
}

impl Scope {
    pub const ALL: [Scope; 12] = [
        Scope::Node,
        Scope::Process,
        Scope::Server,
        Scope::Qtype,
        Scope::Name,
        Scope::Listener,
        Scope::Pod,
        Scope::Lookup,
        Scope::LocalServer,
        Scope::CorednsZone,
        Scope::Domain,
        Scope::Suffix,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Node => "node",
            Scope::Process => "process",
            Scope::Server => "server",
            Scope::Qtype => "qtype",
            Scope::Name => "name",
            Scope::Listener => "listener",
            Scope::Pod => "pod",
            Scope::Lookup => "lookup",
            Scope::LocalServer => "local_server",
            Scope::CorednsZone => "coredns_zone",
            Scope::Domain => "domain",
            Scope::Suffix => "suffix",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s)
    }

    /// How a subject of this scope is named for people: "process dig (pid 42)".
    pub fn describe(self, label: &str) -> String {
        match self {
            Scope::Node => "node".into(),
            Scope::Listener | Scope::LocalServer => format!("local server {label}"),
            Scope::CorednsZone => format!("CoreDNS zone {label}"),
            _ => format!("{} {label}", self.as_str()),
        }
    }

    pub(super) fn has_latency(self) -> bool {
        !matches!(
            self,
            Scope::Name | Scope::Lookup | Scope::CorednsZone | Scope::Domain | Scope::Suffix
        )
    }

    /// Whether subjects of this scope carry lookups (search-list chains).
    /// Whether an allow list of domains applies to subjects of this scope.
    pub fn has_domains(self) -> bool {
        matches!(self, Scope::Domain | Scope::Suffix)
    }

    pub(super) fn has_lookups(self) -> bool {
        matches!(
            self,
            Scope::Node | Scope::Process | Scope::Pod | Scope::Lookup
        )
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The unit of a metric: how it is printed and which thresholds make sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Count,
    /// A fraction between 0 and 1, printed as a percentage.
    Ratio,
    /// A difference of two ratios (-1 to 1), printed in percentage points.
    Points,
    Ms,
    PerSecond,
    /// A multiple ("4.0x").
    Factor,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Ratio => "ratio",
            Unit::Points => "points",
            Unit::Ms => "ms",
            Unit::PerSecond => "per_second",
            Unit::Factor => "factor",
            Unit::Seconds => "seconds",
        }
    }

    /// Formats a value of this unit for people.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Count => {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("{}", v as i64)
                } else {
                    format!("{v:.2}")
                }
            }
            Unit::Ratio => units::pct(v),
            Unit::Points => format!("{:+.1} points", v * 100.0),
            Unit::Ms => format!("{} ms", units::ms(Some(v))),
            Unit::PerSecond => format!("{v:.1}/s"),
            Unit::Factor => format!("{v:.1}x"),
            Unit::Seconds => format!("{v:.1} s"),
        }
    }

    /// The values a threshold of this unit may take. Ratios are fractions, so a
    /// threshold of 5 on a ratio is a percent-for-fraction mistake, not 500%.
    pub fn range(self) -> (f64, f64) {
        match self {
            Unit::Ratio => (0.0, 1.0),
            Unit::Points => (-1.0, 1.0),
            _ => (0.0, f64::INFINITY),
        }
    }
}
