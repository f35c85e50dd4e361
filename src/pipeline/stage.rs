//! The analysis stage both runners share (one window: [`super::run`]; continuous:
//! [`super::continuous`]): poll the source, name processes and unnamed sockets, analyse,
//! and hand completed transactions over.

use std::collections::hash_map::Entry;
use std::time::Duration;

use anyhow::Result;
use foldhash::{HashMap, HashMapExt};

use super::source::EventSource;
use crate::analysis::{AnalysisConfig, Analyzer, Attributed};
use crate::capture::EventBatch;
use crate::host::{ProcFs, ProcessInfo};
use crate::sockets::Unowned;

/// Analysis state of a run: the analyzer, the process names, reused buffers.
pub struct Stage {
    pub analyzer: Analyzer,
    /// Name and cgroup of every process seen (by tgid).
    pub procs: HashMap<u32, ProcessInfo>,
    /// The cgroup each owner's packets carry, for processes gone before /proc was read.
    pub cgroup_ids: HashMap<u32, u64>,
    /// cgroup id -> path, for those looked up (None: the cgroup is gone).
    id_paths: HashMap<u64, Option<String>>,
    /// Transactions completed by the last `poll`, for the caller to drain.
    pub txs: Vec<Attributed>,
    events: EventBatch,
    new_tgids: Vec<u32>,
    unowned: Vec<Unowned>,
    /// Diagnostics for `make bench`-style cost attribution: the probes run and the ring
    /// is drained, but nothing is analysed (the snapshot then counts nothing).
    discard: bool,
}

impl Stage {
    pub fn new(cfg: &AnalysisConfig) -> Stage {
        Stage {
            analyzer: Analyzer::new(cfg),
            procs: HashMap::new(),
            cgroup_ids: HashMap::new(),
            id_paths: HashMap::new(),
            txs: Vec::new(),
            events: EventBatch::default(),
            new_tgids: Vec::new(),
            unowned: Vec::new(),
            discard: std::env::var_os("DNSDOC_DISCARD_EVENTS").is_some(),
        }
    }

    /// Gives the owners of the completed transactions that exited before /proc was read
    /// the cgroup their packets carried: the pod filter needs it for short-lived clients.
    pub fn cgroups_of_exited_owners(&mut self) {
        for tx in &self.txs {
            let Some(tgid) = tx.owner.as_ref().map(|o| o.tgid) else {
                continue;
            };
            if self.procs.get(&tgid).is_some_and(|i| i.cgroup.is_some()) {
                continue;
            }
            let Some(&id) = self.cgroup_ids.get(&tgid) else {
                continue;
            };
            let path = self
                .id_paths
                .entry(id)
                .or_insert_with(|| crate::host::cgroup_paths(&[id]).remove(&id))
                .clone();
            if path.is_some() {
                self.procs.entry(tgid).or_default().cgroup = path;
            }
        }
    }

    /// Waits up to `wait` for events, analyses them and advances the clock; completed
    /// transactions are appended to `self.txs`.
    pub fn poll(&mut self, source: &mut dyn EventSource, wait: Duration) -> Result<()> {
        source.poll(wait, &mut self.events)?;
        self.feed(source);
        Ok(())
    }

    fn feed(&mut self, source: &mut dyn EventSource) {
        // Name the processes the events carry first, while short-lived clients (dig)
        // still exist. Then sockets no kernel hook has named yet: ask the source
        // (sock_diag and /proc) before matching, so a batch's transactions are
        // attributed to them already.
        if self.discard {
            self.events.clear();
            return;
        }
        self.unowned.clear();
        for ev in self.events.events() {
            let tgid = ev.named_owner();
            if tgid != 0 {
                name_process(&mut self.procs, tgid);
                if ev.cgroup_id != 0 {
                    self.cgroup_ids.entry(tgid).or_insert(ev.cgroup_id);
                }
            } else if self.analyzer.owner_unknown(ev) && source.wants_owner(ev.cookie) {
                let key = Unowned {
                    cookie: ev.cookie,
                    protocol: ev.protocol,
                    local: ev.local().into(),
                };
                if !self.unowned.contains(&key) {
                    self.unowned.push(key);
                }
            }
        }
        let now = source.now_ns();
        if !self.unowned.is_empty() {
            for (cookie, tgid) in source.resolve_owners(&self.unowned) {
                if self.analyzer.teach_owner(cookie, tgid, now) {
                    self.new_tgids.push(tgid);
                }
            }
        }
        for ev in self.events.events() {
            self.analyzer
                .on_event(ev, &mut self.new_tgids, &mut self.txs);
            // Owners the events carry were named above; this names those sock_diag taught.
            for tgid in self.new_tgids.drain(..) {
                name_process(&mut self.procs, tgid);
            }
        }
        self.events.clear();
        self.analyzer.tick(source.seen_until_ns(), &mut self.txs);
    }

    /// Bounds the process tables for runs without end: past `max`, only the processes
    /// in `keep` stay. Returns how many names were dropped.
    pub fn trim_procs(&mut self, max: usize, keep: impl Fn(u32) -> bool) -> u64 {
        if self.cgroup_ids.len() > max {
            self.cgroup_ids.retain(|&tgid, _| keep(tgid));
        }
        if self.procs.len() <= max {
            return 0;
        }
        let before = self.procs.len();
        self.procs.retain(|&tgid, _| keep(tgid));
        (before - self.procs.len()) as u64
    }
}

/// Reads a process's name and cgroup from /proc, once per process.
fn name_process(procs: &mut HashMap<u32, ProcessInfo>, tgid: u32) {
    if let Entry::Vacant(slot) = procs.entry(tgid) {
        if let Some(info) = ProcFs::default().process_info(tgid) {
            slot.insert(info);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::matcher::{Outcome, Role};
    use crate::analysis::testutil::{packet, wire};
    use crate::capture::{Direction, PacketEvent};
    use crate::pipeline::source::SourceHealth;

    /// Hands over one scripted batch per poll; its clock runs far ahead of what it has
    /// handed over, as a live source's does while a slow batch is analysed.
    struct Scripted {
        batches: Vec<(Vec<PacketEvent>, u64)>,
        seen_until_ns: u64,
    }

    impl EventSource for Scripted {
        fn poll(&mut self, _wait: Duration, out: &mut EventBatch) -> Result<()> {
            let (events, seen) = self.batches.remove(0);
            events.into_iter().for_each(|e| out.push(e));
            self.seen_until_ns = seen;
            Ok(())
        }
        fn now_ns(&self) -> u64 {
            self.seen_until_ns + 5_000_000_000
        }
        fn seen_until_ns(&self) -> u64 {
            self.seen_until_ns
        }
        fn stop(&mut self) {}
        fn health(&self) -> Result<SourceHealth> {
            Ok(SourceHealth::default())
        }
        fn describe(&self) -> String {
            "scripted".into()
        }
    }

    #[test]
    fn an_answer_still_in_the_source_after_a_slow_batch_is_not_a_timeout() {
        let ms = 1_000_000;
        let query = packet(
            0,
            1,
            Direction::Egress,
            false,
            wire(7, false, 0, false, "a.test", 1),
        );
        let answer = packet(
            2,
            1,
            Direction::Ingress,
            true,
            wire(7, true, 0, false, "a.test", 1),
        );
        let mut source = Scripted {
            batches: vec![(vec![query], ms), (vec![answer], 3 * ms)],
            seen_until_ns: 0,
        };
        let mut stage = Stage::new(&AnalysisConfig {
            timeout_ns: 1_000 * ms,
            max_pending: 100,
        });
        stage.poll(&mut source, Duration::ZERO).unwrap();
        assert!(
            stage.txs.is_empty(),
            "timed out on the clock: {:?}",
            stage.txs
        );
        stage.poll(&mut source, Duration::ZERO).unwrap();
        let [tx] = &stage.txs[..] else {
            panic!("one transaction: {:?}", stage.txs)
        };
        assert_eq!(tx.tx.role, Role::Client);
        assert!(
            matches!(tx.tx.outcome, Outcome::Answered { latency_ns, .. } if latency_ns == 2 * ms)
        );
    }
}
