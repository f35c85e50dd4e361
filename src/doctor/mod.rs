//! PLACEHOLDER (replaced by the doctor work of issue 3).
use clap::Args;
#[derive(Debug, Args)]
pub struct DoctorArgs {}
#[derive(Debug, Args)]
pub struct RulesArgs {}
pub fn run(_: &DoctorArgs) -> anyhow::Result<i32> {
    anyhow::bail!("doctor is not available in this build")
}
pub fn run_rules(_: &RulesArgs) -> anyhow::Result<i32> {
    anyhow::bail!("rules is not available in this build")
}
