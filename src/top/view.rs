//! What `dnsdoc top` draws: pure functions of [`State`] onto a ratatui frame.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Borders, Paragraph, Row, Table as TableWidget,
};
use ratatui::Frame;

use crate::pipeline::continuous::ContinuousOptions;
use crate::series::{Histogram, DURATION_BUCKETS};
use crate::snapshot::{Counts, Latency, Snapshot};
use crate::units;

/// What the tables are ordered by (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Queries,
    Failures,
    P99,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Queries => SortKey::Failures,
            SortKey::Failures => SortKey::P99,
            SortKey::P99 => SortKey::Queries,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SortKey::Queries => "queries",
            SortKey::Failures => "failures",
            SortKey::P99 => "p99",
        }
    }
}

/// Which table is shown (`tab` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Processes,
    Servers,
    Names,
}

impl Table {
    pub fn next(self) -> Table {
        match self {
            Table::Processes => Table::Servers,
            Table::Servers => Table::Names,
            Table::Names => Table::Processes,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Table::Processes => "processes",
            Table::Servers => "servers",
            Table::Names => "names",
        }
    }
}

/// Everything the screen shows.
pub struct State {
    pub snapshot: Option<Snapshot>,
    /// Latency of the last window (from the cumulative series).
    pub histogram: Histogram,
    /// The cumulative histogram at the last window, to difference the next against.
    pub total_histogram: Histogram,
    pub sort: SortKey,
    pub table: Table,
    pub windows: u64,
    /// What is watched, for the title.
    scope: String,
    interval: String,
}

impl State {
    pub fn new(run: &ContinuousOptions) -> State {
        let o = &run.observe;
        let ports: Vec<String> = o.ports.iter().map(u16::to_string).collect();
        let scope = match (&o.pcap, &o.cgroup) {
            (Some(f), _) => format!("file {}", f.display()),
            (None, Some(c)) => format!("cgroup {}, port {}", c.display(), ports.join(",")),
            (None, None) => format!("the whole machine, port {}", ports.join(",")),
        };
        State {
            snapshot: None,
            histogram: Histogram::default(),
            total_histogram: Histogram::default(),
            sort: SortKey::Queries,
            table: Table::Processes,
            windows: 0,
            scope,
            interval: humantime::format_duration(run.interval).to_string(),
        }
    }
}

/// One row of the busiest-first table.
struct Item {
    label: String,
    counts: Counts,
    p50: Option<f64>,
    p99: Option<f64>,
}

fn items(s: &Snapshot, table: Table) -> Vec<Item> {
    let lat = |l: &Latency| (l.p50_ms, l.p99_ms);
    match table {
        Table::Processes => s
            .processes
            .iter()
            .map(|p| {
                let (p50, p99) = lat(&p.latency);
                Item {
                    label: format!("{} ({})", p.comm, p.pid),
                    counts: p.counts.clone(),
                    p50,
                    p99,
                }
            })
            .collect(),
        Table::Servers => s
            .servers
            .iter()
            .map(|v| {
                let (p50, p99) = lat(&v.latency);
                Item {
                    label: format!("{} {}", v.server, v.protocol),
                    counts: v.counts.clone(),
                    p50,
                    p99,
                }
            })
            .collect(),
        Table::Names => {
            let mut seen = std::collections::HashSet::new();
            s.names
                .by_volume
                .iter()
                .chain(&s.names.by_failures)
                .filter(|n| seen.insert(n.name.clone()))
                .map(|n| Item {
                    label: n.name.clone(),
                    counts: n.counts.clone(),
                    p50: None,
                    p99: None,
                })
                .collect()
        }
    }
}

fn sort(items: &mut [Item], key: SortKey) {
    items.sort_by(|a, b| {
        let k = |i: &Item| match key {
            SortKey::Queries => i.counts.queries as f64,
            SortKey::Failures => i.counts.failures as f64,
            SortKey::P99 => i.p99.unwrap_or(-1.0),
        };
        k(b).total_cmp(&k(a))
            .then(b.counts.queries.cmp(&a.counts.queries))
            .then(a.label.cmp(&b.label))
    });
}

pub fn draw(f: &mut Frame, st: &State) {
    let [title, stats, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Min(6),
        Constraint::Length(9),
    ])
    .areas(f.area());
    let bold = Style::default().add_modifier(Modifier::BOLD);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("dnsdoc top", bold),
            Span::raw(format!(
                "  {}  every {}  window {}   q quit  s sort: {}  tab: {}",
                st.scope,
                st.interval,
                st.windows,
                st.sort.as_str(),
                st.table.as_str()
            )),
        ])),
        title,
    );
    let Some(s) = &st.snapshot else {
        f.render_widget(
            Paragraph::new(format!("waiting for the first window ({})...", st.interval))
                .block(Block::default().borders(Borders::ALL)),
            stats,
        );
        return;
    };
    draw_stats(f, stats, s);
    draw_table(f, body, s, st);
    let [hist, health] =
        Layout::horizontal([Constraint::Percentage(65), Constraint::Percentage(35)]).areas(bottom);
    draw_histogram(f, hist, &st.histogram);
    draw_health(f, health, s);
}

fn draw_stats(f: &mut Frame, area: Rect, s: &Snapshot) {
    let t = &s.totals.counts;
    let line = format!(
        "q/s {:.1}   queries {}   failures {} ({})   timeouts {}   NXDOMAIN {}   p50 {} ms   p99 {} ms   server side q/s {:.1}",
        t.queries_per_s,
        t.queries,
        t.failures,
        units::pct(t.failure_ratio),
        t.timeouts,
        t.rcodes.NXDOMAIN,
        units::ms(s.latency.p50_ms),
        units::ms(s.latency.p99_ms),
        s.server_side.counts.queries_per_s,
    );
    f.render_widget(
        Paragraph::new(line).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" last window: {:.1} s ", s.window.duration_s)),
        ),
        area,
    );
}

fn draw_table(f: &mut Frame, area: Rect, s: &Snapshot, st: &State) {
    let mut rows = items(s, st.table);
    sort(&mut rows, st.sort);
    let header = Row::new([
        "", "q/s", "queries", "fail", "fail %", "timeouts", "NXDOMAIN", "p50 ms", "p99 ms",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let body = rows
        .iter()
        .take(area.height.saturating_sub(3) as usize)
        .map(|i| {
            let c = &i.counts;
            let style = if c.failures > 0 {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            };
            Row::new([
                i.label.clone(),
                format!("{:.1}", c.queries_per_s),
                c.queries.to_string(),
                c.failures.to_string(),
                units::pct(c.failure_ratio),
                c.timeouts.to_string(),
                c.rcodes.NXDOMAIN.to_string(),
                units::ms(i.p50),
                units::ms(i.p99),
            ])
            .style(style)
        });
    let widths = [
        Constraint::Min(24),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(8),
    ];
    f.render_widget(
        TableWidget::new(body, widths).header(header).block(
            Block::default().borders(Borders::ALL).title(format!(
                " top {} by {} ",
                st.table.as_str(),
                st.sort.as_str()
            )),
        ),
        area,
    );
}

/// A bucket's upper bound, short: "500µs", "25ms", "2.5s".
fn bucket_label(upper: f64) -> String {
    if upper < 0.001 {
        format!("{:.0}µs", upper * 1e6)
    } else if upper < 1.0 {
        format!("{}ms", upper * 1e3)
    } else {
        format!("{upper}s")
    }
}

fn draw_histogram(f: &mut Frame, area: Rect, h: &Histogram) {
    let mut bars: Vec<Bar> = DURATION_BUCKETS
        .iter()
        .zip(h.counts)
        .map(|(&upper, n)| {
            Bar::default()
                .label(Line::from(bucket_label(upper)))
                .value(n)
        })
        .collect();
    bars.push(
        Bar::default()
            .label(Line::from(">10s"))
            .value(h.counts[DURATION_BUCKETS.len()]),
    );
    f.render_widget(
        BarChart::default()
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" latency, last window (answers per bucket, up to) "),
            )
            .data(BarGroup::default().bars(&bars))
            .bar_width(5)
            .bar_gap(1),
        area,
    );
}

fn draw_health(f: &mut Frame, area: Rect, s: &Snapshot) {
    let c = &s.capture;
    let state = if c.dropped.total > 0 {
        Span::styled("PARTIAL", Style::default().fg(Color::Red))
    } else {
        Span::styled("complete", Style::default().fg(Color::Green))
    };
    let lines = vec![
        Line::from(vec![Span::raw("capture "), state]),
        Line::from(format!("packets {}  events {}", c.packets, c.events)),
        Line::from(format!(
            "dropped {} (ring {}, evicted {})",
            c.dropped.total, c.dropped.ringbuf_full, c.dropped.pending_evicted
        )),
        Line::from(format!(
            "parse errors {}  unmatched {}",
            c.parse_errors, c.unmatched_responses
        )),
        Line::from(format!("in flight {}", c.pending_at_end)),
    ];
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" capture health "),
        ),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(label: &str, queries: u64, failures: u64, p99: Option<f64>) -> Item {
        Item {
            label: label.into(),
            counts: Counts {
                queries,
                failures,
                ..Counts::default()
            },
            p50: None,
            p99,
        }
    }

    #[test]
    fn sorting_follows_the_key_and_keys_cycle() {
        let mut v = vec![
            item("a", 10, 5, Some(1.0)),
            item("b", 50, 0, Some(9.0)),
            item("c", 20, 9, None),
        ];
        sort(&mut v, SortKey::Queries);
        assert_eq!(
            v.iter().map(|i| &*i.label).collect::<Vec<_>>(),
            ["b", "c", "a"]
        );
        sort(&mut v, SortKey::Failures);
        assert_eq!(
            v.iter().map(|i| &*i.label).collect::<Vec<_>>(),
            ["c", "a", "b"]
        );
        sort(&mut v, SortKey::P99);
        assert_eq!(
            v.iter().map(|i| &*i.label).collect::<Vec<_>>(),
            ["b", "a", "c"]
        );
        assert_eq!(SortKey::Queries.next().next().next(), SortKey::Queries);
        assert_eq!(Table::Processes.next().next().next(), Table::Processes);
        assert_eq!(bucket_label(0.0005), "500µs");
        assert_eq!(bucket_label(0.025), "25ms");
        assert_eq!(bucket_label(2.5), "2.5s");
    }
}
