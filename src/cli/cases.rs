//! `klachtpost cases`.
use crate::config::Config;
use std::process::ExitCode;
pub async fn list(_config: &Config, _json: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("todo")
}
pub async fn show(_config: &Config, _r: &str, _json: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("todo")
}
