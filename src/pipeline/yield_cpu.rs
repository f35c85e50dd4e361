//! Yielding the CPU to the node's workload. On a node whose DNS server runs flat out,
//! every slice of CPU dnsdoc's analysis takes is a slice the server or its clients wait
//! for: on a 2-core box the analysis (a tenth of a core) cost a saturated dnsmasq 30 %
//! of its throughput at normal priority and about 15 % at SCHED_IDLE (`make bench`).
//!
//! So while the packet rate is high the analysis thread runs at SCHED_IDLE, and the
//! kernel's ring buffer (tens of milliseconds of traffic) absorbs the wait. Two guards
//! keep that from losing records: a watchdog thread, at normal priority, puts the
//! analysis back to normal priority for a while when it has not finished a poll for
//! [`STALL`] (the CPUs had no idle time to give it); and at low rates it stays normal,
//! so it reads /proc while a short-lived client (dig) still exists.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::host::sched::{self, Policy};
use crate::signals::monotonic_ns;

/// Packets per second above which the analysis yields.
pub const IDLE_ABOVE: u64 = 20_000;
/// Packets per second below which it takes normal priority again.
pub const NORMAL_BELOW: u64 = 5_000;
/// The rate is measured over windows this long.
const RATE_WINDOW_NS: u64 = 250_000_000;
/// A poll loop that has not come round for this long is starved (it polls at least
/// every 10 ms when running).
const STALL: Duration = Duration::from_millis(25);
/// How long a starved analysis stays at normal priority before it may yield again.
const BOOST_NS: u64 = 1_000_000_000;

/// The rate rule, apart from threads and clocks so it can be tested as plain logic.
#[derive(Debug, Default)]
pub struct RateRule {
    window_start_ns: u64,
    window_events: u64,
}

impl RateRule {
    /// Counts `events` at `now_ns`; at the end of each window returns the policy the
    /// rate asks for (None: keep the current one).
    pub fn observe(&mut self, now_ns: u64, events: u64) -> Option<Policy> {
        if self.window_start_ns == 0 {
            self.window_start_ns = now_ns;
        }
        self.window_events += events;
        let elapsed = now_ns.saturating_sub(self.window_start_ns);
        if elapsed < RATE_WINDOW_NS {
            return None;
        }
        let rate = self.window_events * 1_000_000_000 / elapsed;
        self.window_start_ns = now_ns;
        self.window_events = 0;
        if rate >= IDLE_ABOVE {
            Some(Policy::Idle)
        } else if rate < NORMAL_BELOW {
            Some(Policy::Normal)
        } else {
            None
        }
    }
}

#[derive(Debug)]
struct State {
    tid: i32,
    policy: Policy,
    heartbeat_ns: u64,
    boosted_until_ns: u64,
    boosts: u64,
}

impl State {
    fn set(&mut self, policy: Policy) {
        if policy != self.policy && sched::set_policy(self.tid, policy).is_ok() {
            self.policy = policy;
        }
    }
}

/// Owned by the live source; yields while the rate is high. Dropping it stops the
/// watchdog and restores normal priority.
pub struct CpuYield {
    rule: RateRule,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    watchdog: Option<JoinHandle<()>>,
}

impl CpuYield {
    /// For the calling thread (the one that will call [`CpuYield::after_poll`]).
    pub fn for_current_thread() -> Self {
        let state = Arc::new(Mutex::new(State {
            tid: sched::current_tid(),
            policy: Policy::Normal,
            heartbeat_ns: monotonic_ns(),
            boosted_until_ns: 0,
            boosts: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("dnsdoc-watchdog".into())
                .spawn(move || watch(&state, &stop))
                .ok()
        };
        CpuYield {
            rule: RateRule::default(),
            state,
            stop,
            watchdog,
        }
    }

    /// Called after each poll with the packets it returned.
    pub fn after_poll(&mut self, events: u64) {
        let now = monotonic_ns();
        let wanted = self.rule.observe(now, events);
        let mut s = self.state.lock().expect("yield state poisoned");
        s.heartbeat_ns = now;
        match wanted {
            Some(Policy::Idle) if now >= s.boosted_until_ns && self.watchdog.is_some() => {
                s.set(Policy::Idle)
            }
            Some(Policy::Normal) => s.set(Policy::Normal),
            _ => {}
        }
    }

    /// How often the watchdog found the analysis starved and raised its priority.
    pub fn boosts(&self) -> u64 {
        self.state.lock().map(|s| s.boosts).unwrap_or(0)
    }
}

impl Drop for CpuYield {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.watchdog.take() {
            let _ = handle.join();
        }
        if let Ok(mut s) = self.state.lock() {
            s.set(Policy::Normal);
        }
    }
}

/// The watchdog loop: puts a starved analysis back to normal priority.
fn watch(state: &Mutex<State>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
        let Ok(mut s) = state.lock() else { return };
        let now = monotonic_ns();
        if s.policy == Policy::Idle && now.saturating_sub(s.heartbeat_ns) > STALL.as_nanos() as u64
        {
            s.set(Policy::Normal);
            s.boosted_until_ns = now + BOOST_NS;
            s.boosts += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn the_rule_yields_only_at_high_rates_and_decides_once_per_window() {
        let mut r = RateRule::default();
        let per_ms = |rate: u64| rate / 1000;
        // Inside the first window nothing is decided, whatever the rate.
        assert_eq!(r.observe(1_000 * MS, per_ms(IDLE_ABOVE * 4)), None);
        let mut now = 1_000 * MS;
        let mut last = None;
        for _ in 0..300 {
            now += MS;
            last = r.observe(now, per_ms(IDLE_ABOVE * 2)).or(last);
        }
        assert_eq!(last, Some(Policy::Idle));
        // Between the two thresholds: keep whatever was chosen.
        let mid = (IDLE_ABOVE + NORMAL_BELOW) / 2;
        for _ in 0..300 {
            now += MS;
            assert_eq!(r.observe(now, per_ms(mid)), None);
        }
        let mut last = None;
        for _ in 0..300 {
            now += MS;
            last = r.observe(now, 0).or(last);
        }
        assert_eq!(last, Some(Policy::Normal));
    }
}
