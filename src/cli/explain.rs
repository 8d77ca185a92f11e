//! `klachtpost explain FILE.eml`: the classifier's decision for one mail, changing nothing.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

pub fn run(_config: &Path, _file: &Path, _json: bool) -> Result<ExitCode> {
    anyhow::bail!("explain is not built yet")
}
