//! The loops.
use crate::config::Config;
pub fn init_tracing() {}
pub async fn run(_config: Config, _once: bool) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
