//! Outages of a channel klachtpost depends on — the mailbox it reads and (issues 9 and 12)
//! the outgoing mail it sends — and telling the partners about them.
//!
//! Every pass of a channel ends in [`succeeded`] or [`failed`]. An outage starts at the
//! first failure after a success. Once it has lasted `alerts.alert_after`, the partners
//! get one mail through the outbox; when the channel works again they get one more. The
//! state is a row per channel (`channel_health`), changed in the same transaction as the
//! notice is queued, so a restart neither repeats nor forgets a notice. Outgoing mail is
//! the exception: its outages are recorded here (by [`crate::outbox`]) but the partners
//! are told through `[outgoing.fallback]`, never through the outbox that is down.
//! [`status`] gathers what `klachtpost status` shows.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::compose::{self, NoticeHead};
use crate::config::Config;
use crate::store::{self, Store, health as table};

/// A channel whose outages are tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The complaints mailbox (IMAP or Maildir): login refused, server unreachable, folder
    /// missing, a pass that failed.
    Mailbox,
    /// Outgoing mail (SMTP, sendmail, file); for issues 9 and 12.
    Outgoing,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Mailbox => "mailbox",
            Channel::Outgoing => "outgoing",
        }
    }

    /// Whether health tells the partners about this channel's outages through the
    /// outbox. Not for outgoing mail: the outbox is what is down, so the outbox tells them
    /// itself through `[outgoing.fallback]`, once across instances with [`claim_alert`].
    fn alerts_by_mail(self) -> bool {
        matches!(self, Channel::Mailbox)
    }
}

/// One channel's stored state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelState {
    pub last_success_at: Option<DateTime<Utc>>,
    /// The first failure after the last success; `None` while the channel works.
    pub failing_since: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// When the partners were told about the current outage.
    pub alerted_at: Option<DateTime<Utc>>,
    /// Messages waiting in the folder at the last look (mailbox only).
    pub backlog: Option<i64>,
}

/// What the partners must be told after a change of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The outage has lasted `alert_after`.
    Outage { since: DateTime<Utc>, error: String },
    /// The channel works again after an outage the partners were told about.
    Recovered { since: DateTime<Utc> },
}

impl ChannelState {
    /// A pass failed at `now`. Returns the outage notice the first time the outage has
    /// lasted `alert_after`, and never again for the same outage.
    pub fn fail(
        &mut self,
        now: DateTime<Utc>,
        error: &str,
        alert_after: chrono::Duration,
    ) -> Option<Notice> {
        let since = *self.failing_since.get_or_insert(now);
        self.last_failure_at = Some(now);
        self.last_error = Some(error.to_string());
        if self.alerted_at.is_none() && now - since >= alert_after {
            self.alerted_at = Some(now);
            return Some(Notice::Outage {
                since,
                error: error.to_string(),
            });
        }
        None
    }

    /// A pass worked at `now`. Ends an outage; returns the all-clear when the partners had
    /// been told about it (an outage shorter than `alert_after` passes silently).
    pub fn succeed(&mut self, now: DateTime<Utc>, backlog: Option<i64>) -> Option<Notice> {
        self.last_success_at = Some(now);
        if backlog.is_some() {
            self.backlog = backlog;
        }
        let since = self.failing_since.take();
        let alerted = self.alerted_at.take();
        match (since, alerted) {
            (Some(since), Some(_)) => Some(Notice::Recovered { since }),
            _ => None,
        }
    }
}

/// Record a failed pass of `channel`; queue the outage notice when it is due. `true` when
/// a notice was queued (the sender should be woken).
pub async fn failed(
    store: &Store,
    config: &Config,
    clock: &dyn Clock,
    channel: Channel,
    error: &str,
) -> Result<bool> {
    // One line, bounded: it goes into a mail and a table.
    let error: String = error.replace(['\r', '\n'], " ").chars().take(500).collect();
    let alert_after = if channel.alerts_by_mail() {
        chrono::Duration::from_std(config.alerts.alert_after).unwrap_or(chrono::Duration::MAX)
    } else {
        chrono::Duration::MAX
    };
    change(store, config, clock, channel, |s, now| {
        s.fail(now, &error, alert_after)
    })
    .await
}

/// Record a pass of `channel` that worked, with the backlog it saw (if it knows one).
/// `true` when the all-clear was queued.
pub async fn succeeded(
    store: &Store,
    config: &Config,
    clock: &dyn Clock,
    channel: Channel,
    backlog: Option<u32>,
) -> Result<bool> {
    change(store, config, clock, channel, |s, now| {
        s.succeed(now, backlog.map(i64::from))
    })
    .await
}

/// Claim telling the partners about the current outage of `channel` another way (the
/// outbox's fallback): `true` for the one instance that is to tell them, `false` when the
/// outage was told already (by this or another instance on the database) or is over. The
/// check and the mark are one write transaction, so instances that find the outage at
/// once tell the partners once. A claim whose telling failed is given back with
/// [`unclaim_alert`].
pub async fn claim_alert(store: &Store, now: DateTime<Utc>, channel: Channel) -> Result<bool> {
    let mut tx = store.begin().await?;
    let mut state = table::channel_state(&mut tx, channel.as_str()).await?;
    if state.failing_since.is_none() || state.alerted_at.is_some() {
        tx.rollback()
            .await
            .context("cannot read the channel state")?;
        return Ok(false);
    }
    state.alerted_at = Some(now);
    table::set_channel_state(&mut tx, channel.as_str(), &state, now).await?;
    tx.commit()
        .await
        .context("cannot record the channel state")?;
    Ok(true)
}

/// The partners could not be told after [`claim_alert`]: the next try may tell them.
pub async fn unclaim_alert(store: &Store, now: DateTime<Utc>, channel: Channel) -> Result<()> {
    let mut tx = store.begin().await?;
    let mut state = table::channel_state(&mut tx, channel.as_str()).await?;
    state.alerted_at = None;
    table::set_channel_state(&mut tx, channel.as_str(), &state, now).await?;
    tx.commit()
        .await
        .context("cannot record the channel state")?;
    Ok(())
}

async fn change(
    store: &Store,
    config: &Config,
    clock: &dyn Clock,
    channel: Channel,
    step: impl FnOnce(&mut ChannelState, DateTime<Utc>) -> Option<Notice>,
) -> Result<bool> {
    let now = clock.now();
    let mut tx = store.begin().await?;
    let mut state = table::channel_state(&mut tx, channel.as_str()).await?;
    let notice = step(&mut state, now).filter(|_| channel.alerts_by_mail());
    table::set_channel_state(&mut tx, channel.as_str(), &state, now).await?;
    if let Some(notice) = &notice {
        let partners: Vec<&str> = config
            .firm
            .partners
            .iter()
            .map(|p| p.email.as_str())
            .collect();
        let (since, error, recovered) = match notice {
            Notice::Outage { since, error } => (*since, error.as_str(), false),
            Notice::Recovered { since } => (*since, "", true),
        };
        let templates = config.templates.load()?;
        let lang = config.templates.language.internal();
        let tz = config.firm.timezone;
        let out = compose::notice_from_template(
            &templates,
            "channel_notice",
            lang,
            &NoticeHead {
                firm_name: &config.firm.name,
                firm_domain: config.firm.domain(),
                from: &config.outgoing.from,
                to: &partners,
                reference: channel.as_str(),
                now,
            },
            minijinja::context! {
                channel => channel.as_str(),
                since => compose::format_datetime(since, tz, lang),
                error,
                recovered,
                back_at => compose::format_datetime(now, tz, lang),
            },
        )
        .context("cannot compose the outage notice")?;
        let recipients: Vec<String> = partners.iter().map(|p| p.to_string()).collect();
        store::queue_outgoing_to_all(
            &mut tx,
            None,
            "notice",
            Some("klachtpost"),
            &config.outgoing.from,
            &recipients,
            &out,
            if recovered {
                "channel recovered"
            } else {
                "channel outage"
            },
            now,
        )
        .await?;
    }
    tx.commit()
        .await
        .context("cannot record the channel state")?;
    let queued = notice.is_some();
    match notice {
        Some(Notice::Outage { since, .. }) => tracing::error!(
            event = "health.outage_reported",
            channel = channel.as_str(),
            since = %since,
            "the channel has been failing for longer than alerts.alert_after; the partners are told"
        ),
        Some(Notice::Recovered { since }) => tracing::info!(
            event = "health.recovery_reported",
            channel = channel.as_str(),
            since = %since,
            "the channel works again; the partners are told"
        ),
        None => {}
    }
    Ok(queued)
}

/// What `klachtpost status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Every channel seen so far, by name (`mailbox`, `outgoing`).
    pub channels: Vec<ChannelStatus>,
    /// Outbox rows waiting to be sent (`queued`) and given up on (`failed`).
    pub outbox_queued: i64,
    pub outbox_failed: i64,
    /// Mails waiting in quarantine (`klachtpost quarantine list`).
    pub quarantined: i64,
    /// Which instance watches which mailbox, and until when ([`crate::lease`]).
    pub mailboxes: Vec<crate::lease::MailboxHolder>,
    /// The instances seen on the database (alive or not long gone).
    pub instances: Vec<crate::lease::InstanceSeen>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelStatus {
    pub channel: String,
    #[serde(flatten)]
    pub state: ChannelState,
}

/// Gather the status from the store, now.
pub async fn status(store: &Store) -> Result<Status> {
    status_at(store, crate::clock::SystemClock.now()).await
}

/// Gather the status from the store at `now`.
pub async fn status_at(store: &Store, now: DateTime<Utc>) -> Result<Status> {
    let channels = store
        .channel_states()
        .await?
        .into_iter()
        .map(|(channel, state)| ChannelStatus { channel, state })
        .collect();
    let counts = store.outbox_counts().await?;
    let (mailboxes, instances) = crate::lease::holders(store, now).await?;
    let count = |status: &str| {
        counts
            .iter()
            .find(|(s, _)| s == status)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    Ok(Status {
        channels,
        outbox_queued: count("queued"),
        outbox_failed: count("failed"),
        quarantined: store.quarantine_open_count().await?,
        mailboxes,
        instances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap() + Duration::minutes(min)
    }

    #[test]
    fn one_alert_per_outage_and_one_all_clear() {
        let after = Duration::minutes(30);
        let mut s = ChannelState::default();
        assert_eq!(s.succeed(t(0), Some(3)), None);
        assert_eq!(s.fail(t(1), "refused", after), None);
        assert_eq!(s.fail(t(20), "refused", after), None);
        assert_eq!(
            s.fail(t(31), "unreachable", after),
            Some(Notice::Outage {
                since: t(1),
                error: "unreachable".into()
            })
        );
        // Never twice for the same outage, however long it lasts.
        for m in 32..200 {
            assert_eq!(s.fail(t(m), "unreachable", after), None);
        }
        assert_eq!(
            s.succeed(t(200), None),
            Some(Notice::Recovered { since: t(1) })
        );
        assert_eq!(s.failing_since, None);
        assert_eq!(s.backlog, Some(3), "an unknown backlog keeps the last one");
        // Healthy again: further successes say nothing.
        assert_eq!(s.succeed(t(201), Some(0)), None);
    }

    #[test]
    fn the_all_clear_comes_from_the_template_in_both_languages() {
        let set = compose::TemplateSet::builtin().unwrap();
        for (lang, subject, words) in [
            (
                compose::Lang::Nl,
                "klachtpost: de klachtenmailbox werkt weer",
                "De klachtenmailbox werkt weer sinds",
            ),
            (
                compose::Lang::En,
                "klachtpost: the complaints mailbox works again",
                "The complaints mailbox has worked again since",
            ),
        ] {
            let out = compose::notice_from_template(
                &set,
                "channel_notice",
                lang,
                &NoticeHead {
                    firm_name: "Adviesbureau Voorbeeld",
                    firm_domain: "voorbeeld.nl",
                    from: "klachten@voorbeeld.nl",
                    to: &["anna@voorbeeld.nl", "piet@voorbeeld.nl"],
                    reference: "mailbox",
                    now: t(90),
                },
                minijinja::context! {
                    channel => "mailbox",
                    since => "S",
                    error => "",
                    recovered => true,
                    back_at => "B",
                },
            )
            .unwrap();
            assert_eq!(out.subject, subject);
            assert!(out.text.contains(words), "{}", out.text);
            assert!(
                out.text.contains("(storing sinds S)") || out.text.contains("(outage since S)")
            );
            let parsed = crate::parse::parse(&out.raw);
            assert_eq!(parsed.header("Auto-Submitted"), Some("auto-generated"));
            let raw = String::from_utf8_lossy(&out.raw);
            assert!(raw.contains("anna@voorbeeld.nl") && raw.contains("piet@voorbeeld.nl"));
        }
    }

    #[test]
    fn a_short_outage_passes_silently() {
        let after = Duration::minutes(30);
        let mut s = ChannelState::default();
        assert_eq!(s.fail(t(0), "timeout", after), None);
        assert_eq!(s.fail(t(29), "timeout", after), None);
        assert_eq!(s.succeed(t(29), Some(0)), None);
        // A new outage counts from its own start.
        assert_eq!(s.fail(t(40), "timeout", after), None);
        assert_eq!(s.fail(t(69), "timeout", after), None);
        assert!(s.fail(t(70), "timeout", after).is_some());
    }
}
