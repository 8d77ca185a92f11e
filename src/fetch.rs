//! The mailbox edge.
use crate::config::Config;
pub async fn check(_config: &Config) -> anyhow::Result<String> {
    anyhow::bail!("todo")
}
