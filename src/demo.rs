//! The demo.
pub async fn run(_config: &std::path::Path) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
