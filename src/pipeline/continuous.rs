//! The continuous engine: the pipeline run indefinitely, a window closed every
//! `interval`. `watch --interval`, `serve` and `top` all run on it.
//!
//! What persists across windows is bounded: the analyzer's in-flight table
//! (`--max-pending`, evictions counted), socket owners and TCP streams (pruned when
//! idle), pending queries (expired after `--timeout`), the process-name table
//! ([`MAX_PROCESS_NAMES`], evictions counted) and the exported series (label values
//! capped per label, the rest under `~other`). What a window aggregates (names,
//! processes, servers) is dropped when the window closes.

use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::source::{EventSource, SourceHealth};
use super::stage::Stage;
use super::Lookups;
use super::{
    analysis_config, assemble, finish, node_counters, take, ObserveOptions, Span, WindowCounts,
};
use crate::analysis::aggregate::Aggregator;
use crate::analysis::matcher::MatcherStats;
use crate::analysis::DecodeStats;
use crate::host::UdpCounters;
use crate::series::{Limits, Series};
use crate::signals;
use crate::snapshot::Snapshot;

/// Processes whose names are kept between windows; past it, the table keeps only the
/// processes of the window that just closed.
pub const MAX_PROCESS_NAMES: usize = 4096;

/// What a continuous run was asked to do.
#[derive(Debug, Clone)]
pub struct ContinuousOptions {
    /// How to observe (its `duration` is ignored: a continuous run ends on a signal,
    /// after `max_windows`, when the sink says stop, or when a capture file ends).
    pub observe: ObserveOptions,
    /// A window closes every `interval` (of the source's clock: a capture file's own
    /// timestamps when replaying one).
    pub interval: Duration,
    /// Stop after this many windows.
    pub max_windows: Option<u64>,
    pub limits: Limits,
}

/// Whether to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Where closed windows go.
pub trait WindowSink {
    /// A window closed: its snapshot, and the cumulative series after it.
    fn window(&mut self, snapshot: &Snapshot, series: &Series) -> Result<Flow>;

    /// Called between polls (about every 10 ms), for a sink that reads a keyboard.
    fn idle(&mut self) -> Result<Flow> {
        Ok(Flow::Continue)
    }
}

/// Attaches the probes (or opens the file), runs windows until stopped, detaches.
pub fn observe_continuous(opts: &ContinuousOptions, sink: &mut dyn WindowSink) -> Result<()> {
    let mut observe = super::prepare(&opts.observe)?;
    observe.duration = Duration::MAX;
    let opts = ContinuousOptions {
        observe,
        ..opts.clone()
    };
    super::with_source(&opts.observe, |source, scope| {
        run_continuous(source, &opts, scope, sink)
    })
}

/// Counters of the source, the analysis and the node at a window's close, to subtract
/// from the next one's.
#[derive(Debug, Clone, Default)]
struct Marks {
    health: SourceHealth,
    decode: DecodeStats,
    matched: MatcherStats,
    node: Option<UdpCounters>,
}

/// One window being filled.
struct Open {
    agg: Aggregator,
    start_ns: u64,
    start_wall: SystemTime,
    /// Processes with a transaction in this window (kept when the table is trimmed).
    tgids: std::collections::HashSet<u32>,
}

impl Open {
    fn new(start_ns: u64) -> Open {
        Open {
            agg: Aggregator::new(),
            start_ns,
            start_wall: SystemTime::now(),
            tgids: std::collections::HashSet::new(),
        }
    }
}

/// Runs windows over `source` until a signal, `max_windows`, the sink, or the end of
/// the source stops it; the last, partial window is closed too.
pub fn run_continuous(
    source: &mut dyn EventSource,
    opts: &ContinuousOptions,
    scope: &str,
    sink: &mut dyn WindowSink,
) -> Result<()> {
    let o = &opts.observe;
    let interval_ns = opts.interval.as_nanos().max(1) as u64;
    let mut stage = Stage::new(&analysis_config(o));
    let mut lookups = Lookups::new(o.timeout.as_nanos() as u64);
    let mut series = Series::new(opts.limits);
    let mut marks = Marks {
        node: source.is_this_node_now().then(UdpCounters::read).flatten(),
        ..Marks::default()
    };
    let mut open = Open::new(source.now_ns());
    let mut windows = 0u64;

    let mut stopped_by_sink = false;
    loop {
        if signals::stop_requested() || source.exhausted() {
            break;
        }
        if sink.idle()? == Flow::Stop {
            stopped_by_sink = true;
            break;
        }
        stage.poll(source, Duration::from_millis(10))?;
        if !o.kube.cgroups.is_empty() {
            stage.cgroups_of_exited_owners();
        }
        for tx in &stage.txs {
            if let Some(owner) = &tx.owner {
                open.tgids.insert(owner.tgid);
            }
            if super::wanted(tx, o, &stage.procs) {
                series.add(tx, &stage.procs);
            }
        }
        take(&mut stage, o, &mut open.agg, &mut lookups);
        let now_ns = source.now_ns();
        if now_ns.saturating_sub(open.start_ns) < interval_ns {
            continue;
        }
        let counts = take_counts(source, &stage, &mut marks, None)?;
        // Lookups end on the clock of what was seen: a query still in the ring may join.
        let done = lookups.take_tallies(source.seen_until_ns());
        let snap = close(
            source, opts, scope, &open, now_ns, &counts, &mut stage, &done,
        );
        series.set_capture(&source.health()?, stage.analyzer.matcher_stats().evicted);
        series.add_window(&snap);
        series.windows += 1;
        windows += 1;
        let dropped = stage.trim_procs(MAX_PROCESS_NAMES, |t| open.tgids.contains(&t));
        series.evicted("process_names", dropped);
        open = Open {
            agg: open.agg.next_window(),
            ..Open::new(now_ns)
        };
        if sink.window(&snap, &series)? == Flow::Stop
            || opts.max_windows.is_some_and(|m| windows >= m)
        {
            stopped_by_sink = true;
            break;
        }
    }
    if stopped_by_sink {
        // The sink saw its last window; the probes are freed by the caller.
        source.stop();
        return Ok(());
    }
    // Stopped by a signal or the end of the source: close the last, partial window.
    let end_ns = source.now_ns();
    source.stop();
    loop {
        stage.poll(source, Duration::ZERO)?;
        for tx in &stage.txs {
            if super::wanted(tx, o, &stage.procs) {
                series.add(tx, &stage.procs);
            }
        }
        take(&mut stage, o, &mut open.agg, &mut lookups);
        if !source.backlog() {
            break;
        }
    }
    // What times out now counts in the series too (pending queries are not counted).
    let pending = finish(
        &mut stage,
        end_ns,
        o,
        &mut open.agg,
        &mut lookups,
        |tx, procs| series.add(tx, procs),
    );
    let end_ns = end_ns.max(source.now_ns());
    let counts = take_counts(source, &stage, &mut marks, Some(pending))?;
    let done = lookups.finish_all();
    let snap = close(
        source, opts, scope, &open, end_ns, &counts, &mut stage, &done,
    );
    series.set_capture(&source.health()?, stage.analyzer.matcher_stats().evicted);
    series.add_window(&snap);
    series.windows += 1;
    sink.window(&snap, &series)?;
    Ok(())
}

/// The window's counters: what the source, the analysis and the node counted since the
/// last close (saturating: a counter that went backwards gives 0, never a panic).
fn take_counts(
    source: &dyn EventSource,
    stage: &Stage,
    marks: &mut Marks,
    pending_at_end: Option<(u64, u64)>,
) -> Result<WindowCounts> {
    let now = Marks {
        health: source.health()?,
        decode: stage.analyzer.decode_stats(),
        matched: stage.analyzer.matcher_stats(),
        node: marks.node.as_ref().and_then(|_| UdpCounters::read()),
    };
    let (h, p) = (&now.health, &marks.health);
    let (d, pd) = (&now.decode, &marks.decode);
    let (m, pm) = (&now.matched, &marks.matched);
    let in_flight = stage.analyzer.in_flight() as u64;
    let counts = WindowCounts {
        health: SourceHealth {
            packets: h.packets.saturating_sub(p.packets),
            ringbuf_full: h.ringbuf_full.saturating_sub(p.ringbuf_full),
            load_error: h.load_error.saturating_sub(p.load_error),
            decode_error: h.decode_error.saturating_sub(p.decode_error),
            owner_unrecorded: h.owner_unrecorded.saturating_sub(p.owner_unrecorded),
            owners_from_sock_diag: h
                .owners_from_sock_diag
                .saturating_sub(p.owners_from_sock_diag),
            degraded: h.degraded.clone(),
        },
        decode: DecodeStats {
            events: d.events.saturating_sub(pd.events),
            messages: d.messages.saturating_sub(pd.messages),
            payload_cut: d.payload_cut.saturating_sub(pd.payload_cut),
            parse_errors: d.parse_errors.saturating_sub(pd.parse_errors),
            tcp_desyncs: d.tcp_desyncs.saturating_sub(pd.tcp_desyncs),
        },
        matched: MatcherStats {
            retransmissions: m.retransmissions.saturating_sub(pm.retransmissions),
            server_retransmissions: m
                .server_retransmissions
                .saturating_sub(pm.server_retransmissions),
            unmatched_responses: m.unmatched_responses.saturating_sub(pm.unmatched_responses),
            evicted: m.evicted.saturating_sub(pm.evicted),
        },
        // Mid-run, the queries still in flight (both roles) are the window's pending;
        // at the end, the analyzer says which are whose.
        pending_client: pending_at_end.map_or(in_flight, |p| p.0),
        pending_server: pending_at_end.map_or(0, |p| p.1),
        node_counters: marks
            .node
            .as_ref()
            .zip(now.node.as_ref())
            .map(|(before, after)| node_counters(before, after)),
    };
    *marks = now;
    Ok(counts)
}

/// Assembles one window's snapshot.
#[allow(clippy::too_many_arguments)]
fn close(
    source: &dyn EventSource,
    opts: &ContinuousOptions,
    scope: &str,
    open: &Open,
    end_ns: u64,
    counts: &WindowCounts,
    stage: &mut Stage,
    lookups: &crate::analysis::lookup_stats::LookupTallies,
) -> Snapshot {
    let span = Span {
        start_ns: open.start_ns,
        end_ns,
        start_wall: open.start_wall,
        end_wall: SystemTime::now(),
    };
    assemble(
        source,
        &opts.observe,
        scope,
        &span,
        counts,
        &open.agg,
        stage,
        lookups,
    )
}
