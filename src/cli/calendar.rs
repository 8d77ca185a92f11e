//! `klachtpost calendar` and `klachtpost deadlines explain`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

pub fn calendar(_config: &Path, _year: i32, _json: bool) -> Result<ExitCode> {
    anyhow::bail!("calendar is not built yet")
}

pub fn deadlines_explain(_config: &Path, _received: &str, _json: bool) -> Result<ExitCode> {
    anyhow::bail!("deadlines explain is not built yet")
}
