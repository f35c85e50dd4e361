//! The load generator: `concurrency` hickory-resolver workers on a tokio runtime, paced
//! to at most `qps` lookups per second, for a bounded count and time.
//!
//! Each worker owns its own resolver, like independent pods: one resolver shared by all
//! workers would merge identical concurrent questions into one wire query and hide the
//! load. Every resolver is built from an explicit [`NameServerConfig`] for the target
//! only (hickory's `system-config` feature is off), never from /etc/resolv.conf, and with
//! its cache and hosts file disabled so every lookup goes on the wire.
//!
//! Client behaviour is hickory's own, which is what real clients do: over UDP a lookup
//! is re-sent on a fresh socket every max(333 ms, 1.2 × smoothed RTT), at most three
//! sends within the query timeout, then one more attempt. dnsdoc sees each send as its
//! own query, so a re-send that was never answered is a timeout in its eyes even when a
//! later send succeeded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::Resolver;
use tokio::sync::watch;

use super::names::{NameMix, Qtype, Rng};
use crate::analysis::histogram::Histogram;
use crate::snapshot::Rcodes;

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: SocketAddr,
    /// Most lookups started per second.
    pub qps: u32,
    /// Most lookups in flight at once (one per worker).
    pub concurrency: u32,
    /// No lookup starts after this; lookups in flight then get up to `query_timeout`.
    pub duration: Duration,
    /// The resolver's timeout per attempt.
    pub query_timeout: Duration,
    pub names: NameMix,
    pub seed: u64,
}

impl LoadSpec {
    /// The hard cap on lookups: qps × duration.
    pub fn max_lookups(&self) -> u64 {
        (f64::from(self.qps) * self.duration.as_secs_f64()).ceil() as u64
    }
}

/// Client-side results: what the workers saw.
#[derive(Debug, Clone, Default)]
pub struct LoadStats {
    /// Lookups started.
    pub sent: u64,
    /// Lookups that got a DNS response (any RCODE).
    pub answered: u64,
    pub rcodes: Rcodes,
    /// Lookups that got no response before the resolver gave up.
    pub timeouts: u64,
    /// Lookups that failed in the client (socket errors, resolver busy).
    pub errors: u64,
    /// Lookups still in flight when the run was interrupted.
    pub cancelled: u64,
    /// The first client error, for the summary.
    pub first_error: Option<String>,
    /// Latency of answered lookups, nanoseconds (retries included).
    pub latency: Histogram,
}

struct Shared {
    stats: Mutex<LoadStats>,
    in_flight: AtomicU64,
    next_slot: AtomicU64,
    workers_left: AtomicU64,
}

/// A load whose resolvers are built but whose clock has not started.
pub struct Prepared {
    runtime: tokio::runtime::Runtime,
    resolvers: Vec<Resolver<TokioRuntimeProvider>>,
    spec: LoadSpec,
}

/// A running load. Dropping it stops the workers (the runtime goes with it).
pub struct Load {
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    started: Instant,
    spec: LoadSpec,
}

enum Outcome {
    Answered(u16),
    Timeout,
    Error(String),
    Cancelled,
}

impl Prepared {
    /// Starts the clock and the workers, and returns at once.
    pub fn start(self) -> Load {
        let Prepared {
            runtime,
            resolvers,
            spec,
        } = self;
        let shared = Arc::new(Shared {
            stats: Mutex::new(LoadStats::default()),
            in_flight: AtomicU64::new(0),
            next_slot: AtomicU64::new(0),
            workers_left: AtomicU64::new(resolvers.len() as u64),
        });
        let (stop, stop_rx) = watch::channel(false);
        let started = Instant::now();
        let start = tokio::time::Instant::from_std(started);
        let spec_arc = Arc::new(spec.clone());
        for (id, resolver) in resolvers.into_iter().enumerate() {
            runtime.spawn(worker(
                id as u64,
                resolver,
                Arc::clone(&spec_arc),
                Arc::clone(&shared),
                stop_rx.clone(),
                start,
            ));
        }
        Load {
            runtime,
            shared,
            stop,
            started,
            spec,
        }
    }
}

impl Load {
    /// Builds the runtime and one resolver per worker. Nothing is sent yet: building
    /// thousands of resolvers takes a moment, which must not eat into the run.
    pub fn prepare(spec: LoadSpec) -> Result<Prepared> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 4);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("dnsdoc-load")
            .enable_all()
            .build()
            .context("starting the load runtime")?;
        let mut resolvers = Vec::with_capacity(spec.concurrency as usize);
        {
            let _guard = runtime.enter();
            for _ in 0..spec.concurrency {
                resolvers.push(build_resolver(&spec)?);
            }
        }
        Ok(Prepared {
            runtime,
            resolvers,
            spec,
        })
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// True once no new lookup will start (the duration is over or the load stopped).
    pub fn sending_done(&self) -> bool {
        *self.stop.borrow() || self.started.elapsed() >= self.spec.duration
    }

    /// True once every worker has finished.
    pub fn finished(&self) -> bool {
        self.shared.workers_left.load(Ordering::SeqCst) == 0
    }

    pub fn in_flight(&self) -> u64 {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Sent, answered, timeouts so far, without copying the histogram.
    pub fn counts(&self) -> (u64, u64, u64, u64) {
        let s = self.shared.stats.lock().expect("stats lock");
        (s.sent, s.answered, s.timeouts, s.rcodes.NXDOMAIN)
    }

    /// Stops at once: no new lookups, lookups in flight are abandoned (counted as
    /// cancelled).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits for every worker (at most `deadline` more), then shuts the runtime down.
    pub fn finish(self, deadline: Duration) -> LoadStats {
        let until = Instant::now() + deadline;
        while !self.finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop();
        // Workers see the stop flag and return; anything still stuck is dropped.
        self.runtime.shutdown_timeout(Duration::from_millis(500));
        let stats = self.shared.stats.lock().expect("stats lock").clone();
        stats
    }
}

/// A resolver that talks to `spec.target` and nothing else.
fn build_resolver(spec: &LoadSpec) -> Result<Resolver<TokioRuntimeProvider>> {
    let mut udp = ConnectionConfig::udp();
    udp.port = spec.target.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = spec.target.port();
    let server = NameServerConfig::new(spec.target.ip(), true, vec![udp, tcp]);
    let config = ResolverConfig::from_name_servers(vec![server]);
    let mut opts = ResolverOpts::default();
    opts.timeout = spec.query_timeout;
    opts.attempts = 1;
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.num_concurrent_reqs = 1;
    opts.ndots = 0;
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .context("building the DNS client")
}

async fn worker(
    id: u64,
    resolver: Resolver<TokioRuntimeProvider>,
    spec: Arc<LoadSpec>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    start: tokio::time::Instant,
) {
    let mut rng = Rng::new(spec.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let interval_ns = 1e9 / f64::from(spec.qps.max(1));
    let end = start + spec.duration;
    let max = spec.max_lookups();
    loop {
        if *stop.borrow() {
            break;
        }
        let slot = shared.next_slot.fetch_add(1, Ordering::SeqCst);
        if slot >= max {
            break;
        }
        let at = start + Duration::from_nanos((slot as f64 * interval_ns) as u64);
        if at >= end {
            break;
        }
        if at > tokio::time::Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = stop.changed() => break,
            }
        }
        if tokio::time::Instant::now() >= end {
            break;
        }
        let (name, qtype) = spec.names.pick(&mut rng);
        let rtype = match qtype {
            Qtype::A => RecordType::A,
            Qtype::Aaaa => RecordType::AAAA,
        };
        shared.stats.lock().expect("stats lock").sent += 1;
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let t0 = Instant::now();
        let outcome = tokio::select! {
            r = resolver.lookup(name.as_str(), rtype) => classify(r.map(|_| ())),
            _ = stop.changed() => Outcome::Cancelled,
        };
        let elapsed = t0.elapsed();
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        let cancelled = matches!(outcome, Outcome::Cancelled);
        record(&shared, outcome, elapsed);
        if cancelled {
            break;
        }
    }
    shared.workers_left.fetch_sub(1, Ordering::SeqCst);
}

fn classify(r: Result<(), NetError>) -> Outcome {
    match r {
        Ok(()) => Outcome::Answered(0),
        // NXDOMAIN and NOERROR without data arrive as "no records found".
        Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => {
            Outcome::Answered(u16::from(nr.response_code))
        }
        Err(NetError::Dns(DnsError::ResponseCode(rc))) => Outcome::Answered(u16::from(rc)),
        Err(NetError::Timeout) => Outcome::Timeout,
        Err(e) => Outcome::Error(e.to_string()),
    }
}

fn record(shared: &Shared, outcome: Outcome, elapsed: Duration) {
    let mut s = shared.stats.lock().expect("stats lock");
    match outcome {
        Outcome::Answered(rcode) => {
            s.answered += 1;
            s.rcodes.add(rcode);
            s.latency.record(elapsed.as_nanos() as u64);
        }
        Outcome::Timeout => s.timeouts += 1,
        Outcome::Error(e) => {
            s.errors += 1;
            if s.first_error.is_none() {
                s.first_error = Some(e);
            }
        }
        Outcome::Cancelled => s.cancelled += 1,
    }
}
