//! `klachtpost oauth2 authorize`: printing only; the flow is [`crate::oauth2::device`].

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::config::Config;
use crate::oauth2::device;

pub async fn authorize(config: &Config) -> Result<ExitCode> {
    let Some(tokens) = &config.oauth2 else {
        bail!("there is no [oauth2] section in the config");
    };
    let settings = tokens.settings();
    let pending = device::start(settings).await?;
    let prompt = pending.prompt();
    println!(
        "Open {} in a browser, sign in as the mailbox's account, and enter the code {}",
        prompt.verification_uri, prompt.user_code
    );
    println!(
        "(the code is valid for {} minutes; waiting…)",
        prompt.expires_in.as_secs().div_ceil(60)
    );
    device::finish(settings, pending).await?;
    println!(
        "Signed in. The refresh token is stored in {} (readable by this user only).",
        settings
            .refresh_token_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
