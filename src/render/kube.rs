//! The Kubernetes and lookup parts of the summary: the pods table, a line on the
//! node's lookups (search-path amplification) and the hops of the node's own servers.

use std::fmt::Write;

use super::style::table;
use super::summary::{group_cells, num_row, GROUP_COLS};
use crate::snapshot::Snapshot;
use crate::units;

/// Rows shown; the snapshot holds them all.
const ROWS: usize = 10;

/// One line on the client lookups, when any finished.
pub fn lookups_line(s: &Snapshot) -> String {
    let l = &s.lookups.stats;
    if l.lookups == 0 {
        return String::new();
    }
    let mut o = format!(
        "lookups: {} ({:.2} queries per lookup; {} tried search suffixes, {} NXDOMAIN on expansions, {:.2} ms lost per lookup)",
        l.lookups, l.queries_per_lookup, l.expanded, l.expansion_nxdomain, l.time_lost_mean_ms
    );
    if let Some(top) = s.lookups.by_name.first() {
        let _ = write!(
            o,
            "; most queries: {} ({:.1} per lookup, by {})",
            top.name,
            top.lookups.queries_per_lookup,
            top.by.join(", ")
        );
    }
    o.push('\n');
    o
}

/// The pods table, when the node has pods that sent queries.
pub fn pods_table(s: &Snapshot) -> String {
    if s.pods.is_empty() {
        return String::new();
    }
    let mut tab = table(
        &["pod", "qos", "containers", "lookups", "q/lookup"]
            .iter()
            .chain(GROUP_COLS)
            .copied()
            .collect::<Vec<_>>(),
    );
    for p in s.pods.iter().take(ROWS) {
        let name = if p.pod.is_empty() {
            format!("(uid {})", p.uid)
        } else {
            format!("{}/{}", p.namespace, p.pod)
        };
        let mut row = vec![
            name,
            p.qos.clone(),
            p.containers.join(","),
            p.lookups.lookups.to_string(),
            format!("{:.2}", p.lookups.queries_per_lookup),
        ];
        row.extend(group_cells(&p.counts, &p.latency));
        tab.add_row(num_row(row));
    }
    format!("\nBy pod\n{tab}\n")
}

/// The hops of the node's own servers that forward (or loop): what their clients see
/// next to what their upstreams cost them. Servers that answer everything themselves
/// are in the listeners table already.
pub fn hops_table(s: &Snapshot) -> String {
    let rows: Vec<_> = s
        .local_servers
        .iter()
        .filter(|l| l.upstream.counts.queries > 0 || l.loops.self_queries + l.loops.returned > 0)
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut tab = table(&[
        "server",
        "kind",
        "queries",
        "p50 ms",
        "p99 ms",
        "failed",
        "upstream q",
        "up p50 ms",
        "up p99 ms",
        "up failed",
        "upstreams",
        "loop",
    ]);
    for l in rows.iter().take(ROWS) {
        let (c, u) = (&l.counts, &l.upstream.counts);
        tab.add_row(num_row(vec![
            format!("{} ({})", l.comm, l.pid),
            l.kind.clone(),
            c.queries.to_string(),
            units::ms(l.latency.p50_ms),
            units::ms(l.latency.p99_ms),
            units::pct(c.failure_ratio),
            u.queries.to_string(),
            units::ms(l.upstream.latency.p50_ms),
            units::ms(l.upstream.latency.p99_ms),
            units::pct(u.failure_ratio),
            l.upstream.servers.join(","),
            (l.loops.self_queries + l.loops.returned).to_string(),
        ]));
    }
    format!("\nLocal DNS server hops (client -> server, server -> upstream)\n{tab}\n")
}
