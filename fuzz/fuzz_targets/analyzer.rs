//! The whole `Analyzer` (owners, TCP reassembly, DNS parsing, matching, aggregation) on
//! a session: ring-buffer records, each prefixed by its little-endian u16 length, as in
//! tests/fuzz-corpus/analyzer. Records that do not decode are skipped (the capture
//! counts them and moves on); ticks, the timeout and the in-flight bound come from a
//! PRNG seeded with the input's hash.
#![no_main]

use dnsdoc::analysis::AnalysisConfig;
use dnsdoc::capture::event::decode;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz/oracles.rs"]
mod oracles;

use oracles::Step;

fuzz_target!(|data: &[u8]| {
    let mut rng = oracles::Rng::new(oracles::hash(data));
    let cfg = AnalysisConfig {
        timeout_ns: [1, 1_000, 1_000_000, 1_000_000_000][rng.index(4)],
        max_pending: [1, 2, 8, 200_000][rng.index(4)],
    };
    let events: Vec<_> = oracles::split_session(data)
        .into_iter()
        .filter_map(|r| decode(r).ok())
        .collect();
    let monotonic = events.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns);
    let mut steps = Vec::new();
    for ev in events {
        if rng.chance(1, 8) {
            steps.push(Step::Tick(ev.ts_ns));
        }
        steps.push(Step::Event(ev));
    }
    let last = steps
        .iter()
        .filter_map(|s| match s {
            Step::Event(e) => Some(e.ts_ns),
            Step::Tick(_) => None,
        })
        .max()
        .unwrap_or(0);
    let finish = last.saturating_add(rng.below(3) * cfg.timeout_ns);
    oracles::check_analyzer(&steps, &cfg, finish, monotonic);
});
