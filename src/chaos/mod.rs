//! PLACEHOLDER (replaced by the chaos work of issue 4).
use clap::Args;
#[derive(Debug, Args)]
pub struct ChaosArgs {}
pub fn run(_: &ChaosArgs) -> anyhow::Result<i32> {
    anyhow::bail!("chaos is not available in this build")
}
