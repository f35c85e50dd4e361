//! What a scenario is, and the registry of them. One scenario per file; adding one is
//! one file and one line in [`registry`].

use std::time::Duration;

use clap::ValueEnum;
use serde::Serialize;

use super::names::NameMix;

/// How hard a scenario pushes. Each scenario maps it to concrete numbers (see --list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Intensity {
    Low,
    Medium,
    High,
}

impl Intensity {
    pub fn as_str(self) -> &'static str {
        match self {
            Intensity::Low => "low",
            Intensity::Medium => "medium",
            Intensity::High => "high",
        }
    }
}

/// What the user asked for, validated.
#[derive(Debug, Clone)]
pub struct Params {
    pub intensity: Intensity,
    /// `--qps`, overriding the intensity.
    pub qps: Option<u32>,
    /// `--concurrency`, overriding the intensity.
    pub concurrency: Option<u32>,
    /// `--loss`, overriding the intensity (dns-loss only).
    pub loss: Option<f64>,
    /// The cluster domain names are built under.
    pub domain: String,
    /// Run the healthy twin: same length and shape, no fault.
    pub baseline: bool,
}

/// The shape of the load a scenario sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadShape {
    pub qps: u32,
    pub concurrency: u32,
    pub names: NameMix,
}

/// A fault applied for the duration of the load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// Drop this fraction of DNS packets to and from the target (bpf/loss.bpf.c).
    PacketLoss { fraction: f64 },
    /// Drop every DNS packet to and from the target's upstream (`--upstream`; the same
    /// BPF program), so a forwarding target never gets an answer.
    SilentUpstream,
}

/// What one run does: the load, and the fault if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub load: LoadShape,
    pub fault: Option<Fault>,
}

/// A game-day scenario: something that should make some rules fire.
pub trait Scenario: Sync {
    /// The name given to `--induce`.
    fn name(&self) -> &'static str;
    /// What it does, one sentence.
    fn description(&self) -> &'static str;
    /// The rules that must fire (at WARNING or above) while it runs.
    fn paired_rules(&self) -> &'static [&'static str];
    /// Why these rules and not others: what the scenario really does to a server.
    fn rationale(&self) -> &'static str;
    /// The concrete numbers behind each intensity, for --list.
    fn intensities(&self) -> String;
    /// True when a paired rule passes only if a finding names this process (the
    /// security scenarios: the point is to name who tunnels, not that someone does).
    fn names_process(&self) -> bool {
        false
    }
    /// The plan for these parameters. With `params.baseline`, the healthy twin: the same
    /// duration and client shape, but nothing that should make a paired rule fire.
    fn plan(&self, params: &Params) -> Plan;
    /// Scenarios whose fault lives in the stub resolver itself run real glibc clients
    /// (`getent`) behind a loopback relay instead of the lean load client: how to
    /// configure them. `plan().load` still gives the rate and the workers.
    fn glibc(&self, _params: &Params) -> Option<super::glibc::GlibcPlan> {
        None
    }
}

/// The query timeout of the load's resolvers (per attempt). Short enough that a run's
/// lookups all end soon after its duration, long enough that a loaded loopback server
/// still answers in time.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The (qps, concurrency) of an intensity.
pub fn preset(presets: &[(Intensity, u32, u32)], i: Intensity) -> (u32, u32) {
    presets
        .iter()
        .find(|(p, _, _)| *p == i)
        .map(|(_, q, c)| (*q, *c))
        .expect("every intensity has a preset")
}

/// "low: 5000 qps, 64 workers; medium: ...".
pub fn presets_text(presets: &[(Intensity, u32, u32)], unit: &str) -> String {
    presets
        .iter()
        .map(|(i, q, c)| format!("{}: {q} qps, {c} {unit}", i.as_str()))
        .collect::<Vec<_>>()
        .join("; ")
}
