//! The human summary of a snapshot: a header and a few tables.

use std::fmt::Write;

use comfy_table::{Cell, CellAlignment};

use super::style::{ms, pct, table};
use crate::snapshot::{Counts, Latency, Snapshot};

/// Rows shown per table; the snapshot holds them all.
const ROWS: usize = 10;

/// Renders the whole summary as text.
pub fn render(s: &Snapshot) -> String {
    let mut o = String::new();
    let c = &s.capture;
    let ports = c
        .ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if c.source.starts_with("pcap") {
        let _ = writeln!(
            o,
            "DNS in a capture file, {} -> {} ({:.1}s), port {ports}\nsource: {}",
            s.window.start, s.window.end, s.window.duration_s, c.source
        );
    } else {
        let _ = writeln!(
            o,
            "DNS on {} (kernel {}), {} -> {} ({:.1}s), cgroup {}, port {ports}",
            s.host.hostname,
            s.host.kernel,
            s.window.start,
            s.window.end,
            s.window.duration_s,
            c.cgroup,
        );
    }
    let health = if c.dropped.total == 0 {
        "complete".to_string()
    } else {
        format!(
            "PARTIAL: {} events lost (ring buffer full {}, evicted {}); numbers below are lower bounds",
            c.dropped.total, c.dropped.ringbuf_full, c.dropped.pending_evicted
        )
    };
    let _ = writeln!(
        o,
        "capture: {health}; {} packets, {} messages, {} parse errors, {} unmatched responses, {} pending at end",
        c.packets, c.messages, c.parse_errors, c.unmatched_responses, c.pending_at_end
    );

    let t = &s.totals;
    if t.counts.queries == 0 && s.server_side.counts.queries == 0 {
        let _ = writeln!(o, "\nNo DNS queries were observed in this window.");
        return o;
    }

    let _ = writeln!(o, "\nClient queries (sent by local processes)");
    let mut tab = table(&[
        "queries",
        "q/s",
        "answered",
        "timeouts",
        "NOERROR",
        "NXDOMAIN",
        "SERVFAIL",
        "REFUSED",
        "other",
        "failed",
        "truncated",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
    ]);
    let r = &t.counts.rcodes;
    tab.add_row(num_row(vec![
        t.counts.queries.to_string(),
        format!("{:.1}", t.counts.queries_per_s),
        t.counts.responses.to_string(),
        t.counts.timeouts.to_string(),
        r.NOERROR.to_string(),
        r.NXDOMAIN.to_string(),
        r.SERVFAIL.to_string(),
        r.REFUSED.to_string(),
        (r.FORMERR + r.NOTIMP + r.other).to_string(),
        pct(t.counts.failure_ratio),
        format!("{} ({} TCP retry)", t.truncated, t.truncated_retried_tcp),
        ms(s.latency.p50_ms),
        ms(s.latency.p95_ms),
        ms(s.latency.p99_ms),
        ms(s.latency.max_ms),
    ]));
    let _ = writeln!(o, "{tab}");
    o.push_str(&super::kube::lookups_line(s));

    if !s.processes.is_empty() {
        let _ = writeln!(o, "\nBy process");
        let mut tab = table(
            &["pid", "process", "cgroup"]
                .iter()
                .chain(GROUP_COLS)
                .copied()
                .collect::<Vec<_>>(),
        );
        for p in s.processes.iter().take(ROWS) {
            let mut row = vec![
                p.pid.to_string(),
                p.comm.clone(),
                p.cgroup.clone().unwrap_or_else(|| "-".into()),
            ];
            row.extend(group_cells(&p.counts, &p.latency));
            tab.add_row(num_row(row));
        }
        let _ = writeln!(o, "{tab}");
    }

    o.push_str(&super::kube::pods_table(s));

    if !s.servers.is_empty() {
        let _ = writeln!(o, "\nBy server");
        let mut tab = table(
            &["server", "proto"]
                .iter()
                .chain(GROUP_COLS)
                .copied()
                .collect::<Vec<_>>(),
        );
        for v in s.servers.iter().take(ROWS) {
            let mut row = vec![v.server.clone(), v.protocol.clone()];
            row.extend(group_cells(&v.counts, &v.latency));
            tab.add_row(num_row(row));
        }
        let _ = writeln!(o, "{tab}");
    }

    if !s.qtypes.is_empty() {
        let _ = writeln!(o, "\nBy query type");
        let mut tab = table(
            &["type"]
                .iter()
                .chain(GROUP_COLS)
                .copied()
                .collect::<Vec<_>>(),
        );
        for q in s.qtypes.iter().take(ROWS) {
            let mut row = vec![q.qtype.clone()];
            row.extend(group_cells(&q.counts, &q.latency));
            tab.add_row(num_row(row));
        }
        let _ = writeln!(o, "{tab}");
    }

    if !s.names.by_failures.is_empty() {
        let _ = writeln!(
            o,
            "\nNames failing most (NXDOMAIN, SERVFAIL, REFUSED, timeouts)"
        );
        let mut tab = table(&[
            "name", "queries", "NXDOMAIN", "SERVFAIL", "REFUSED", "timeouts",
        ]);
        for n in s.names.by_failures.iter().take(ROWS) {
            let r = &n.counts.rcodes;
            tab.add_row(num_row(vec![
                n.name.clone(),
                n.counts.queries.to_string(),
                r.NXDOMAIN.to_string(),
                r.SERVFAIL.to_string(),
                r.REFUSED.to_string(),
                n.counts.timeouts.to_string(),
            ]));
        }
        let _ = writeln!(o, "{tab}");
    }

    let ss = &s.server_side;
    if ss.counts.queries > 0 {
        let _ = writeln!(
            o,
            "\nLocal DNS servers (queries received; latency = processing time)"
        );
        let mut tab = table(
            &["listen", "proto", "pid", "process"]
                .iter()
                .chain(GROUP_COLS)
                .copied()
                .collect::<Vec<_>>(),
        );
        for l in ss.listeners.iter().take(ROWS) {
            let mut row = vec![
                l.address.clone(),
                l.protocol.clone(),
                l.pid.to_string(),
                l.comm.clone(),
            ];
            row.extend(group_cells(&l.counts, &l.latency));
            tab.add_row(num_row(row));
        }
        let _ = writeln!(o, "{tab}");
    }
    o
}

pub(super) const GROUP_COLS: &[&str] = &[
    "queries", "q/s", "failed", "NXDOMAIN", "timeouts", "p50 ms", "p99 ms",
];

pub(super) fn group_cells(c: &Counts, l: &Latency) -> Vec<String> {
    vec![
        c.queries.to_string(),
        format!("{:.1}", c.queries_per_s),
        pct(c.failure_ratio),
        c.rcodes.NXDOMAIN.to_string(),
        c.timeouts.to_string(),
        ms(l.p50_ms),
        ms(l.p99_ms),
    ]
}

/// Right-aligns numeric-looking cells.
pub(super) fn num_row(cells: Vec<String>) -> Vec<Cell> {
    cells
        .into_iter()
        .map(|c| {
            let numeric = c
                .chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_digit() || ch == '-');
            let cell = Cell::new(c);
            if numeric {
                cell.set_alignment(CellAlignment::Right)
            } else {
                cell
            }
        })
        .collect()
}
