//! `klachtpost mail list [--unfiled]`: the mail taken in, with what klachtpost decided and
//! why — above all the mail that opened no case, so nothing disappears unseen.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::Config;
use crate::store::Store;

pub async fn list(config: &Config, unfiled: bool, json: bool) -> Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let mails = store.taken_in(unfiled, None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&mails)?);
        return Ok(ExitCode::SUCCESS);
    }
    if mails.is_empty() {
        println!(
            "{}",
            if unfiled {
                "No mail without a case."
            } else {
                "No mail taken in."
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    for m in mails {
        let when = crate::store::parse_ts(&m.received_at)
            .map(|t| {
                t.with_timezone(&config.firm.timezone)
                    .format("%d-%m-%Y %H:%M")
                    .to_string()
            })
            .unwrap_or_else(|_| m.received_at.clone());
        println!(
            "#{:<5} {when}  {:<9} {:<14} {}",
            m.id,
            m.kind,
            m.case.as_deref().unwrap_or("(no case)"),
            m.from_address.as_deref().unwrap_or("(no sender)"),
        );
        println!("       subject: {}", m.subject);
        println!("       why:     {}", m.reason);
        for f in &m.flags {
            println!("       ⚑ {f}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
