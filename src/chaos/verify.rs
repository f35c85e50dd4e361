//! `--verify`: the same capture as `watch`, scoped to the scenario's own queries, then
//! the rules engine, then a PASS/FAIL per paired rule.
//!
//! [`crate::pipeline::observe`] blocks its thread and ends at its duration or on Ctrl-C,
//! so it runs on a thread of its own while the main thread drives the fault and the
//! load. The load starts only once the capture is attached (seen with BPF_PROG_QUERY),
//! so the first query is observed; the window runs on past the end of the load by the
//! query timeout so that every unanswered query has matured into a timeout.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc::RecvTimeoutError;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::reconcile::{why_not_fired, Reconciliation};
use super::report::{checks, LoadReport, VerifyReport};
use super::scenario::{Scenario, QUERY_TIMEOUT};
use crate::host::ProcFs;
use crate::pipeline::{observe, ObserveOptions};
use crate::rules::{evaluate_all, Finding, RuleSet};
use crate::snapshot::Snapshot;

/// Room before the load starts (setting up the workers) and after it ends (lookups in
/// flight finish or time out, then the matcher declares the timeouts).
const HEAD: Duration = Duration::from_millis(500);
const TAIL: Duration = Duration::from_millis(500);

/// The capture, running on its own thread.
pub struct Observer {
    handle: JoinHandle<Result<Snapshot>>,
}

impl Observer {
    /// The options of the capture for a run against `target` lasting `duration`.
    pub fn options(cgroup: &Path, target: SocketAddr, duration: Duration) -> ObserveOptions {
        ObserveOptions {
            duration: HEAD + duration + QUERY_TIMEOUT + TAIL,
            // What the scenario's resolvers wait before they give up on an attempt.
            timeout: QUERY_TIMEOUT,
            ports: vec![target.port()],
            cgroup: Some(cgroup.to_path_buf()),
            // Only this process's queries count client-side: other clients of the
            // target are not part of the experiment.
            pids: vec![std::process::id()],
            // A flood produces ~4 events per lookup (client and server side).
            ring_buffer_bytes: 64 << 20,
            max_pending: 200_000,
            progress: false,
            attached: None,
            pcap: None,
            local: Vec::new(),
            kube: Default::default(),
        }
    }

    /// Starts the capture and returns once its programs are attached.
    pub fn start(cgroup: &Path, target: SocketAddr, duration: Duration) -> Result<Observer> {
        Self::start_scoped(cgroup, target, duration, vec![std::process::id()])
    }

    /// [`Self::start`] for clients that are not dnsdoc itself: `cgroup` holds only
    /// them, and `pids` (empty: every process in it) are the clients.
    pub fn start_scoped(
        cgroup: &Path,
        target: SocketAddr,
        duration: Duration,
        pids: Vec<u32>,
    ) -> Result<Observer> {
        let (tx, attached) = std::sync::mpsc::channel();
        let opts = ObserveOptions {
            attached: Some(tx),
            pids,
            ..Self::options(cgroup, target, duration)
        };
        let handle = std::thread::Builder::new()
            .name("dnsdoc-observe".into())
            .spawn(move || observe(&opts))
            .context("starting the capture thread")?;
        match attached.recv_timeout(Duration::from_secs(30)) {
            Ok(()) => Ok(Observer { handle }),
            // The sender is gone: the capture failed before attaching; say why.
            Err(RecvTimeoutError::Disconnected) => Err(join(handle)
                .err()
                .unwrap_or_else(|| anyhow!("the capture ended before the scenario began"))),
            Err(RecvTimeoutError::Timeout) => bail!("the capture did not attach within 30s"),
        }
    }

    /// True when the capture ended on its own before the run did (it failed).
    pub fn ended_early(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the end of the window and returns the snapshot.
    pub fn finish(self) -> Result<Snapshot> {
        join(self.handle)
    }
}

fn join(handle: JoinHandle<Result<Snapshot>>) -> Result<Snapshot> {
    handle
        .join()
        .map_err(|_| anyhow!("the capture thread panicked"))?
}

/// True when this process lives in `cgroup` or below it.
pub fn self_in_cgroup(cgroup: &Path) -> bool {
    ProcFs::default().self_in_cgroup(cgroup)
}

/// The findings that count for the checks: for a scenario that must be named (the
/// security ones), only those whose subject names process `pid`, the one that ran
/// the load; otherwise all.
fn own_findings(findings: &[Finding], names_process: bool, pid: u32) -> Vec<Finding> {
    let me = format!("(pid {pid})");
    findings
        .iter()
        .filter(|f| !names_process || f.subject.contains(&me))
        .cloned()
        .collect()
}

/// Evaluates the rules on the snapshot, checks the scenario's paired rules, and
/// reconciles the load's view with the capture's. A run cut short passes no check.
pub fn verify(
    scenario: &dyn Scenario,
    snapshot: Snapshot,
    rules: &RuleSet,
    baseline: bool,
    load: &LoadReport,
    cut_short: bool,
    client_pids: &[u32],
) -> (VerifyReport, Reconciliation) {
    let eval = evaluate_all(&snapshot, rules);
    let reconciliation = Reconciliation::new(load, &snapshot);
    let own = own_findings(&eval.findings, scenario.names_process(), std::process::id());
    let mut checks = checks(scenario.paired_rules(), &own, &eval.checks, baseline);
    for c in &mut checks {
        let verdict = eval.checks.iter().find(|v| v.rule == c.rule);
        if let (false, false, Some(v)) = (c.fired, baseline, verdict) {
            c.why = Some(why_not_fired(v, load, &reconciliation));
        }
        // glibc clients: a paired rule must fire about this run's own processes.
        if c.fired && !baseline && !client_pids.is_empty() {
            let ours = eval
                .findings
                .iter()
                .filter(|f| f.rule == c.rule)
                .any(|f| names_own_process(f, client_pids));
            if !ours {
                c.pass = false;
                c.why = Some(
                    "it fired, but its evidence names none of this run's getent processes"
                        .to_string(),
                );
            }
        }
        if cut_short {
            c.pass = false;
        }
    }
    let report = VerifyReport {
        passed: !cut_short && checks.iter().all(|c| c.pass),
        cut_short,
        checks,
        findings: eval.findings,
        snapshot,
    };
    (report, reconciliation)
}

/// Whether a finding's subject or evidence names one of `pids` ("... (pid 42)").
fn names_own_process(f: &crate::rules::Finding, pids: &[u32]) -> bool {
    let texts = std::iter::once(f.subject.as_str())
        .chain(f.evidence.iter().filter_map(|e| e.subject.as_deref()))
        .chain(f.evidence.iter().map(|e| e.text.as_str()));
    texts.flat_map(pids_named).any(|pid| pids.contains(&pid))
}

/// The pids a text names as "(pid N)".
fn pids_named(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.match_indices("(pid ").filter_map(move |(i, _)| {
        let rest = &text[i + 5..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSet;
    use crate::snapshot::{DomainStats, Snapshot};

    /// A tunnel-shaped domain row of process `pid`.
    fn tunnel_row(pid: u32) -> DomainStats {
        let mut d = DomainStats {
            domain: "exfil.test".into(),
            pid,
            comm: "dnsdoc".into(),
            unique_subdomains: 400,
            unique_subdomain_bytes: 48_000,
            subdomain_entropy: Some(4.6),
            long_queries: 400,
            long_query_ratio: 1.0,
            ..Default::default()
        };
        d.counts.queries = 400;
        d
    }

    #[test]
    fn a_security_check_counts_only_findings_that_name_the_load_process() {
        let mut s = Snapshot::default();
        s.domains.by_domain = vec![tunnel_row(77)];
        let rules = RuleSet::builtin().unwrap();
        let found = evaluate_all(&s, &rules).findings;
        assert!(found.iter().any(|f| f.rule == "dns_tunnel_suspected"));
        // Someone else tunnels: a scenario that must be named does not pass on it.
        let named = |pid| -> Vec<String> {
            own_findings(&found, true, pid)
                .into_iter()
                .map(|f| f.rule)
                .collect()
        };
        assert!(!named(78).contains(&"dns_tunnel_suspected".to_string()));
        assert!(named(77).contains(&"dns_tunnel_suspected".to_string()));
        assert!(named(77).contains(&"dns_exfil_volume".to_string()));
        // Other scenarios judge the node, whoever the subject is.
        assert_eq!(own_findings(&found, false, 78).len(), found.len());
        // And "(pid 7)" is not "(pid 77)".
        assert!(named(7).is_empty());
        assert!(named(78).is_empty(), "{:?}", named(78));
    }

    #[test]
    fn pids_are_read_from_evidence_text() {
        let t = "kube-dns.kube-system. (4.0 per lookup, by getent (pid 7511), getent (pid 7513))";
        assert_eq!(pids_named(t).collect::<Vec<_>>(), [7511, 7513]);
        assert_eq!(pids_named("node").count(), 0);
        assert_eq!(pids_named("process x (pid )").count(), 0);
    }
}
