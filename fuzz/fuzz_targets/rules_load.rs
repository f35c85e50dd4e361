//! The rule loader (`RuleSet::load_str`) on arbitrary rule text, alone and as an override
//! of the built-ins, then evaluation of what loaded against the fixture snapshots.
//! Seeds: rules/*.toml and tests/fixtures/bad_rules/*.toml.
#![no_main]

use std::sync::OnceLock;

use dnsdoc::rules::RuleSet;
use dnsdoc::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz/oracles.rs"]
mod oracles;

fn fixtures() -> &'static (RuleSet, Vec<Snapshot>) {
    static F: OnceLock<(RuleSet, Vec<Snapshot>)> = OnceLock::new();
    F.get_or_init(|| {
        let snapshots = [
            include_str!("../../tests/fixtures/snapshots/healthy.json"),
            include_str!("../../tests/fixtures/snapshots/incident.json"),
            include_str!("../../tests/fixtures/snapshots/low_traffic.json"),
            include_str!("../../tests/fixtures/snapshots/empty.json"),
        ]
        .iter()
        .map(|j| serde_json::from_str(j).expect("fixture snapshot"))
        .collect();
        (RuleSet::builtin().expect("built-in rules"), snapshots)
    })
}

fuzz_target!(|data: &[u8]| {
    // Rule files are read as UTF-8 (invalid UTF-8 is rejected before the loader).
    if let Ok(text) = std::str::from_utf8(data) {
        let (builtin, snapshots) = fixtures();
        oracles::check_rules(text, builtin, snapshots);
    }
});
