//! One-shot runs of dnsdoc and what dig printed: output, a doctor finding, a status.

use std::process::{Command, Output};

use super::TempDir;

/// Runs the dnsdoc binary with `args`, NO_COLOR set, and returns its output.
pub fn run_dnsdoc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dnsdoc"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run dnsdoc")
}

/// Runs `dnsdoc doctor --format json` on snapshot `s` and returns its finding of `rule`
/// (panics, with the report, when there is none).
pub fn doctor_finding(s: &dnsdoc::snapshot::Snapshot, rule: &str) -> serde_json::Value {
    let dir = TempDir::new("doctor-finding");
    let path = dir.path().join("s.json");
    s.write_atomic(&path).unwrap();
    let o = run_dnsdoc(&[
        "doctor",
        "--snapshot",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .cloned()
        .unwrap_or_else(|| panic!("no {rule} finding: {report:#}"))
}

/// The status dig printed (NOERROR, NXDOMAIN, ...), or None if it got no answer.
pub fn dig_status(out: &Output) -> Option<String> {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap().trim().to_string())
}
