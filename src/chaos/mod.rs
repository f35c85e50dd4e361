//! `dnsdoc chaos`: game-day scenarios that induce a DNS fault on purpose and check that
//! the rules fire.
//!
//! A run is: vet the target and the bounds ([`safety`]), plan the scenario
//! ([`scenario`], one file per scenario), with `--verify` start the same capture as
//! `watch` scoped to the scenario's own queries ([`verify`]), apply the fault if any
//! ([`loss`]), send the load ([`load`]), remove the fault, evaluate the rules and print
//! the summary ([`report`]).
//!
//! Exit codes: 0 when the run completed (and, with --verify, every check passed); 1 when
//! a --verify check failed; 130 when Ctrl-C cut it short; the usual codes of
//! [`crate::exit`] for errors.

mod attached;
mod conntrack_race;
mod dga;
mod dns_flood;
mod dns_loss;
mod driver;
pub mod glibc;
pub mod load;
pub mod loss;
pub mod names;
mod nxdomain_storm;
pub mod reconcile;
pub mod registry;
pub mod relay;
pub mod report;
pub mod safety;
pub mod scenario;
mod search_path;
mod skel;
mod truncation;
mod tunnel;
mod upstream_timeout;
mod verify;
mod wire;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use attached::{cgroup_skb_programs, AttachedProgram};

use crate::exit::{self, UsageError};
use crate::host;
use crate::render::Format;
use crate::signals;
use driver::{ClientCgroup, PreparedDriver};
use load::{Load, LoadSpec};
use loss::{LossFault, LossStorage};
use report::{ChaosReport, FaultReport, LoadReport};
use scenario::{Fault, Intensity, Params, QUERY_TIMEOUT};

/// Exit code when a --verify check failed (a paired rule did not fire, or fired during
/// a baseline).
pub const VERIFY_FAILED: i32 = 1;
/// Exit code when Ctrl-C or SIGTERM cut the run short (128 + SIGINT, as shells report
/// it): the summary is printed, but a partial window cannot pass.
pub const INTERRUPTED: i32 = 130;

/// What `dnsdoc chaos` was asked to do (parsed from the command line by `cli`; the
/// flags' help says what each means).
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// List the scenarios instead of running one.
    pub list: bool,
    /// The scenario to run.
    pub induce: Option<String>,
    /// The DNS server under test, as IP:PORT.
    pub target: Option<String>,
    /// upstream-timeout: the server the target forwards to, as IP:PORT.
    pub upstream: Option<String>,
    /// Allow a target outside loopback (with lower limits).
    pub allow_remote: bool,
    /// Allow a target listed in /etc/resolv.conf.
    pub allow_system_resolver: bool,
    /// How long the load (and the fault) lasts.
    pub duration: Duration,
    pub intensity: Intensity,
    /// Lookups per second, overriding the intensity.
    pub qps: Option<u32>,
    /// Lookups in flight, overriding the intensity.
    pub concurrency: Option<u32>,
    /// dns-loss: fraction of packets to drop, overriding the intensity.
    pub loss: Option<f64>,
    /// Cluster domain the scenario's names are built under.
    pub domain: String,
    /// cgroup v2 subtree the fault applies to and --verify watches.
    pub cgroup: Option<PathBuf>,
    /// Capture during the scenario and check the paired rules.
    pub verify: bool,
    /// Run the healthy twin: paired rules must not fire.
    pub baseline: bool,
    /// Extra rule files or directories for --verify.
    pub rules: Vec<PathBuf>,
    /// With --verify: write the snapshot here.
    pub output: Option<PathBuf>,
    /// Do not ask for confirmation.
    pub yes: bool,
    pub format: Format,
    /// Show a live progress line on stderr (only on a terminal).
    pub progress: bool,
}

/// Runs `dnsdoc chaos`.
pub fn run(args: &ChaosOptions) -> Result<i32> {
    // A bad -o is a usage error now, not a failure after the whole game day.
    if let Some(path) = &args.output {
        crate::snapshot::check_output_path(path)?;
    }
    if args.list {
        let mut out = std::io::stdout().lock();
        match args.format {
            Format::Table => write!(out, "{}", report::render_list(registry::registry()))?,
            Format::Json => {
                serde_json::to_writer_pretty(&mut out, &report::list_json(registry::registry()))?;
                writeln!(out)?;
            }
        }
        return Ok(exit::OK);
    }
    let Some(name) = args.induce.as_deref() else {
        return Err(UsageError(format!(
            "nothing to do: pass --list, or --induce NAME with one of {}",
            registry::names().join(", ")
        ))
        .into());
    };
    let scenario = registry::find(name).ok_or_else(|| {
        UsageError(format!(
            "unknown scenario '{name}' (valid: {}; see `dnsdoc chaos --list`)",
            registry::names().join(", ")
        ))
    })?;
    let resolv_conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let target = safety::check_target(
        args.target.as_deref(),
        args.allow_remote,
        args.allow_system_resolver,
        &resolv_conf,
    )?;
    let loopback = target.ip().is_loopback();
    let params = Params {
        intensity: args.intensity,
        qps: args.qps,
        concurrency: args.concurrency,
        loss: args.loss,
        domain: args.domain.clone(),
        baseline: args.baseline,
    };
    let injects_loss = matches!(
        scenario
            .plan(&Params {
                baseline: false,
                ..params.clone()
            })
            .fault,
        Some(Fault::PacketLoss { .. })
    );
    if args.loss.is_some() && !injects_loss {
        return Err(UsageError(format!("--loss only applies to dns-loss, not {name}")).into());
    }
    let silences_upstream = matches!(
        scenario
            .plan(&Params {
                baseline: false,
                ..params.clone()
            })
            .fault,
        Some(Fault::SilentUpstream)
    );
    let upstream = match (&args.upstream, silences_upstream) {
        (Some(_), false) => {
            return Err(UsageError(format!(
                "--upstream only applies to upstream-timeout, not {name}"
            ))
            .into())
        }
        (None, true) => {
            return Err(UsageError(format!(
                "{name} needs --upstream ADDR:PORT: the server the target forwards to \
                 (dnsdoc drops its DNS packets in --cgroup)"
            ))
            .into())
        }
        (Some(u), true) => {
            let u = safety::check_target(
                Some(u),
                args.allow_remote,
                args.allow_system_resolver,
                &resolv_conf,
            )
            .context("--upstream")?;
            if u == target {
                return Err(UsageError(
                    "--upstream is the target itself: name the server the target forwards to"
                        .into(),
                )
                .into());
            }
            Some(u)
        }
        (None, false) => None,
    };
    let mut plan = scenario.plan(&params);
    let glibc = scenario.glibc(&params);
    let limits = safety::Limits::for_target(loopback);
    // Presets are made for loopback; a remote target gets them capped, explicit values
    // above the limits are an error.
    if args.qps.is_none() {
        plan.load.qps = plan.load.qps.min(limits.qps);
    }
    if args.concurrency.is_none() {
        plan.load.concurrency = plan.load.concurrency.min(limits.concurrency);
    }
    safety::check_bounds(args.duration, plan.load.qps, plan.load.concurrency, limits)?;

    // Privileges and the cgroup, before anything is sent.
    let needs_bpf = args.verify || plan.fault.is_some();
    if glibc.is_some() && !needs_bpf {
        // Private mount namespaces and a relay on port 53: root, as for BPF.
        host::check_privileges().context(
            "this scenario's glibc clients need root (unshare -m, mount --bind, port 53)",
        )?;
    }
    let cgroup = if needs_bpf {
        let why = if plan.fault.is_some() {
            "the fault is a BPF program"
        } else {
            "--verify runs the same capture as watch"
        };
        host::check_privileges().context(why)?;
        let cg = host::resolve_cgroup(args.cgroup.as_deref())?;
        // glibc clients get a cgroup of their own below --cgroup; the wire client is
        // dnsdoc itself, which must be inside.
        if args.verify && glibc.is_none() && !verify::self_in_cgroup(&cg) {
            return Err(UsageError(format!(
                "--verify watches dnsdoc's own queries, but dnsdoc is not inside --cgroup {}: \
                 run it inside that cgroup, or leave --cgroup out",
                cg.display()
            ))
            .into());
        }
        Some(cg)
    } else {
        None
    };
    // A bad rule file fails now, not after the load.
    let rules = if args.verify {
        Some(crate::rules::build(&args.rules, &[])?)
    } else {
        None
    };

    let fault_text = match plan.fault {
        Some(Fault::PacketLoss { fraction }) => format!(
            ", dropping {} of DNS packets to and from it",
            crate::render::style::pct(fraction)
        ),
        Some(Fault::SilentUpstream) => format!(
            ", dropping every DNS packet to and from its upstream {}",
            upstream.map_or_else(String::new, |u| u.to_string())
        ),
        None => String::new(),
    };
    let fault_text = match &glibc {
        Some(g) => format!(
            "{fault_text}, with real glibc clients (getent) asking a relay on {}:53{}",
            relay::relay_ip(target),
            if g.drop_pair_sibling {
                " that drops one query of each A/AAAA pair once"
            } else {
                ""
            }
        ),
        None => fault_text,
    };
    let question = format!(
        "dnsdoc chaos: run {}{} against {target} for {} ({} qps cap, {} workers){fault_text}?",
        scenario.name(),
        if args.baseline { " (baseline)" } else { "" },
        humantime::format_duration(args.duration),
        plan.load.qps,
        plan.load.concurrency,
    );
    if !safety::confirm(&question, args.yes) {
        return Err(anyhow::anyhow!(
            "not confirmed: nothing was sent (pass --yes to skip the question)"
        ));
    }
    signals::install().context("installing signal handlers")?;

    let spec = LoadSpec {
        target,
        qps: plan.load.qps,
        concurrency: plan.load.concurrency,
        duration: args.duration,
        query_timeout: QUERY_TIMEOUT,
        names: plan.load.names.clone(),
        seed: seed(),
    };
    let prepared = match glibc {
        None => PreparedDriver::Wire(Load::prepare(spec)?),
        Some(g) => {
            let clients = match (&cgroup, args.verify) {
                (Some(cg), true) => Some(ClientCgroup::create(cg)?),
                _ => None,
            };
            PreparedDriver::glibc(
                g,
                target,
                plan.load.concurrency,
                plan.load.qps,
                args.duration,
                clients,
            )?
        }
    };

    // --verify: the capture first, so it sees the first query. glibc clients are
    // watched in their own cgroup, on the relay they ask.
    let observer = match (&cgroup, args.verify) {
        (Some(cg), true) => Some(match prepared.client_cgroup() {
            Some(clients) => verify::Observer::start_scoped(
                clients,
                prepared.client_target(target),
                args.duration,
                Vec::new(),
            )?,
            None => verify::Observer::start(cg, target, args.duration)?,
        }),
        _ => None,
    };

    let mut storage = LossStorage::default();
    let mut fault = match (plan.fault, &cgroup) {
        (Some(Fault::PacketLoss { fraction }), Some(cg)) => {
            let f = LossFault::attach(target, fraction, cg, &mut storage)?;
            eprintln!(
                "dnsdoc: chaos: fault active: dropping {} of DNS packets to and from {target} in cgroup {}",
                crate::render::style::pct(fraction),
                cg.display()
            );
            Some(f)
        }
        (Some(Fault::SilentUpstream), Some(cg)) => {
            let up = upstream.expect("checked above");
            let f = LossFault::attach(up, 1.0, cg, &mut storage)?;
            eprintln!(
                "dnsdoc: chaos: fault active: dropping every DNS packet to and from {up} (the \
                 target's upstream) in cgroup {}",
                cg.display()
            );
            Some(f)
        }
        _ => None,
    };

    let load = prepared.start()?;
    eprintln!(
        "dnsdoc: chaos: {} against {target} for {} (Ctrl-C stops at once)",
        scenario.name(),
        humantime::format_duration(args.duration)
    );

    let show_progress = args.progress && std::io::stderr().is_terminal();
    let mut last_progress = Instant::now();
    let mut fault_counters = None;
    let mut sending_elapsed = None;
    loop {
        if signals::stop_requested() {
            // Stop the load and remove the fault at once; the summary comes after.
            load.stop();
            if let Some(f) = fault.take() {
                fault_counters = f.counters().ok();
            }
            break;
        }
        if load.sending_done() && sending_elapsed.is_none() {
            sending_elapsed = Some(load.started().elapsed().min(args.duration));
            if let Some(f) = fault.take() {
                fault_counters = f.counters().ok();
            }
        }
        if load.finished() {
            break;
        }
        if let Some(o) = &observer {
            if o.ended_early() {
                // The capture failed: no point in loading the target further.
                load.stop();
                break;
            }
        }
        if show_progress && last_progress.elapsed() >= Duration::from_millis(500) {
            last_progress = Instant::now();
            let (sent, answered, timeouts, nx) = load.counts();
            eprint!(
                "\r\x1b[2K  {:>5.1}s / {}   sent {sent}   answered {answered}   NXDOMAIN {nx}   timeouts {timeouts}   in flight {}",
                load.started().elapsed().as_secs_f64(),
                humantime::format_duration(args.duration),
                load.in_flight()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = sending_elapsed.unwrap_or_else(|| load.started().elapsed().min(args.duration));
    // Normally gone already; on an early exit from the loop, remove it now.
    if let Some(f) = fault.take() {
        fault_counters = f.counters().ok();
    }
    let (stats, client_pids) = load.finish(QUERY_TIMEOUT * 2 + Duration::from_secs(1));
    if show_progress {
        eprint!("\r\x1b[2K");
    }

    let interrupted = signals::stop_requested();
    let mut load_report = LoadReport::new(&plan.load, &stats, elapsed.as_secs_f64());
    if let Some(g) = scenario.glibc(&params) {
        load_report.names = g.describe();
    }
    let (verify, reconciliation) = match observer {
        Some(o) => {
            let snapshot = o.finish()?;
            if let Some(path) = &args.output {
                snapshot
                    .write_atomic(path)
                    .with_context(|| format!("writing snapshot {}", path.display()))?;
                eprintln!("dnsdoc: snapshot written to {}", path.display());
            }
            let (v, r) = verify::verify(
                scenario,
                snapshot,
                rules.as_ref().expect("rules loaded with --verify"),
                args.baseline,
                &load_report,
                interrupted,
                &client_pids,
            );
            (Some(v), Some(r))
        }
        None => (None, None),
    };

    let report = ChaosReport {
        scenario: scenario.name().to_string(),
        baseline: args.baseline,
        target: target.to_string(),
        intensity: args.intensity.as_str().to_string(),
        duration_s: args.duration.as_secs_f64(),
        interrupted,
        load: load_report,
        fault: match (plan.fault, fault_counters, &cgroup) {
            (Some(fault), Some(counters), Some(cg)) => Some(FaultReport {
                fault,
                address: match fault {
                    Fault::SilentUpstream => upstream.unwrap_or(target).to_string(),
                    Fault::PacketLoss { .. } => target.to_string(),
                },
                cgroup: cg.display().to_string(),
                counters,
                matched: counters.matched(),
                dropped: counters.dropped(),
            }),
            _ => None,
        },
        verify,
        reconciliation,
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Table => write!(
            out,
            "{}",
            report::render(&report, crate::render::style::color_stdout())
        )?,
    }
    Ok(match &report.verify {
        _ if report.interrupted => INTERRUPTED,
        Some(v) if !v.passed => VERIFY_FAILED,
        _ => exit::OK,
    })
}

/// A per-run seed, so two runs do not ask for the same random names.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32)
}
