//! `klachtpost demo`: the whole flow in seconds, against the embedded default (a local
//! Maildir and a folder of outgoing .eml files). It drops a few realistic mails into the
//! mailbox — two complaints (Dutch and English) and an out-of-office reply — takes them
//! in, sends the acknowledgements, then has the first complainant answer the
//! acknowledgement, and prints what happened.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, Utc};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Mailbox as MailboxConfig, Transport};
use crate::daemon::intake_pass;
use crate::fetch::Mailbox;
use crate::intake::Pipeline;
use crate::outbox;
use crate::send::Sender;
use crate::store::Store;

pub async fn run(config_path: &Path) -> Result<()> {
    let config = Config::load(config_path)?;
    let (MailboxConfig::Maildir { path: maildir }, Transport::File { dir: outdir }) =
        (&config.mailbox, &config.outgoing.transport)
    else {
        bail!(
            "the demo runs on the embedded default (mailbox.kind = \"maildir\", outgoing.kind = \"file\"); {} points at real servers",
            config_path.display()
        );
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Store::open(&config.database_url).await?;
    let sender = Sender::from_config(&config)?;
    let pipeline = Pipeline::new(&config, &store, clock.as_ref())?;
    let mut mailbox = Mailbox::open(&config).await?;
    let now = clock.now();
    let domain = config.firm.domain().to_string();
    let to = config.firm.address.clone();

    println!(
        "klachtpost demo — mailbox {}, outbox {}\n",
        maildir.display(),
        outdir.display()
    );
    println!("1. Three mails arrive in the complaints mailbox:");
    let stamp = now.timestamp_nanos_opt().unwrap_or_default();
    let jan_id = format!("demo-{stamp}-1@client-example.nl");
    let mails = [
        (
            "a complaint in Dutch",
            format!(
                "From: Jan de Vries <jan.devries@client-example.nl>\r\nTo: {to}\r\nSubject: Klacht over de training van 12 november\r\nDate: {}\r\nMessage-ID: <{jan_id}>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGeachte heer, mevrouw,\r\n\r\nDe training die wij op 12 november bij u volgden, begon een uur te laat en de\r\nbeloofde cursusmap is nooit gekomen. Ik verzoek u om een reactie.\r\n\r\nMet vriendelijke groet,\r\nJan de Vries\r\n",
                rfc2822(now - Duration::minutes(12))
            ),
        ),
        (
            "a complaint in English",
            format!(
                "From: \"Sarah Miller\" <s.miller@client-example.com>\r\nTo: {to}\r\nSubject: Invoice does not match the quote\r\nDate: {}\r\nMessage-ID: <demo-{stamp}-2@client-example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nYour invoice for the advisory project is 20% above the quote we signed.\r\nI would like this corrected.\r\n\r\nRegards,\r\nSarah Miller\r\n",
                rfc2822(now - Duration::minutes(9))
            ),
        ),
        (
            "an out-of-office reply",
            format!(
                "From: Piet Jansen <piet@supplier-example.nl>\r\nTo: {to}\r\nSubject: Afwezig: uw bericht\r\nDate: {}\r\nMessage-ID: <demo-{stamp}-3@supplier-example.nl>\r\nAuto-Submitted: auto-replied\r\n\r\nIk ben afwezig tot maandag.\r\n",
                rfc2822(now - Duration::minutes(5))
            ),
        ),
    ];
    for (i, (what, raw)) in mails.iter().enumerate() {
        deliver(maildir, &format!("{stamp}.demo{i}"), raw.as_bytes())?;
        println!("   - {what}");
    }

    println!("\n2. klachtpost takes them in and sends the acknowledgements:");
    intake_pass(&mut mailbox, &pipeline).await?;
    let drained = outbox::drain_once(&store, &sender, clock.as_ref(), &config).await?;
    println!(
        "   {} acknowledgement(s) written to {}",
        drained.sent,
        outdir.display()
    );

    // The Dutch complainant answers the acknowledgement.
    let cases = store.list_cases().await?;
    let jan_case = cases
        .iter()
        .find(|c| c.complainant_address.as_deref() == Some("jan.devries@client-example.nl"))
        .context("the demo complaint did not open a case")?;
    let detail = store
        .case(&jan_case.reference)
        .await?
        .context("case vanished")?;
    let ack = detail
        .messages
        .iter()
        .find(|m| m.kind == "acknowledgement")
        .context("no acknowledgement on the demo case")?;
    let ack_id = ack.message_id.clone().unwrap_or_default();
    let reply = format!(
        "From: Jan de Vries <jan.devries@client-example.nl>\r\nTo: {to}\r\nSubject: Re: {}\r\nDate: {}\r\nMessage-ID: <demo-{stamp}-4@client-example.nl>\r\nIn-Reply-To: <{ack_id}>\r\nReferences: <{jan_id}> <{ack_id}>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nDank u. Ik ben bereikbaar op 06-12345678.\r\n\r\nOp {} schreef {}:\r\n> Wij hebben uw klacht ontvangen.\r\n",
        ack.subject,
        rfc2822(clock.now()),
        rfc2822(clock.now()),
        config.firm.name
    );
    deliver(maildir, &format!("{stamp}.demo4"), reply.as_bytes())?;
    println!("\n3. Jan de Vries answers the acknowledgement; it is threaded into his case:");
    intake_pass(&mut mailbox, &pipeline).await?;
    outbox::drain_once(&store, &sender, clock.as_ref(), &config).await?;
    let _ = &domain;

    println!("\n4. The register now holds:\n");
    for c in store.list_cases().await? {
        let detail = store.case(&c.reference).await?.context("case vanished")?;
        println!(
            "   {}  {:<10} {} <{}>  partner {}",
            c.reference,
            c.status,
            c.complainant_name.as_deref().unwrap_or("-"),
            c.complainant_address.as_deref().unwrap_or("-"),
            c.partner_name
        );
        println!("      subject: {}", c.subject);
        println!(
            "      acknowledge by {}, inform by {}, settle by {}",
            local(&c.ack_due_at, &config),
            local(&c.response_due_at, &config),
            local(&c.resolution_due_at, &config)
        );
        for m in &detail.messages {
            println!(
                "      {} {:<15} {}{}",
                if m.direction == "inbound" {
                    "←"
                } else {
                    "→"
                },
                m.kind,
                m.subject,
                m.delivery
                    .as_deref()
                    .map(|d| format!("  [{d}]"))
                    .unwrap_or_default()
            );
        }
        println!();
    }
    println!("   The out-of-office reply opened no case and got no acknowledgement.\n");

    let mut files: Vec<_> = std::fs::read_dir(outdir)
        .with_context(|| format!("cannot list {}", outdir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    if let Some(first) = files
        .iter()
        .find(|p| p.to_string_lossy().contains(&jan_case.reference))
    {
        println!(
            "5. The acknowledgement Jan de Vries received ({}):\n",
            first.display()
        );
        let raw = std::fs::read(first)?;
        let parsed = crate::parse::parse(&raw);
        for h in [
            "From",
            "To",
            "Subject",
            "Message-ID",
            "In-Reply-To",
            "Auto-Submitted",
        ] {
            if let Some(v) = parsed.header(h) {
                println!("   {h}: {v}");
            }
        }
        println!();
        for line in parsed.text.lines() {
            println!("   | {line}");
        }
    }
    println!(
        "\nSee a case with:  klachtpost cases show {} --config {}",
        jan_case.reference,
        config_path.display()
    );
    mailbox.close().await;
    Ok(())
}

/// Deliver into a Maildir the Maildir way: write in tmp/, rename into new/.
fn deliver(maildir: &Path, name: &str, raw: &[u8]) -> Result<()> {
    let tmp = maildir.join("tmp").join(name);
    std::fs::write(&tmp, raw).with_context(|| format!("cannot write {}", tmp.display()))?;
    let new = maildir.join("new").join(name);
    std::fs::rename(&tmp, &new).with_context(|| format!("cannot move {} into new/", tmp.display()))
}

fn rfc2822(t: DateTime<Utc>) -> String {
    t.to_rfc2822()
}

fn local(stored: &str, config: &Config) -> String {
    crate::store::parse_ts(stored)
        .map(|t| {
            t.with_timezone(&config.firm.timezone)
                .format("%a %d %b %Y %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| stored.to_string())
}
