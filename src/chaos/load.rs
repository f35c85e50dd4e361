//! The load generator: `concurrency` workers on a tokio runtime, paced to at most `qps`
//! lookups per second, for a bounded count and time.
//!
//! Each worker is one client, like a pod: it owns one connected UDP socket and does one
//! lookup at a time. Queries are built with hickory-proto (`Message`, `Query`, `Name`),
//! sent to `spec.target` and nothing else (never /etc/resolv.conf). hickory-resolver's
//! full `Resolver` was the bottleneck here (about 4.4K lookups/s from 512 workers: a
//! new socket, a task and a connection pool per lookup); a lean client on one socket
//! per worker reaches the wire rates `make bench` measures (see docs/CHAOS.md).
//!
//! The client behaves like a stub resolver and counts every wire message, so the report
//! can reconcile its lookups with the queries dnsdoc sees:
//! - a lookup is re-sent with a **new DNS id** every [`RESEND_AFTER`], at most
//!   [`SENDS_PER_LOOKUP`] sends, until [`LoadSpec::query_timeout`] after the first send;
//!   dnsdoc sees each send as its own query, and an unanswered one as a timeout;
//! - an answer with the TC bit is asked again over TCP (RFC 7766), one more query;
//! - a lookup asks one type (A or AAAA), never the A/AAAA pair glibc sends.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hickory_proto::rr::RecordType;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::time::Instant as TokioInstant;

use super::names::{NameMix, Qtype, Rng};
use super::wire::{new_id, read_response, QueryCache};
use crate::analysis::histogram::Histogram;
use crate::snapshot::Rcodes;

/// A lookup still unanswered after this long is sent again with a new id.
pub const RESEND_AFTER: Duration = Duration::from_millis(700);
/// Most UDP sends per lookup (the first and its re-sends).
pub const SENDS_PER_LOOKUP: u32 = 3;

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
    /// How long a lookup waits for an answer, from its first send.
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

/// What the clients put on the wire and got back, message by message. The report
/// reconciles these with what dnsdoc captured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WireStats {
    /// UDP queries sent: first sends plus re-sends.
    pub udp_queries: u64,
    /// Re-sends of an unanswered lookup, each with a new DNS id.
    pub resends: u64,
    /// Queries sent over TCP after a truncated (TC) UDP answer.
    pub tcp_queries: u64,
    /// UDP answers with the TC bit.
    pub truncated: u64,
    /// Answers received, UDP and TCP, including late answers to an earlier send.
    pub responses: u64,
    /// Answers to an earlier send of the same lookup that arrived after a re-send.
    pub late_answers: u64,
    /// Answers to a lookup that had already ended (timed out), dropped by the client.
    pub stale_answers: u64,
    /// glibc clients only (counted by the relay): the second query type of a name sent
    /// together with the first (getaddrinfo's parallel A/AAAA).
    pub pair_siblings: u64,
    /// glibc clients only: names tried beyond one per lookup (the search-list walk).
    pub search_expansions: u64,
    /// glibc clients only: re-sends that kept their DNS id (dnsdoc folds these into
    /// the query they repeat).
    pub same_id_resends: u64,
    /// glibc clients only: queries the relay dropped (the lost conntrack insert).
    pub dropped: u64,
}

impl WireStats {
    /// Every query the clients put on the wire.
    pub fn queries(&self) -> u64 {
        self.udp_queries + self.tcp_queries
    }

    fn add(&mut self, o: &WireStats) {
        self.udp_queries += o.udp_queries;
        self.resends += o.resends;
        self.tcp_queries += o.tcp_queries;
        self.truncated += o.truncated;
        self.responses += o.responses;
        self.late_answers += o.late_answers;
        self.stale_answers += o.stale_answers;
        self.pair_siblings += o.pair_siblings;
        self.search_expansions += o.search_expansions;
        self.same_id_resends += o.same_id_resends;
        self.dropped += o.dropped;
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
    /// Lookups that got no response before the client gave up.
    pub timeouts: u64,
    /// Lookups that failed in the client (socket errors, connection refused).
    pub errors: u64,
    /// Lookups still in flight when the run was interrupted.
    pub cancelled: u64,
    /// The first client error, for the summary.
    pub first_error: Option<String>,
    /// Latency of answered lookups from their first send, nanoseconds (re-sends and
    /// TCP fallback included): what an application waits.
    pub latency: Histogram,
    /// From the send that was answered to its answer, nanoseconds: one round trip as
    /// the client's event loop saw it.
    pub round_trip: Histogram,
    pub wire: WireStats,
    /// First and last send, nanoseconds after the start of the load: the interval the
    /// wire rate is measured over.
    pub first_send_ns: Option<u64>,
    pub last_send_ns: Option<u64>,
}

/// Counters the progress line reads while the load runs.
#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    answered: AtomicU64,
    timeouts: AtomicU64,
    nxdomain: AtomicU64,
}

struct Shared {
    stats: Mutex<LoadStats>,
    progress: Progress,
    in_flight: AtomicU64,
    next_slot: AtomicU64,
    workers_left: AtomicU64,
}

/// A load whose sockets are bound but whose clock has not started.
pub struct Prepared {
    runtime: tokio::runtime::Runtime,
    sockets: Vec<UdpSocket>,
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

/// How one lookup ended.
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
            sockets,
            spec,
        } = self;
        let shared = Arc::new(Shared {
            stats: Mutex::new(LoadStats::default()),
            progress: Progress::default(),
            in_flight: AtomicU64::new(0),
            next_slot: AtomicU64::new(0),
            workers_left: AtomicU64::new(sockets.len() as u64),
        });
        let (stop, stop_rx) = watch::channel(false);
        let started = Instant::now();
        let start = TokioInstant::from_std(started);
        let spec_arc = Arc::new(spec.clone());
        for (id, socket) in sockets.into_iter().enumerate() {
            runtime.spawn(worker(
                id as u64,
                socket,
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
    /// Builds the runtime and one connected socket per worker. Nothing is sent yet.
    pub fn prepare(spec: LoadSpec) -> Result<Prepared> {
        // One socket per worker, plus the capture's maps and files.
        ensure_open_files(u64::from(spec.concurrency) + 256)?;
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
        let bind: SocketAddr = match spec.target.ip() {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sockets = runtime.block_on(async {
            let mut sockets = Vec::with_capacity(spec.concurrency as usize);
            for _ in 0..spec.concurrency {
                let s = UdpSocket::bind(bind)
                    .await
                    .context("opening a client socket")?;
                s.connect(spec.target)
                    .await
                    .with_context(|| format!("connecting a client socket to {}", spec.target))?;
                sockets.push(s);
            }
            anyhow::Ok(sockets)
        })?;
        Ok(Prepared {
            runtime,
            sockets,
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
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Lookups sent, answered, timed out, NXDOMAIN so far.
    pub fn counts(&self) -> (u64, u64, u64, u64) {
        let p = &self.shared.progress;
        (
            p.sent.load(Ordering::Relaxed),
            p.answered.load(Ordering::Relaxed),
            p.timeouts.load(Ordering::Relaxed),
            p.nxdomain.load(Ordering::Relaxed),
        )
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
        // Workers see the stop flag, merge their counts and return.
        let until = Instant::now() + Duration::from_secs(1);
        while !self.finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.runtime.shutdown_timeout(Duration::from_millis(500));
        let stats = self.shared.stats.lock().expect("stats lock").clone();
        stats
    }
}

/// Raises the soft limit on open files to `needed` (at most the hard limit), or says
/// why the load cannot run: 2048 workers need more than the usual soft limit of 1024.
fn ensure_open_files(needed: u64) -> Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct, which `lim` is.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 || lim.rlim_cur >= needed {
        return Ok(());
    }
    if lim.rlim_max < needed {
        return Err(crate::exit::UsageError(format!(
            "--concurrency {}: needs {needed} open files, the hard limit is {} (ulimit -Hn)",
            needed - 256,
            lim.rlim_max
        ))
        .into());
    }
    lim.rlim_cur = needed;
    // SAFETY: setrlimit reads one valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(std::io::Error::last_os_error()).context("raising the open-file limit");
    }
    Ok(())
}

async fn worker(
    id: u64,
    socket: UdpSocket,
    spec: Arc<LoadSpec>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    start: TokioInstant,
) {
    let mut rng = Rng::new(spec.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let interval_ns = 1e9 / f64::from(spec.qps.max(1));
    let end = start + spec.duration;
    let max = spec.max_lookups();
    let mut local = LoadStats::default();
    let mut buf = vec![0u8; 65_535];
    let mut encoded = QueryCache::default();
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
        if at > TokioInstant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = stop.changed() => break,
            }
        }
        if TokioInstant::now() >= end {
            break;
        }
        let (name, qtype) = spec.names.pick(&mut rng);
        let rtype = match qtype {
            Qtype::A => RecordType::A,
            Qtype::Aaaa => RecordType::AAAA,
            Qtype::Txt => RecordType::TXT,
        };
        local.sent += 1;
        shared.progress.sent.fetch_add(1, Ordering::Relaxed);
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let t0 = TokioInstant::now();
        let mut answered_send = t0;
        let query = encoded.get(&name, rtype);
        let outcome = tokio::select! {
            o = lookup(&socket, &spec, query, &mut rng, &mut local, &mut buf, &mut answered_send, start) => o,
            _ = stop.changed() => Outcome::Cancelled,
        };
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        let cancelled = matches!(outcome, Outcome::Cancelled);
        record(&shared, &mut local, outcome, t0, answered_send);
        if cancelled {
            break;
        }
    }
    merge(&shared, &local);
    shared.workers_left.fetch_sub(1, Ordering::SeqCst);
}

/// One lookup: UDP sends with new ids until answered or `query_timeout`, then TCP if
/// the answer was truncated. `answered_send` is set to the send that got the answer.
#[allow(clippy::too_many_arguments)]
async fn lookup(
    socket: &UdpSocket,
    spec: &LoadSpec,
    query: Result<Vec<u8>, String>,
    rng: &mut Rng,
    stats: &mut LoadStats,
    buf: &mut [u8],
    answered_send: &mut TokioInstant,
    start: TokioInstant,
) -> Outcome {
    let mut query = match query {
        Ok(q) => q,
        Err(e) => return Outcome::Error(e),
    };
    let first = TokioInstant::now();
    let deadline = first + spec.query_timeout;
    // Each send's id and time: a late answer to an earlier send still counts.
    let mut ids: Vec<u16> = Vec::with_capacity(SENDS_PER_LOOKUP as usize);
    let mut sent_at: Vec<TokioInstant> = Vec::with_capacity(SENDS_PER_LOOKUP as usize);
    for send in 0..SENDS_PER_LOOKUP {
        let id = new_id(rng, &ids);
        query[..2].copy_from_slice(&id.to_be_bytes());
        ids.push(id);
        let now = TokioInstant::now();
        if let Err(e) = socket.send(&query).await {
            return Outcome::Error(format!("sending to {}: {e}", spec.target));
        }
        sent_at.push(now);
        stats.wire.udp_queries += 1;
        if send > 0 {
            stats.wire.resends += 1;
        }
        let since_start = now.saturating_duration_since(start).as_nanos() as u64;
        stats.first_send_ns.get_or_insert(since_start);
        stats.last_send_ns = Some(since_start);
        let until = if send + 1 == SENDS_PER_LOOKUP {
            deadline
        } else {
            (now + RESEND_AFTER).min(deadline)
        };
        loop {
            let n = match tokio::time::timeout_at(until, socket.recv(buf)).await {
                Err(_) => break, // this send's wait is over: re-send or give up
                Ok(Err(e)) => {
                    return Outcome::Error(format!("receiving from {}: {e}", spec.target))
                }
                Ok(Ok(n)) => n,
            };
            let Some((rid, tc, rcode)) = read_response(&buf[..n], &query) else {
                stats.wire.stale_answers += 1;
                continue;
            };
            let Some(pos) = ids.iter().position(|&i| i == rid) else {
                // An answer to a lookup this socket already gave up on.
                stats.wire.stale_answers += 1;
                continue;
            };
            stats.wire.responses += 1;
            if pos + 1 != ids.len() {
                stats.wire.late_answers += 1;
            }
            *answered_send = sent_at[pos];
            if !tc {
                return Outcome::Answered(rcode);
            }
            stats.wire.truncated += 1;
            *answered_send = TokioInstant::now();
            return tcp_lookup(spec, &mut query, rng, &ids, stats, deadline).await;
        }
        if TokioInstant::now() >= deadline {
            break;
        }
    }
    Outcome::Timeout
}

/// The same question over TCP (after a TC answer), with a new id, until `deadline`.
async fn tcp_lookup(
    spec: &LoadSpec,
    query: &mut [u8],
    rng: &mut Rng,
    used: &[u16],
    stats: &mut LoadStats,
    deadline: TokioInstant,
) -> Outcome {
    let id = new_id(rng, used);
    query[..2].copy_from_slice(&id.to_be_bytes());
    let exchange = async {
        let mut stream = TcpStream::connect(spec.target).await?;
        stream.set_nodelay(true)?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
        framed.extend_from_slice(query);
        stream.write_all(&framed).await?;
        let len = stream.read_u16().await?;
        let mut resp = vec![0u8; usize::from(len)];
        stream.read_exact(&mut resp).await?;
        std::io::Result::Ok(resp)
    };
    stats.wire.tcp_queries += 1;
    match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => Outcome::Timeout,
        Ok(Err(e)) => Outcome::Error(format!("TCP to {}: {e}", spec.target)),
        Ok(Ok(resp)) => match read_response(&resp, query) {
            Some((rid, _, rcode)) if rid == id => {
                stats.wire.responses += 1;
                Outcome::Answered(rcode)
            }
            _ => Outcome::Error(format!(
                "TCP to {}: an answer to another query",
                spec.target
            )),
        },
    }
}

fn record(
    shared: &Shared,
    local: &mut LoadStats,
    outcome: Outcome,
    t0: TokioInstant,
    answered_send: TokioInstant,
) {
    let p = &shared.progress;
    match outcome {
        Outcome::Answered(rcode) => {
            local.answered += 1;
            p.answered.fetch_add(1, Ordering::Relaxed);
            if rcode == 3 {
                p.nxdomain.fetch_add(1, Ordering::Relaxed);
            }
            local.rcodes.add(rcode);
            let now = TokioInstant::now();
            // Histograms are 40 KB each: one shared pair, not one per worker.
            let mut s = shared.stats.lock().expect("stats lock");
            s.latency.record((now - t0).as_nanos() as u64);
            s.round_trip
                .record(now.saturating_duration_since(answered_send).as_nanos() as u64);
        }
        Outcome::Timeout => {
            local.timeouts += 1;
            p.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        Outcome::Error(e) => {
            local.errors += 1;
            if local.first_error.is_none() {
                local.first_error = Some(e);
            }
        }
        Outcome::Cancelled => local.cancelled += 1,
    }
}

/// Adds a worker's counts to the shared totals.
fn merge(shared: &Shared, l: &LoadStats) {
    let mut s = shared.stats.lock().expect("stats lock");
    s.sent += l.sent;
    s.answered += l.answered;
    s.rcodes.merge(&l.rcodes);
    s.timeouts += l.timeouts;
    s.errors += l.errors;
    s.cancelled += l.cancelled;
    if s.first_error.is_none() {
        s.first_error.clone_from(&l.first_error);
    }
    s.wire.add(&l.wire);
    s.first_send_ns = match (s.first_send_ns, l.first_send_ns) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    s.last_send_ns = s.last_send_ns.max(l.last_send_ns);
}
