//! Flags of the continuous commands: `watch --interval/--textfile`, `serve`, `top`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{parse_duration, CaptureArgs};
use crate::pipeline::continuous::ContinuousOptions;
use crate::series::Limits;
use crate::watch::Continuous;

/// `dnsdoc watch`'s continuous mode.
#[derive(Debug, Clone, Args)]
pub struct WatchContinuousArgs {
    /// Run until stopped, closing a window every INTERVAL: one snapshot per window on
    /// stdout (with --format json, one JSON document per line: NDJSON).
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval, conflicts_with = "duration")]
    pub interval: Option<Duration>,

    /// With --interval (or --textfile): stop after N windows.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..),
          conflicts_with = "duration")]
    pub count: Option<u64>,

    /// Write DIR/dnsdoc.prom (Prometheus text) after every window, atomically, for
    /// node_exporter's textfile collector. Implies continuous mode (--interval 10s unless
    /// given; one window: --interval D --count 1).
    #[arg(long, value_name = "DIR", conflicts_with = "duration")]
    pub textfile: Option<PathBuf>,

    #[command(flatten)]
    pub limits: LimitArgs,
}

impl WatchContinuousArgs {
    /// None: one window (the classic `watch`).
    pub fn options(&self) -> Option<Continuous> {
        if self.interval.is_none() && self.textfile.is_none() {
            return None;
        }
        Some(Continuous {
            interval: self.interval.unwrap_or(DEFAULT_INTERVAL),
            count: self.count,
            textfile: self.textfile.clone(),
            limits: self.limits.limits(),
        })
    }
}

/// Caps that keep a run without end bounded.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Distinct values per exported label (server, qtype, rcode, process) before the rest
    /// are counted under "~other".
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_label_values as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000), hide_short_help = true)]
    pub max_label_values: u64,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_label_values: self.max_label_values as usize,
        }
    }
}

/// A window closes every 10 s unless told otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(24 * 3600) {
        return Err("must be between 100ms and 24h".into());
    }
    Ok(d)
}

pub(crate) const SERVE_ABOUT: &str = "\
Run dnsdoc continuously and serve what it sees over HTTP, for Prometheus:

  /metrics   Prometheus text format (OpenMetrics when the scraper's Accept asks for it)
  /healthz   200 \"ok\" while windows keep closing, 503 when none has for 3 intervals
  /snapshot  the last window's snapshot (JSON, docs/SNAPSHOT.md)
  /doctor    the last window's findings (JSON, as `dnsdoc doctor --format json`)

Counters advance once per --interval. Listens on 127.0.0.1:9953 unless --listen says
otherwise: exposing it beyond the node is an explicit choice. Per-label cardinality is
capped (--max-label-values); SIGTERM or Ctrl-C stops it and detaches every probe.
Alerting rules over these metrics, with doctor's thresholds: `dnsdoc rules export`.";

pub(crate) const SERVE_EXAMPLES: &str = "\
Examples:
  sudo dnsdoc serve
  sudo dnsdoc serve --listen 0.0.0.0:9953 --interval 15s     # for a Prometheus elsewhere
  curl -s localhost:9953/metrics | grep dnsdoc_queries_total
  curl -s localhost:9953/doctor | jq '.findings[].summary'";

/// `dnsdoc serve`.
#[derive(Debug, Args)]
#[command(mut_arg("duration", |a| a.hide(true)))]
pub struct ServeArgs {
    #[command(flatten)]
    pub capture: CaptureArgs,

    /// Address and port to listen on. Anything but loopback exposes DNS activity of this
    /// node to whoever can reach it.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9953")]
    pub listen: SocketAddr,

    /// A window closes (and the counters advance) every INTERVAL.
    #[arg(long, value_name = "INTERVAL", default_value = "10s", value_parser = parse_interval)]
    pub interval: Duration,

    /// Rule files or directories for /doctor, on top of the built-ins (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// Rule ids to disable for /doctor (repeatable).
    #[arg(long = "disable", value_name = "RULE")]
    pub disable: Vec<String>,

    #[command(flatten)]
    pub limits: LimitArgs,
}

impl ServeArgs {
    pub fn options(&self) -> crate::serve::ServeOptions {
        crate::serve::ServeOptions {
            run: ContinuousOptions {
                observe: self.capture.observe_options(),
                interval: self.interval,
                max_windows: None,
                limits: self.limits.limits(),
            },
            listen: self.listen,
            rules: self.rules.clone(),
            disable: self.disable.clone(),
        }
    }
}

/// The only export format so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A Prometheus alerting-rules file (YAML).
    Prometheus,
}

/// `dnsdoc rules export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t = ExportFormat::Prometheus)]
    pub format: ExportFormat,

    /// Rule files or directories, applied in order on top of the built-ins (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// Rule ids to leave out (repeatable).
    #[arg(long = "disable", value_name = "RULE")]
    pub disable: Vec<String>,

    /// The range every metric is measured over: the part doctor's --duration plays.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_range)]
    pub window: Duration,

    /// How long a condition must hold before its alert fires.
    #[arg(long = "for", value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub for_: Duration,

    /// Write the file here (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl ExportArgs {
    pub fn options(&self) -> crate::doctor::ExportTask {
        crate::doctor::ExportTask {
            rules: self.rules.clone(),
            disable: self.disable.clone(),
            export: crate::alerts::ExportOptions {
                window: self.window,
                for_: self.for_,
            },
            output: self.output.clone(),
        }
    }
}

fn parse_range(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s (and at least twice the scrape interval)".into());
    }
    Ok(d)
}
pub(crate) const TOP_ABOUT: &str = "\
A live view of this node's DNS, refreshed every second (like top): queries per second,
failure ratio, timeouts and p50/p99 latency of the last second, the busiest processes,
servers and names (sortable), a latency histogram, and capture health.

Keys: q quits (every probe is detached), s cycles the sort key (queries, failures,
p99), tab switches the table (processes, servers, names).

Needs a terminal: for scripts use `dnsdoc watch --format json` (one window) or
`dnsdoc watch --interval 1s --format json` (one JSON line per second).";

/// `dnsdoc top`.
#[derive(Debug, Args)]
#[command(mut_arg("duration", |a| a.hide(true)))]
pub struct TopArgs {
    #[command(flatten)]
    pub capture: CaptureArgs,

    /// Refresh (and window) every INTERVAL.
    #[arg(long, value_name = "INTERVAL", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
}

impl TopArgs {
    pub fn options(&self) -> crate::top::TopOptions {
        crate::top::TopOptions {
            run: ContinuousOptions {
                observe: self.capture.observe_options(),
                interval: self.interval,
                max_windows: None,
                limits: Limits::default(),
            },
        }
    }
}
