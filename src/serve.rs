//! `dnsdoc serve`: the continuous engine behind an HTTP endpoint for Prometheus.
//!
//! The capture and analysis run on the main thread ([`crate::pipeline::continuous`]);
//! each closed window publishes its snapshot, its findings and a copy of the series
//! into shared state, which a second thread serves (tiny_http: blocking, no runtime).
//! /metrics is encoded at scrape time, so `process_resident_memory_bytes` is current.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::exit::{self, UsageError};
use crate::pipeline::continuous::{observe_continuous, ContinuousOptions, Flow, WindowSink};
use crate::rules::report::{FailOn, Report};
use crate::rules::{self, RuleSet};
use crate::series::expose::{encode, Format, Meta};
use crate::series::Series;
use crate::snapshot::Snapshot;

/// What `dnsdoc serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub run: ContinuousOptions,
    pub listen: SocketAddr,
    /// Rule files for /doctor, on top of the built-ins.
    pub rules: Vec<PathBuf>,
    pub disable: Vec<String>,
}

/// What the HTTP thread serves: the last window's results.
struct Published {
    series: Series,
    snapshot: Option<String>,
    doctor: Option<String>,
    windows: u64,
    /// When the last window closed (or serving started).
    last: Instant,
    interval: Duration,
}

/// /healthz: healthy while windows keep closing; a capture that stopped closing them
/// (stuck, or starved of CPU) for three intervals and 5 s is reported, so a liveness
/// probe restarts it.
fn health(windows: u64, since_last: Duration, interval: Duration) -> (u16, String) {
    let limit = interval * 3 + Duration::from_secs(5);
    if since_last > limit {
        (
            503,
            format!(
                "stale: no window closed for {} (interval {})\n",
                humantime::format_duration(Duration::from_secs(since_last.as_secs())),
                humantime::format_duration(interval)
            ),
        )
    } else {
        (200, format!("ok: capturing, {windows} windows closed\n"))
    }
}

/// Runs `dnsdoc serve` until SIGTERM/Ctrl-C; returns the exit code.
pub fn run(opts: &ServeOptions) -> Result<i32> {
    // Rules and the socket first: a typo or a taken port fails before any probe loads.
    let rules = rules::build(&opts.rules, &opts.disable)?;
    let server = Server::http(opts.listen)
        .map_err(|e| UsageError(format!("--listen {}: cannot listen: {e}", opts.listen)))?;
    let server = Arc::new(server);
    let state = Arc::new(Mutex::new(Published {
        series: Series::new(opts.run.limits),
        snapshot: None,
        doctor: None,
        windows: 0,
        last: Instant::now(),
        interval: opts.run.interval,
    }));
    let running = Arc::new(AtomicBool::new(true));
    let http = {
        let (server, state, running) = (server.clone(), state.clone(), running.clone());
        std::thread::Builder::new()
            .name("dnsdoc-http".into())
            .spawn(move || serve_http(&server, &state, &running))
            .context("starting the HTTP thread")?
    };
    eprintln!(
        "dnsdoc: serving http://{}/metrics (also /healthz, /snapshot, /doctor)",
        opts.listen
    );
    let mut sink = Publisher {
        state: state.clone(),
        rules,
    };
    let result = observe_continuous(&opts.run, &mut sink);
    // The probes are detached by now; stop serving.
    running.store(false, Ordering::SeqCst);
    server.unblock();
    let _ = http.join();
    result.map(|()| exit::OK)
}

/// Publishes each window for the HTTP thread.
struct Publisher {
    state: Arc<Mutex<Published>>,
    rules: RuleSet,
}

impl WindowSink for Publisher {
    fn window(&mut self, snap: &Snapshot, series: &Series) -> Result<Flow> {
        let report = Report::new(
            snap,
            "live".into(),
            rules::evaluate_all(snap, &self.rules),
            FailOn::Warning,
        );
        let snapshot = serde_json::to_string_pretty(snap)?;
        let doctor = serde_json::to_string_pretty(&report)?;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.series = series.clone();
        st.snapshot = Some(snapshot);
        st.doctor = Some(doctor);
        st.windows += 1;
        st.last = Instant::now();
        Ok(Flow::Continue)
    }
}

fn serve_http(server: &Server, state: &Mutex<Published>, running: &AtomicBool) {
    while running.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(req)) => respond(req, state),
            Ok(None) => {}
            Err(_) => break,
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid static header")
}

fn respond(req: Request, state: &Mutex<Published>) {
    let path = req.url().split('?').next().unwrap_or("").to_string();
    let (status, ctype, body) = if *req.method() != Method::Get && *req.method() != Method::Head {
        (405, "text/plain; charset=utf-8", "only GET\n".to_string())
    } else {
        let st = state.lock().unwrap_or_else(|e| e.into_inner());
        match path.as_str() {
            "/metrics" => {
                let accept = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Accept"))
                    .map(|h| h.value.as_str().to_string());
                let format = Format::from_accept(accept.as_deref());
                (
                    200,
                    format.content_type(),
                    encode(&st.series, &Meta::current(), format),
                )
            }
            "/healthz" => {
                let (code, text) = health(st.windows, st.last.elapsed(), st.interval);
                (code, "text/plain; charset=utf-8", text)
            }
            "/snapshot" | "/doctor" => {
                let body = if path == "/snapshot" {
                    &st.snapshot
                } else {
                    &st.doctor
                };
                match body {
                    Some(b) => (200, "application/json", format!("{b}\n")),
                    None => (
                        503,
                        "text/plain; charset=utf-8",
                        "no window has closed yet; retry after --interval\n".to_string(),
                    ),
                }
            }
            "/" => (
                200,
                "text/plain; charset=utf-8",
                "dnsdoc: /metrics /healthz /snapshot /doctor\n".to_string(),
            ),
            _ => (404, "text/plain; charset=utf-8", "not found\n".to_string()),
        }
    };
    // The body is in memory: always a Content-Length, never chunked (tiny_http chunks
    // bodies over 32 KiB by default, which a snapshot with its domain rows passes, and
    // simple clients read one body up to the end).
    let resp = Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", ctype))
        .with_chunked_threshold(usize::MAX);
    // A scraper that hung up is its own problem.
    let _ = req.respond(resp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_goes_stale_after_three_intervals_without_a_window() {
        let i = Duration::from_secs(10);
        assert_eq!(health(4, Duration::from_secs(12), i).0, 200);
        assert_eq!(health(4, Duration::from_secs(35), i).0, 200);
        let (code, text) = health(4, Duration::from_secs(36), i);
        assert_eq!(code, 503);
        assert!(
            text.starts_with("stale: no window closed for 36s"),
            "{text}"
        );
    }
}
