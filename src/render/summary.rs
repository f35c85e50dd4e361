//! The human summary of a snapshot: a header and a few tables.

use std::fmt::Write;

use comfy_table::{Cell, CellAlignment};

use super::style::{ms, pct, table};
use crate::snapshot::{Counts, Latency, ProcessStats, Snapshot};

/// Rows shown per table by default (`--top`); the snapshot holds them all.
pub const ROWS: usize = 10;

/// Renders the whole summary as text, `ROWS` rows per table.
pub fn render(s: &Snapshot) -> String {
    render_top(s, ROWS)
}

/// The line under a table that shows `shown` of `total` rows.
fn more(o: &mut String, shown: usize, total: usize) {
    if total > shown {
        let _ = writeln!(
            o,
            "... and {} more (--top N shows more; the snapshot has every row)",
            total - shown
        );
    }
}

/// Renders the whole summary as text, `top` rows per table.
pub fn render_top(s: &Snapshot, top: usize) -> String {
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
    if let Some(chart) = super::latency_chart::render("Client latency", &s.latency) {
        o.push_str(&chart);
    }

    if !s.processes.is_empty() {
        let groups = by_command(&s.processes);
        let _ = writeln!(
            o,
            "\nBy process{}",
            if groups.len() < s.processes.len() {
                " (processes with the same command and cgroup on one row; p50/p99 of the worst)"
            } else {
                ""
            }
        );
        let mut tab = table(
            &["pid", "process", "cgroup"]
                .iter()
                .chain(GROUP_COLS)
                .copied()
                .collect::<Vec<_>>(),
        );
        for g in groups.iter().take(top) {
            let mut row = vec![g.pids.clone(), g.comm.clone(), g.cgroup.clone()];
            row.extend(group_cells(&g.counts, &g.latency));
            tab.add_row(num_row(row));
        }
        let _ = writeln!(o, "{tab}");
        more(&mut o, top, groups.len());
        if groups.len() < s.processes.len() {
            let _ = writeln!(o, "(q/s of a grouped row is over the whole window)");
        }
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
        for v in s.servers.iter().take(top) {
            let mut row = vec![v.server.clone(), v.protocol.clone()];
            row.extend(group_cells(&v.counts, &v.latency));
            tab.add_row(num_row(row));
        }
        let _ = writeln!(o, "{tab}");
        more(&mut o, top, s.servers.len());
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
        for q in s.qtypes.iter().take(top) {
            let mut row = vec![q.qtype.clone()];
            row.extend(group_cells(&q.counts, &q.latency));
            tab.add_row(num_row(row));
        }
        let _ = writeln!(o, "{tab}");
        more(&mut o, top, s.qtypes.len());
    }

    if !s.names.by_failures.is_empty() {
        let _ = writeln!(
            o,
            "\nNames failing most (NXDOMAIN, SERVFAIL, REFUSED, timeouts)"
        );
        let mut tab = table(&[
            "name", "queries", "NXDOMAIN", "SERVFAIL", "REFUSED", "timeouts",
        ]);
        for n in s.names.by_failures.iter().take(top) {
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
        more(&mut o, top, s.names.by_failures.len());
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
        for l in ss.listeners.iter().take(top) {
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
        more(&mut o, top, ss.listeners.len());
    }
    o.push_str(&super::kube::hops_table(s));
    o
}

/// One row of the process table: a process, or every process of one command in one
/// pod or cgroup (29 short-lived `dig`s are one row, so they cannot push a failing process
/// out of view).
struct CommandGroup {
    pids: String,
    comm: String,
    cgroup: String,
    counts: Counts,
    latency: Latency,
}

/// Processes grouped by (command, pod or else cgroup), busiest group first; failure ratios are
/// recomputed from the sums, latency is the worst member's.
fn by_command(procs: &[ProcessStats]) -> Vec<CommandGroup> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut members: std::collections::HashMap<(String, String), Vec<&ProcessStats>> =
        std::collections::HashMap::new();
    for p in procs {
        // A pod's processes group by pod (its containers have cgroups of their own).
        let place = match &p.pod {
            Some(pod) if !pod.pod.is_empty() => format!("pod {}/{}", pod.namespace, pod.pod),
            _ => p.cgroup.clone().unwrap_or_else(|| "-".into()),
        };
        let key = (p.comm.clone(), place);
        if !members.contains_key(&key) {
            order.push(key.clone());
        }
        members.entry(key).or_default().push(p);
    }
    let mut groups: Vec<CommandGroup> = order
        .into_iter()
        .map(|key| {
            let m = &members[&key];
            if let [p] = m.as_slice() {
                return CommandGroup {
                    pids: p.pid.to_string(),
                    comm: key.0,
                    cgroup: key.1,
                    counts: p.counts.clone(),
                    latency: p.latency.clone(),
                };
            }
            let mut c = Counts::default();
            let mut lat = Latency::default();
            for p in m {
                let pc = &p.counts;
                c.queries += pc.queries;
                c.queries_per_s += pc.queries_per_s;
                // Members' activity may not overlap: the group's rate is over the window.
                c.queries_per_active_s += pc.queries_per_s;
                c.responses += pc.responses;
                c.timeouts += pc.timeouts;
                c.failures += pc.failures;
                c.rcodes.NXDOMAIN += pc.rcodes.NXDOMAIN;
                lat.samples += p.latency.samples;
                lat.p50_ms = worst(lat.p50_ms, p.latency.p50_ms);
                lat.p99_ms = worst(lat.p99_ms, p.latency.p99_ms);
            }
            let completed = c.responses + c.timeouts;
            if completed > 0 {
                c.failure_ratio = c.failures as f64 / completed as f64;
            }
            CommandGroup {
                pids: format!("{} pids", m.len()),
                comm: key.0,
                cgroup: key.1,
                counts: c,
                latency: lat,
            }
        })
        .collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.counts.queries));
    groups
}

pub(super) const GROUP_COLS: &[&str] = &[
    "queries",
    "q/s active",
    "failed",
    "NXDOMAIN",
    "timeouts",
    "p50 ms",
    "p99 ms",
];

pub(super) fn group_cells(c: &Counts, l: &Latency) -> Vec<String> {
    vec![
        c.queries.to_string(),
        // While active: a client that ran for 2 s of a 60 s window shows its real rate.
        format!("{:.1}", c.queries_per_active_s),
        pct(c.failure_ratio),
        c.rcodes.NXDOMAIN.to_string(),
        c.timeouts.to_string(),
        ms(l.p50_ms),
        ms(l.p99_ms),
    ]
}

/// The larger of two optional latencies.
fn worst(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, comm: &str, queries: u64, timeouts: u64) -> ProcessStats {
        ProcessStats {
            pid,
            comm: comm.into(),
            cgroup: Some("/app".into()),
            pod: None,
            lookups: Default::default(),
            counts: Counts {
                queries,
                responses: queries - timeouts,
                timeouts,
                failures: timeouts,
                failure_ratio: timeouts as f64 / queries as f64,
                ..Counts::default()
            },
            latency: Latency {
                samples: queries - timeouts,
                p50_ms: Some(1.0),
                p99_ms: Some(pid as f64),
                ..Latency::default()
            },
        }
    }

    fn snapshot(procs: Vec<ProcessStats>) -> Snapshot {
        let mut s = Snapshot::default();
        s.totals.counts.queries = procs.iter().map(|p| p.counts.queries).sum();
        s.processes = procs;
        s
    }

    #[test]
    fn short_lived_processes_of_one_command_share_a_row() {
        // 29 digs of 2 queries each, then the failing process with 3.
        let mut procs: Vec<ProcessStats> =
            (100..129).map(|pid| process(pid, "dig", 2, 0)).collect();
        procs.push(process(7, "curl", 3, 3));
        let text = render_top(&snapshot(procs), 10);
        assert!(text.contains("29 pids"), "{text}");
        assert!(
            text.contains("curl"),
            "the failing process stays in view: {text}"
        );
        assert!(text.contains("p50/p99 of the worst"), "{text}");
        assert!(!text.contains("... and"), "two rows fit: {text}");
        let g =
            by_command(&snapshot(vec![process(1, "a", 10, 1), process(2, "a", 10, 0)]).processes);
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].counts.queries, g[0].counts.timeouts), (20, 1));
        assert!((g[0].counts.failure_ratio - 0.05).abs() < 1e-9);
        assert_eq!(g[0].latency.p99_ms, Some(2.0), "the worst member's p99");
    }

    #[test]
    fn a_cut_table_says_how_many_rows_it_left_out() {
        let procs: Vec<ProcessStats> = (1..=15)
            .map(|i| process(i, &format!("app{i}"), 5, 0))
            .collect();
        let text = render_top(&snapshot(procs.clone()), 10);
        assert!(text.contains("... and 5 more (--top N"), "{text}");
        let text = render_top(&snapshot(procs), 15);
        assert!(!text.contains("... and"), "{text}");
    }
}
