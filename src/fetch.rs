//! The mailbox edge: what is new, its raw bytes and when the firm received it; and, once
//! intake has stored a message, moving it out of the way.
//!
//! Two kinds, one shape ([`Mailbox`]):
//! - IMAP (async-imap over rustls, implicit TLS or STARTTLS, or plain on loopback). New mail
//!   is found by UID above the stored checkpoint (RFC 3501 §2.3.1.1), never by `\Seen`:
//!   people open the shared mailbox in Outlook. Bodies are fetched with `BODY.PEEK[]` so
//!   fetching marks nothing read. A backlog comes in batches: RFC822.SIZE first, then one
//!   FETCH by UID ranges for up to [`BATCH_BYTES`] (a larger mail alone, in pieces). A
//!   stored batch is moved to `processed_folder` by one UID MOVE of its UID set (RFC 6851;
//!   where MOVE is missing COPY + `\Deleted` + `UID EXPUNGE` of those UIDs only, never a
//!   plain EXPUNGE), created if needed. The receipt time is the server's
//!   INTERNALDATE. No step can hang: the connection has TCP keepalive and an inactivity
//!   limit (`[mailbox] timeout_secs`), and IDLE is re-issued every [`IDLE_RENEW`] at most
//!   ([`stream`]). The mailbox key (checkpoint and `source_key`) is
//!   `imap:<user>/<folder>`: the host name and port used to reach the server are not part
//!   of it, so reaching the same server another way fetches nothing twice.
//! - Maildir (the embedded default): `new/` holds what is unprocessed, a stored message is
//!   renamed into `cur/`. The receipt time is the file's modification time.
//!
//! A mail intake could not take in is moved to `quarantine_folder` instead (IMAP: a folder,
//! created if missing; Maildir: the Maildir++ subfolder `.<name>/cur`).

pub mod stream;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use async_imap::Session;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

pub use stream::ImapStream;

use crate::config::{Auth, Config, Mailbox as MailboxConfig, Security, ServerSettings};
use crate::store::Store;

/// How many bytes of mail one batch holds at most (RFC822.SIZE, asked for first), bounding
/// memory on a large backlog: a mail larger than this is fetched, and taken in, alone.
pub const BATCH_BYTES: u64 = 4 * 1024 * 1024;
/// The longest one IDLE lasts before it is ended and issued again: servers may drop an
/// idling client after 30 minutes (RFC 2177 §3 asks clients to re-issue within 29).
pub const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);
const _: () = assert!(
    IDLE_RENEW.as_secs() < 29 * 60,
    "RFC 2177: re-issue within 29 min"
);

/// One fetched message.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Stable identity of the message in its mailbox, for idempotent intake.
    pub source_key: String,
    pub raw: Vec<u8>,
    /// When the firm received it (INTERNALDATE, file time).
    pub received_at: DateTime<Utc>,
    /// Set when `received_at` is a fallback (no INTERNALDATE): what was used instead, for
    /// the message's flags and the case's history.
    pub received_note: Option<String>,
    handle: Handle,
}

/// Where a handled mail goes in the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Taken in: the processed folder (Maildir: `cur/`).
    Processed,
    /// In quarantine: the quarantine folder.
    Quarantine,
}

#[derive(Debug, Clone)]
enum Handle {
    Uid(u32),
    File(PathBuf),
}

/// A connected mailbox.
pub enum Mailbox {
    Imap(Box<ImapMailbox>),
    Maildir(MaildirMailbox),
}

impl Mailbox {
    /// Connect (IMAP: log in and select the folder) or open the Maildir.
    pub async fn open(config: &Config) -> Result<Mailbox> {
        match &config.mailbox {
            MailboxConfig::Imap {
                server,
                folder,
                processed_folder,
                poll_interval_secs,
                ..
            } => Ok(Mailbox::Imap(Box::new(
                ImapMailbox::connect(
                    server,
                    folder,
                    processed_folder,
                    &config.quarantine_folder,
                    *poll_interval_secs,
                )
                .await?,
            ))),
            MailboxConfig::Maildir { path } => Ok(Mailbox::Maildir(MaildirMailbox::open_with(
                path,
                &config.quarantine_folder,
            )?)),
        }
    }

    /// New messages since the checkpoint, at most `limit`, less those `in_flight` (handed
    /// out before, taken in, not yet moved: IMAP looks above the highest of their UIDs,
    /// Maildir skips their files). `now` bounds a receipt time that has to come from the
    /// Date header.
    pub async fn fetch_new(
        &mut self,
        store: &Store,
        limit: usize,
        now: DateTime<Utc>,
        in_flight: &[&Fetched],
    ) -> Result<Vec<Fetched>> {
        match self {
            Mailbox::Imap(m) => {
                let above = in_flight
                    .iter()
                    .filter_map(|f| match f.handle {
                        Handle::Uid(uid) => Some(uid),
                        Handle::File(_) => None,
                    })
                    .max()
                    .unwrap_or(0);
                m.fetch_new(store, limit, now, above).await
            }
            Mailbox::Maildir(m) => {
                let skip: HashSet<&Path> = in_flight
                    .iter()
                    .filter_map(|f| match &f.handle {
                        Handle::File(path) => Some(path.as_path()),
                        Handle::Uid(_) => None,
                    })
                    .collect();
                m.fetch_new(limit, &skip)
            }
        }
    }

    /// How many messages were waiting in the folder at the last look, less those handed
    /// out since (`None` before the first look).
    pub fn waiting(&self) -> Option<u32> {
        match self {
            Mailbox::Imap(m) => m.waiting,
            Mailbox::Maildir(m) => m.waiting,
        }
    }

    /// The message is stored: move it away and advance the checkpoint.
    pub async fn processed(
        &mut self,
        store: &Store,
        fetched: &Fetched,
        now: DateTime<Utc>,
    ) -> Result<()> {
        match self {
            Mailbox::Imap(m) => m.processed(store, fetched, now).await,
            Mailbox::Maildir(m) => m.processed(fetched),
        }
    }

    /// A batch is stored (durably: [`Store::batch_durable`]): move each mail to its
    /// destination (IMAP: one UID MOVE per destination). One result per mail, in order; a
    /// failed move leaves the mail in the folder. The store is not touched (intake's
    /// transaction may be open meanwhile): [`Mailbox::save_checkpoint`] follows.
    pub async fn move_batch(&mut self, batch: &[(&Fetched, Destination)]) -> Vec<Result<()>> {
        match self {
            Mailbox::Imap(m) => m.move_batch(batch).await,
            Mailbox::Maildir(m) => batch
                .iter()
                .map(|(f, d)| match d {
                    Destination::Processed => m.processed(f),
                    Destination::Quarantine => m.quarantined(f),
                })
                .collect(),
        }
    }

    /// Store the checkpoint past every batch moved (IMAP: the highest UID; its mails must
    /// not be fetched again, also where a move failed). Maildir has none: a stored message
    /// has left `new/`, or is known as a duplicate.
    pub async fn save_checkpoint(&self, store: &Store, now: DateTime<Utc>) -> Result<()> {
        match self {
            Mailbox::Imap(m) => {
                store
                    .set_checkpoint(&m.key, m.uidvalidity, m.last_uid, now)
                    .await?;
                Ok(())
            }
            Mailbox::Maildir(_) => Ok(()),
        }
    }

    /// The checkpoint key of the mailbox (`imap:<user>/<folder>`, `maildir:<path>`).
    pub fn key(&self) -> String {
        match self {
            Mailbox::Imap(m) => m.key.clone(),
            Mailbox::Maildir(m) => format!("maildir:{}", m.root.display()),
        }
    }

    /// The message is in quarantine (stored raw): move it to the quarantine folder and
    /// advance the checkpoint.
    pub async fn quarantined(
        &mut self,
        store: &Store,
        fetched: &Fetched,
        now: DateTime<Utc>,
    ) -> Result<()> {
        match self {
            Mailbox::Imap(m) => {
                let target = m.quarantine_folder.clone();
                m.move_to(store, fetched, &target, now).await
            }
            Mailbox::Maildir(m) => m.quarantined(fetched),
        }
    }

    /// Wait until new mail may be there (IMAP IDLE, or a poll interval), at most `max`.
    pub async fn wait(&mut self, max: Duration) -> Result<()> {
        match self {
            Mailbox::Imap(m) => m.wait(max).await,
            Mailbox::Maildir(_) => {
                tokio::time::sleep(max.min(Duration::from_secs(2))).await;
                Ok(())
            }
        }
    }

    /// Log out politely.
    pub async fn close(self) {
        if let Mailbox::Imap(m) = self {
            m.logout().await;
        }
    }
}

/// `check-config`: connect and log in, say what was found.
pub async fn check(config: &Config) -> Result<String> {
    match &config.mailbox {
        MailboxConfig::Maildir { path } => {
            let m = MaildirMailbox::open(path)?;
            Ok(format!(
                "Maildir {} is usable ({} new message(s))",
                path.display(),
                m.list_new()?.len()
            ))
        }
        MailboxConfig::Imap {
            server,
            folder,
            processed_folder,
            poll_interval_secs,
            ..
        } => {
            let mut m = ImapMailbox::connect(
                server,
                folder,
                processed_folder,
                &config.quarantine_folder,
                *poll_interval_secs,
            )
            .await?;
            let what = format!(
                "logged in to {}:{} as {}, folder {} has {} message(s){}",
                server.host,
                server.port,
                server.username.as_deref().unwrap_or_default(),
                folder,
                m.exists,
                if m.has_idle { ", IDLE supported" } else { "" }
            );
            m.session_mut()?
                .noop()
                .await
                .context("cannot talk to the IMAP server")?;
            Box::new(m).logout().await;
            Ok(what)
        }
    }
}

// ---- Maildir ---------------------------------------------------------------------------

/// A local Maildir: `new/` is the inbox, `cur/` the processed folder, the Maildir++
/// subfolder `.Quarantine/` (by default) the quarantine.
pub struct MaildirMailbox {
    root: PathBuf,
    waiting: Option<u32>,
    quarantine: PathBuf,
}

impl MaildirMailbox {
    /// Open, creating `new/ cur/ tmp/` if missing; quarantine in `.Quarantine/`.
    pub fn open(root: &Path) -> Result<MaildirMailbox> {
        Self::open_with(root, "Quarantine")
    }

    /// Open, creating `new/ cur/ tmp/` and the quarantine subfolder `.<quarantine>/` with
    /// its own `new/ cur/ tmp/` if missing.
    pub fn open_with(root: &Path, quarantine: &str) -> Result<MaildirMailbox> {
        let quarantine = root.join(format!(".{quarantine}"));
        for dir in [root, quarantine.as_path()] {
            for sub in ["new", "cur", "tmp"] {
                // Raw mail is confidential: folders klachtpost creates are owner-only.
                crate::store::create_private_dir(&dir.join(sub)).with_context(|| {
                    format!(
                        "cannot create the Maildir folder {}",
                        dir.join(sub).display()
                    )
                })?;
            }
        }
        Ok(MaildirMailbox {
            root: root.to_path_buf(),
            waiting: None,
            quarantine,
        })
    }

    fn list_new(&self) -> Result<Vec<PathBuf>> {
        let dir = self.root.join("new");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| {
                let t = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (t, e.path())
            })
            .collect();
        files.sort();
        Ok(files.into_iter().map(|(_, p)| p).collect())
    }

    fn fetch_new(&mut self, limit: usize, skip: &HashSet<&Path>) -> Result<Vec<Fetched>> {
        let mut out = Vec::new();
        let mut new = self.list_new()?;
        new.retain(|path| !skip.contains(path.as_path()));
        let found = new.len();
        let mut bytes = 0u64;
        for path in new.into_iter().take(limit) {
            // As for IMAP: at most BATCH_BYTES a batch, a larger mail alone.
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if !out.is_empty() && bytes + size > BATCH_BYTES {
                break;
            }
            bytes += size;
            let raw =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .with_context(|| format!("cannot read the time of {}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let unique = name.split(':').next().unwrap_or(&name).to_string();
            out.push(Fetched {
                source_key: format!("maildir:{unique}"),
                raw,
                received_at: DateTime::<Utc>::from(modified),
                received_note: None,
                handle: Handle::File(path),
            });
        }
        self.waiting = Some(u32::try_from(found.saturating_sub(out.len())).unwrap_or(u32::MAX));
        Ok(out)
    }

    fn processed(&mut self, fetched: &Fetched) -> Result<()> {
        let cur = self.root.join("cur");
        Self::move_to(fetched, &cur)
    }

    fn quarantined(&mut self, fetched: &Fetched) -> Result<()> {
        let cur = self.quarantine.join("cur");
        Self::move_to(fetched, &cur)
    }

    fn move_to(fetched: &Fetched, cur: &Path) -> Result<()> {
        let Handle::File(path) = &fetched.handle else {
            bail!("a Maildir message without a file");
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let unique = name.split(':').next().unwrap_or(&name);
        let target = cur.join(format!("{unique}:2,"));
        std::fs::rename(path, &target)
            .with_context(|| format!("cannot move {} to {}", path.display(), target.display()))
    }
}

// ---- IMAP ------------------------------------------------------------------------------

/// Connect and log in to an IMAP server as configured.
pub async fn login(server: &ServerSettings) -> Result<Session<ImapStream>> {
    // Every later step is bounded by the stream's inactivity limit (`stream`).
    let tcp = stream::connect(&server.host, server.port, server.timeout)
        .await
        .with_context(|| format!("cannot connect to {}:{}", server.host, server.port))?;
    let tls = || -> Result<(TlsConnector, ServerName<'static>)> {
        let config = crate::tls::client_config(server.ca_file.as_deref())?;
        let name = ServerName::try_from(server.host.clone())
            .with_context(|| format!("{:?} is not a valid TLS server name", server.host))?;
        Ok((TlsConnector::from(config), name))
    };
    let client = match server.security {
        Security::None => {
            let mut c = async_imap::Client::new(ImapStream::Plain(tcp));
            read_greeting(&mut c).await?;
            c
        }
        Security::Tls => {
            let (connector, name) = tls()?;
            let stream = connector
                .connect(name, tcp)
                .await
                .with_context(|| format!("TLS handshake with {} failed", server.host))?;
            let mut c = async_imap::Client::new(ImapStream::Tls(Box::new(stream)));
            read_greeting(&mut c).await?;
            c
        }
        Security::Starttls => {
            let mut c = async_imap::Client::new(ImapStream::Plain(tcp));
            read_greeting(&mut c).await?;
            c.run_command_and_check_ok("STARTTLS", None)
                .await
                .context("the IMAP server refused STARTTLS")?;
            let ImapStream::Plain(tcp) = c.into_inner() else {
                bail!("STARTTLS on a connection that is already TLS");
            };
            let (connector, name) = tls()?;
            let stream = connector.connect(name, tcp).await.with_context(|| {
                format!("TLS handshake with {} failed after STARTTLS", server.host)
            })?;
            async_imap::Client::new(ImapStream::Tls(Box::new(stream)))
        }
    };
    authenticate(client, server).await
}

/// The login step: LOGIN with the password, or SASL XOAUTH2 / OAUTHBEARER with an OAuth2
/// token ([`crate::oauth2::imap`]), as `auth` says.
pub async fn authenticate(
    client: async_imap::Client<ImapStream>,
    server: &ServerSettings,
) -> Result<Session<ImapStream>> {
    let user = server.username.as_deref().unwrap_or_default();
    if let Auth::OAuth2(tokens) = &server.auth {
        return crate::oauth2::imap::authenticate(
            client,
            user,
            &server.host,
            server.port,
            tokens,
            server.timeout,
        )
        .await
        .with_context(|| format!("IMAP login as {user} with OAuth2 failed"));
    }
    let password = server
        .password
        .as_ref()
        .map(|p| p.expose_secret().to_string())
        .unwrap_or_default();
    let session = tokio::time::timeout(server.timeout, client.login(user, password))
        .await
        .map_err(|_| anyhow::anyhow!("IMAP login timed out"))?
        .map_err(|(e, _)| anyhow::anyhow!("IMAP login as {user} failed: {e}"))?;
    Ok(session)
}

async fn read_greeting(c: &mut async_imap::Client<ImapStream>) -> Result<()> {
    match c.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => bail!("the IMAP server closed the connection before its greeting"),
        Err(e) => Err(e).context("cannot read the IMAP greeting"),
    }
}

/// A logged-in IMAP mailbox with its folder selected.
pub struct ImapMailbox {
    session: Option<Session<ImapStream>>,
    /// `imap:user/folder`, the checkpoint key (not the host or port: see the module doc).
    key: String,
    folder: String,
    processed_folder: String,
    quarantine_folder: String,
    uidvalidity: u32,
    exists: u32,
    has_idle: bool,
    has_move: bool,
    has_uidplus: bool,
    poll_interval: Duration,
    /// The connection's inactivity limit outside IDLE.
    timeout: Duration,
    last_uid: u32,
    /// Messages found waiting at the last look (SEARCH), less those taken in since.
    waiting: Option<u32>,
}

/// Logged once per process: a server without MOVE and UIDPLUS keeps processed mail in the
/// folder, marked `\Deleted`.
static WARNED_NO_EXPUNGE: AtomicBool = AtomicBool::new(false);

impl ImapMailbox {
    pub async fn connect(
        server: &ServerSettings,
        folder: &str,
        processed_folder: &str,
        quarantine_folder: &str,
        poll_interval_secs: u64,
    ) -> Result<ImapMailbox> {
        let mut session = login(server).await?;
        let caps = session
            .capabilities()
            .await
            .context("cannot read the IMAP capabilities")?;
        let has_idle = caps.has_str("IDLE");
        let has_move = caps.has_str("MOVE");
        let has_uidplus = caps.has_str("UIDPLUS");
        ensure_folder(&mut session, processed_folder).await?;
        ensure_folder(&mut session, quarantine_folder).await?;
        let selected = session
            .select(folder)
            .await
            .with_context(|| format!("cannot select the folder {folder}"))?;
        let uidvalidity = selected.uid_validity.unwrap_or(0);
        Ok(ImapMailbox {
            session: Some(session),
            key: mailbox_key(server.username.as_deref(), folder),
            folder: folder.to_string(),
            processed_folder: processed_folder.to_string(),
            quarantine_folder: quarantine_folder.to_string(),
            uidvalidity,
            exists: selected.exists,
            has_idle,
            has_move,
            has_uidplus,
            poll_interval: Duration::from_secs(poll_interval_secs),
            timeout: server.timeout,
            last_uid: 0,
            waiting: None,
        })
    }

    fn session_mut(&mut self) -> Result<&mut Session<ImapStream>> {
        self.session
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("the IMAP connection was lost"))
    }

    async fn fetch_new(
        &mut self,
        store: &Store,
        limit: usize,
        now: DateTime<Utc>,
        above: u32,
    ) -> Result<Vec<Fetched>> {
        // The checkpoint only counts for the same UIDVALIDITY; a new one means the UIDs
        // were renumbered and everything in the folder is looked at again (duplicates are
        // caught by the source key; processed mail is no longer in the folder anyway).
        let last = match store.checkpoint(&self.key).await? {
            Some((validity, last)) if validity == self.uidvalidity => last,
            _ => 0,
        };
        self.last_uid = self.last_uid.max(last);
        let from = self.last_uid.max(above).saturating_add(1);
        let key_prefix = format!("{}:{}", self.key, self.uidvalidity);
        let session = self.session_mut()?;
        // "n:*" always includes the highest UID even when it is below n (RFC 3501 §6.4.8):
        // filter.
        let mut uids: Vec<u32> = session
            .uid_search(format!("UID {from}:*"))
            .await
            .context("cannot search the mailbox for new mail")?
            .into_iter()
            .filter(|u| *u >= from)
            .collect();
        still_open(session)?;
        uids.sort_unstable();
        let found = uids.len();
        uids.truncate(limit);
        // RFC822.SIZE first: the batch ends before the mail that would take it over
        // BATCH_BYTES, and a larger mail comes alone.
        let mut alone = None;
        if !uids.is_empty() {
            let sizes = fetch_sizes(session, &uid_set(&uids)).await?;
            let mut bytes = 0u64;
            let mut take = 0;
            for uid in &uids {
                let size = sizes.get(uid).copied().unwrap_or(0);
                if take > 0 && bytes + size > BATCH_BYTES {
                    break;
                }
                bytes += size;
                take += 1;
            }
            uids.truncate(take.max(1));
            if let [uid] = uids[..]
                && let Some(&size) = sizes.get(&uid)
                && size > BATCH_BYTES
            {
                alone = Some((uid, size));
            }
        }
        let mut out = Vec::with_capacity(uids.len());
        // One FETCH for the batch, by UID ranges; a large mail in pieces.
        let mut answers: Vec<Answer> = match alone {
            Some((uid, size)) => fetch_large(session, uid, size).await?,
            None if uids.is_empty() => Vec::new(),
            None => fetch_answers(session, &uid_set(&uids)).await?,
        };
        for &uid in &uids {
            let mut answer = answers
                .iter()
                .position(|a| a.uid == uid)
                .map(|i| answers.swap_remove(i));
            // An answer without a body or INTERNALDATE (a server under strain, a
            // message being written) is asked for once more on its own before anything
            // is decided: the checkpoint must never pass a mail that was not stored.
            if !answer.as_ref().is_some_and(Answer::complete) {
                let again = fetch_answers(session, &uid.to_string()).await?;
                if let Some(a) = again.into_iter().find(|a| a.uid == uid) {
                    answer = Some(a);
                }
            }
            match answer {
                Some(Answer {
                    body: Some(raw),
                    internal_date,
                    ..
                }) => {
                    let (received_at, received_note) = receipt_time(internal_date, &raw, now);
                    out.push(Fetched {
                        source_key: format!("{key_prefix}:{uid}"),
                        raw,
                        received_at,
                        received_note,
                        handle: Handle::Uid(uid),
                    });
                }
                _ if !still_there(session, uid).await? => {
                    // Expunged by another client between our SEARCH and FETCH: there
                    // is nothing left to take in.
                    tracing::info!(
                        event = "mailbox.vanished",
                        uid,
                        "a new message was removed by another client before it could be fetched"
                    );
                }
                _ => {
                    // Stop before it: what came before is taken in, this one is asked
                    // for again at the next pass (the pass fails if it is the first).
                    tracing::warn!(
                        event = "mailbox.fetch_incomplete",
                        uid,
                        "the server sent no body for a message; it is fetched again at the next pass"
                    );
                    if out.is_empty() {
                        bail!("the server sent no body for UID {uid}, twice; trying again later");
                    }
                    break;
                }
            }
        }
        self.waiting = Some(u32::try_from(found.saturating_sub(out.len())).unwrap_or(u32::MAX));
        Ok(out)
    }

    async fn processed(
        &mut self,
        store: &Store,
        fetched: &Fetched,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let target = self.processed_folder.clone();
        self.move_to(store, fetched, &target, now).await
    }

    /// Move a batch away: one UID MOVE (or its stand-in) per destination, by UID set; the
    /// checkpoint (in memory) goes past the whole batch. One result per mail, in order.
    async fn move_batch(&mut self, batch: &[(&Fetched, Destination)]) -> Vec<Result<()>> {
        let mut results: Vec<Option<Result<()>>> = batch.iter().map(|_| None).collect();
        let (has_move, has_uidplus) = (self.has_move, self.has_uidplus);
        let mut highest = self.last_uid;
        for destination in [Destination::Processed, Destination::Quarantine] {
            let target = match destination {
                Destination::Processed => self.processed_folder.clone(),
                Destination::Quarantine => self.quarantine_folder.clone(),
            };
            let mut members = Vec::new();
            let mut uids = Vec::new();
            for (i, (f, d)) in batch.iter().enumerate() {
                match f.handle {
                    Handle::Uid(uid) if *d == destination => {
                        members.push(i);
                        uids.push(uid);
                    }
                    Handle::Uid(_) => {}
                    Handle::File(_) => {
                        results[i] = Some(Err(anyhow::anyhow!("an IMAP message without a UID")))
                    }
                }
            }
            if uids.is_empty() {
                continue;
            }
            uids.sort_unstable();
            highest = highest.max(uids[uids.len() - 1]);
            let set = uid_set(&uids);
            let moved = match self.session_mut() {
                Ok(session) => if has_move {
                    session
                        .uid_mv(&set, &target)
                        .await
                        .map_err(anyhow::Error::from)
                } else {
                    move_by_copy(session, &set, &target, has_uidplus).await
                }
                .and_then(|()| still_open(session)),
                Err(e) => Err(e),
            };
            for i in members {
                results[i] = Some(match &moved {
                    Ok(()) => Ok(()),
                    Err(e) => Err(anyhow::anyhow!(
                        "stored message could not be moved to {target}: {e:#}"
                    )),
                });
            }
        }
        // The checkpoint moves even when a move failed: the messages are stored, and must
        // not be fetched again; they stay in the folder for a person to look at.
        self.last_uid = highest;
        results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
    }

    async fn move_to(
        &mut self,
        store: &Store,
        fetched: &Fetched,
        target: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Handle::Uid(uid) = fetched.handle else {
            bail!("an IMAP message without a UID");
        };
        let (has_move, has_uidplus) = (self.has_move, self.has_uidplus);
        let session = self.session_mut()?;
        let moved = if has_move {
            session
                .uid_mv(uid.to_string(), target)
                .await
                .map_err(anyhow::Error::from)
        } else {
            move_by_copy(session, &uid.to_string(), target, has_uidplus).await
        }
        .and_then(|()| still_open(session));
        // The checkpoint moves even when the move failed: the message is stored, and must
        // not be fetched again; it stays in the folder for a person to look at.
        self.last_uid = self.last_uid.max(uid);
        store
            .set_checkpoint(&self.key, self.uidvalidity, self.last_uid, now)
            .await?;
        moved.with_context(|| format!("stored message UID {uid} could not be moved to {target}"))
    }

    async fn wait(&mut self, max: Duration) -> Result<()> {
        let max = max
            .min(self.poll_interval.max(Duration::from_secs(1)))
            .min(IDLE_RENEW);
        if !self.has_idle {
            tokio::time::sleep(max).await;
            return self
                .session_mut()?
                .noop()
                .await
                .context("the IMAP connection was lost");
        }
        let session = self
            .session
            .take()
            .ok_or_else(|| anyhow::anyhow!("the IMAP connection was lost"))?;
        let limit = session.get_ref().limit();
        let mut idle = session.idle();
        idle.init().await.context("cannot start IMAP IDLE")?;
        // Silence is expected while idling: allow the whole wait, plus the usual limit for
        // the server's answer to DONE.
        limit.set(max + self.timeout);
        let (wait, _stop) = idle.wait_with_timeout(max);
        let result = wait.await;
        limit.set(self.timeout);
        let session = idle.done().await.context("cannot end IMAP IDLE")?;
        self.session = Some(session);
        result.context("IMAP IDLE failed")?;
        Ok(())
    }

    async fn logout(mut self: Box<Self>) {
        if let Some(mut s) = self.session.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), s.logout()).await;
        }
    }

    pub fn folder(&self) -> &str {
        &self.folder
    }
}

/// The checkpoint key of an IMAP folder: the account and the folder, not the host name or
/// port used to reach the server (another name for the same server must not make every
/// mail in the folder new).
pub fn mailbox_key(username: Option<&str>, folder: &str) -> String {
    format!("imap:{}/{folder}", username.unwrap_or_default())
}

/// What the server answered for one UID.
struct Answer {
    uid: u32,
    body: Option<Vec<u8>>,
    internal_date: Option<DateTime<chrono::FixedOffset>>,
}

impl Answer {
    fn complete(&self) -> bool {
        self.body.is_some() && self.internal_date.is_some()
    }
}

/// A UID set in ranges (RFC 3501 §9 `sequence-set`): `3:7,9,12:14` for sorted UIDs.
pub fn uid_set(sorted: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end.saturating_add(1) {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// RFC822.SIZE of each UID in `set`.
async fn fetch_sizes(
    session: &mut Session<ImapStream>,
    set: &str,
) -> Result<std::collections::HashMap<u32, u64>> {
    let fetches = uid_fetch_all(
        session,
        set,
        "(UID RFC822.SIZE)",
        (
            "cannot ask the sizes of new mail",
            "cannot read the sizes of new mail",
        ),
    )
    .await?;
    Ok(fetches
        .iter()
        .filter_map(|f| Some((f.uid?, u64::from(f.size?))))
        .collect())
}

/// How much of a large mail one partial FETCH asks for.
const PIECE_BYTES: u64 = 1024 * 1024;

/// A large mail fetched alone, in pieces (`BODY.PEEK[]<offset.length>`, RFC 3501 §6.4.5),
/// into one buffer of its RFC822.SIZE: never the whole mail twice in memory (the client's
/// read buffer and a copy).
async fn fetch_large(
    session: &mut Session<ImapStream>,
    uid: u32,
    size: u64,
) -> Result<Vec<Answer>> {
    let set = uid.to_string();
    let head = uid_fetch_all(session, &set, "(UID INTERNALDATE)", MAIL_ERRORS).await?;
    let Some(internal_date) = head
        .iter()
        .find(|f| f.uid == Some(uid))
        .map(|f| f.internal_date())
    else {
        return Ok(Vec::new());
    };
    // The run's peak memory is this mail on top of the heap: what the heap holds free is
    // given back first.
    release_free_heap();
    let mut raw = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    loop {
        let query = format!("(UID BODY.PEEK[]<{}.{PIECE_BYTES}>)", raw.len());
        let piece = uid_fetch_all(session, &set, &query, MAIL_ERRORS).await?;
        let Some(body) = piece
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body())
        else {
            // Past the end of a mail whose size is a multiple of a piece: it is all here.
            if !raw.is_empty() && raw.len() as u64 >= size {
                break;
            }
            // No body at all: incomplete, asked for again as a whole by the caller.
            return Ok(Vec::new());
        };
        raw.extend_from_slice(body);
        if (body.len() as u64) < PIECE_BYTES {
            break;
        }
    }
    Ok(vec![Answer {
        uid,
        body: Some(raw),
        internal_date,
    }])
}

/// Give the memory the allocator holds free back to the system; before a large mail is
/// fetched. Returns whether any was given back.
///
/// A large mail (a 20 MB attachment is 28 MiB of base64) is held whole while it is taken
/// in, so a run's peak memory is that mail on top of the heap. glibc keeps freed memory
/// inside its heaps for reuse (only the top of the main heap is returned by itself): at the
/// end of a 10,000-mail backlog, 7 MiB of the peak was heap that no one was using, under a
/// 20 MB attachment (`scripts/bench-backlog --only b`: 63.0 → 56.0 MiB). `malloc_trim`
/// returns the free pages of every arena (the worker threads' too); its cost is a walk
/// over the free lists, once per large mail.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_heap() -> bool {
    // SAFETY: malloc_trim only hands free pages back to the system (madvise); it takes each
    // arena's lock, so other threads may allocate meanwhile.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_heap() -> bool {
    false
}

async fn fetch_answers(session: &mut Session<ImapStream>, set: &str) -> Result<Vec<Answer>> {
    let fetches =
        uid_fetch_all(session, set, "(UID INTERNALDATE BODY.PEEK[])", MAIL_ERRORS).await?;
    Ok(fetches
        .iter()
        .filter_map(|f| {
            Some(Answer {
                uid: f.uid?,
                body: f.body().map(<[u8]>::to_vec),
                internal_date: f.internal_date(),
            })
        })
        .collect())
}

/// What a failed FETCH of mail says: (asking, reading the answer).
const MAIL_ERRORS: (&str, &str) = ("cannot fetch new mail", "cannot read fetched mail");

/// `UID FETCH set query`, the whole answer read, and the connection still open (an answer
/// cut short by a closed connection is an error, not "nothing"); `errors` say what failed.
async fn uid_fetch_all(
    session: &mut Session<ImapStream>,
    set: &str,
    query: &str,
    (asking, reading): (&'static str, &'static str),
) -> Result<Vec<async_imap::types::Fetch>> {
    let fetches: Vec<_> = session
        .uid_fetch(set, query)
        .await
        .context(asking)?
        .try_collect()
        .await
        .context(reading)?;
    still_open(session)?;
    Ok(fetches)
}

/// Fails when the server has closed the connection: an answer cut short by that must not
/// count as "nothing new".
fn still_open(session: &Session<ImapStream>) -> Result<()> {
    if session.get_ref().closed() {
        bail!("the IMAP server closed the connection");
    }
    Ok(())
}

/// Whether a UID is still in the selected folder.
async fn still_there(session: &mut Session<ImapStream>, uid: u32) -> Result<bool> {
    let found = session
        .uid_search(format!("UID {uid}"))
        .await
        .context("cannot search the mailbox")?;
    still_open(session)?;
    Ok(found.contains(&uid))
}

/// When the firm received a mail: the server's INTERNALDATE; without one the Date header,
/// never later than now (a sender's clock may run ahead); without that, now. Never 1970.
/// The second value says which fallback was used, for the message's flags.
pub fn receipt_time(
    internal_date: Option<DateTime<chrono::FixedOffset>>,
    raw: &[u8],
    now: DateTime<Utc>,
) -> (DateTime<Utc>, Option<String>) {
    if let Some(d) = internal_date {
        return (d.with_timezone(&Utc), None);
    }
    let header = mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.date().map(|d| d.to_timestamp()))
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
    match header {
        Some(d) => (
            d.min(now),
            Some(
                "receipt time: the server gave no INTERNALDATE; the Date header was used (never later than the time of intake)"
                    .to_string(),
            ),
        ),
        None => (
            now,
            Some(
                "receipt time: the server gave no INTERNALDATE and the Date header is unusable; the time of intake was used"
                    .to_string(),
            ),
        ),
    }
}

/// MOVE's stand-in (RFC 6851 §3.3): COPY, then `\Deleted` and `UID EXPUNGE` of these UIDs only
/// (UIDPLUS, RFC 4315). Never a plain EXPUNGE: it would also remove what people marked
/// deleted in the shared mailbox. Without UIDPLUS the original is only marked `\Deleted`
/// and `\Seen`, and left for people (or the server's own cleanup) to expunge.
async fn move_by_copy(
    session: &mut Session<ImapStream>,
    uids: &str,
    target: &str,
    uidplus: bool,
) -> Result<()> {
    session.uid_copy(uids, target).await?;
    let flags = if uidplus {
        "+FLAGS.SILENT (\\Deleted)"
    } else {
        "+FLAGS.SILENT (\\Deleted \\Seen)"
    };
    let _: Vec<_> = session.uid_store(uids, flags).await?.try_collect().await?;
    if uidplus {
        let _: Vec<_> = session.uid_expunge(uids).await?.try_collect().await?;
    } else if !WARNED_NO_EXPUNGE.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            event = "mailbox.no_expunge",
            "the IMAP server has neither MOVE nor UIDPLUS: processed mail is copied and marked deleted and read, but left in the folder"
        );
    }
    Ok(())
}

async fn ensure_folder(session: &mut Session<ImapStream>, folder: &str) -> Result<()> {
    let exists = {
        let names: Vec<_> = session
            .list(None, Some(folder))
            .await
            .context("cannot list folders")?
            .try_collect()
            .await
            .context("cannot list folders")?;
        names.iter().any(|n| n.name() == folder)
    };
    if !exists {
        match session.create(folder).await {
            Ok(()) => {}
            // Another client created it between our LIST and CREATE (RFC 5530).
            Err(e) if e.to_string().contains("ALREADYEXISTS") => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot create the folder {folder}")),
        }
        tracing::info!(
            event = "mailbox.folder_created",
            folder,
            "created a folder for klachtpost"
        );
    }
    Ok(())
}

// ---- retention -------------------------------------------------------------------------

/// A copy klachtpost left in the mailbox of a message it stored: the Maildir file (by its
/// source key) or the IMAP copy (found by Message-ID, since MOVE and APPEND give the copy
/// a new UID).
#[derive(Debug, Clone, Default)]
pub struct MailCopy {
    pub source_key: Option<String>,
    pub message_id: Option<String>,
}

/// Where klachtpost leaves copies in the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFolder {
    /// `processed_folder` (IMAP) or `cur/`/`new/` (Maildir): mail taken in.
    Processed,
    /// `quarantine_folder` (IMAP) or `.<quarantine_folder>/cur|new` (Maildir).
    Quarantine,
    /// `[mailbox] sent_folder` (IMAP only): copies of what klachtpost sent.
    Sent,
}

/// Remove the copies of purged messages from one folder of the mailbox (retention).
/// Returns how many were removed. IMAP: one session, the folder (none to remove when it
/// does not exist), `UID SEARCH HEADER Message-ID`, `\Deleted` and `UID EXPUNGE` (only
/// those UIDs). Maildir: the files (by source key) in `cur/`/`new/` of the folder.
pub async fn remove_copies(
    config: &Config,
    folder: CopyFolder,
    copies: &[MailCopy],
) -> Result<usize> {
    if copies.is_empty() {
        return Ok(0);
    }
    match &config.mailbox {
        MailboxConfig::Maildir { path } => {
            let dir = match folder {
                CopyFolder::Processed => path.clone(),
                CopyFolder::Quarantine => path.join(format!(".{}", config.quarantine_folder)),
                CopyFolder::Sent => return Ok(0),
            };
            let mut removed = 0;
            for key in copies.iter().filter_map(|c| c.source_key.as_deref()) {
                let Some(unique) = key.strip_prefix("maildir:") else {
                    continue;
                };
                for sub in ["cur", "new"] {
                    let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                        continue;
                    };
                    for e in entries.filter_map(|e| e.ok()) {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if name.split(':').next() == Some(unique) {
                            std::fs::remove_file(e.path())
                                .with_context(|| format!("cannot remove {}", e.path().display()))?;
                            removed += 1;
                        }
                    }
                }
            }
            Ok(removed)
        }
        MailboxConfig::Imap {
            server,
            processed_folder,
            sent_folder,
            ..
        } => {
            let name = match folder {
                CopyFolder::Processed => processed_folder.as_str(),
                CopyFolder::Quarantine => config.quarantine_folder.as_str(),
                CopyFolder::Sent => match sent_folder {
                    Some(f) => f.as_str(),
                    None => return Ok(0),
                },
            };
            let ids: Vec<&str> = copies
                .iter()
                .filter_map(|c| c.message_id.as_deref())
                .filter(|id| !id.contains(['\r', '\n']))
                .collect();
            if ids.is_empty() {
                return Ok(0);
            }
            let mut session = login(server).await?;
            let removed = remove_by_message_id(&mut session, server.timeout, name, &ids).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
            removed
        }
    }
}

/// In `folder` (if it exists): find the mails with these Message-IDs, mark them
/// `\Deleted` and `UID EXPUNGE` exactly those UIDs.
async fn remove_by_message_id(
    session: &mut Session<ImapStream>,
    timeout: Duration,
    folder: &str,
    ids: &[&str],
) -> Result<usize> {
    let exists = {
        let names: Vec<_> = session
            .list(None, Some(folder))
            .await
            .context("cannot list folders")?
            .try_collect()
            .await
            .context("cannot list folders")?;
        names.iter().any(|n| n.name() == folder)
    };
    if !exists {
        return Ok(0);
    }
    session
        .select(folder)
        .await
        .with_context(|| format!("cannot select the folder {folder}"))?;
    let mut uids: Vec<u32> = Vec::new();
    for id in ids {
        let quoted = format!("<{id}>").replace('\\', "\\\\").replace('"', "\\\"");
        let found = tokio::time::timeout(
            timeout,
            session.uid_search(format!("HEADER Message-ID \"{quoted}\"")),
        )
        .await
        .context("the IMAP server did not answer in time")?
        .with_context(|| format!("cannot search the folder {folder}"))?;
        uids.extend(found);
    }
    uids.sort_unstable();
    uids.dedup();
    if !uids.is_empty() {
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let _: Vec<_> = session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await
            .context("cannot mark purged mail deleted")?
            .try_collect()
            .await?;
        let _: Vec<_> = session
            .uid_expunge(&set)
            .await
            .context("cannot expunge purged mail")?
            .try_collect()
            .await?;
    }
    Ok(uids.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn memory_freed_between_blocks_in_use_is_given_back_before_a_large_mail() {
        // Blocks under glibc's mmap threshold come from a heap; each freed one lies between
        // two kept ones, so it cannot merge into the heap's top (which glibc returns by
        // itself) and stays with the allocator until it is trimmed.
        let mut freed = Vec::new();
        let mut kept = Vec::new();
        for _ in 0..64 {
            freed.push(vec![1u8; 64 * 1024]);
            kept.push(vec![2u8; 64]);
        }
        drop(freed);
        assert!(release_free_heap(), "nothing was given back");
        assert!(kept.iter().all(|k| k.iter().all(|&b| b == 2)));
    }

    #[test]
    fn the_receipt_time_is_internaldate_else_the_date_header_never_later_than_now_never_1970() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        let raw = b"From: a@example.nl\r\nDate: Tue, 1 Dec 2026 10:00:00 +0100\r\n\r\nx\r\n";
        let internal = chrono::FixedOffset::east_opt(3600)
            .unwrap()
            .with_ymd_and_hms(2026, 12, 1, 11, 0, 0)
            .unwrap();
        assert_eq!(
            receipt_time(Some(internal), raw, now),
            (Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap(), None)
        );
        let (t, note) = receipt_time(None, raw, now);
        assert_eq!(t, Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap());
        assert!(note.unwrap().contains("Date header"));
        // A sender's clock ahead of ours: clamped to now.
        let future = b"Date: Fri, 1 Jan 2027 10:00:00 +0000\r\n\r\nx\r\n";
        assert_eq!(receipt_time(None, future, now).0, now);
        // No usable Date either: now, and said so; never the epoch.
        let (t, note) = receipt_time(None, b"Subject: x\r\n\r\ny\r\n", now);
        assert_eq!(t, now);
        assert!(note.unwrap().contains("time of intake"));
    }

    #[test]
    fn a_uid_set_is_written_in_ranges() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[3, 4, 5, 6, 7, 9, 12, 13, 14]), "3:7,9,12:14");
        assert_eq!(uid_set(&[1, 3, 5]), "1,3,5");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn the_mailbox_key_is_the_account_and_folder_not_the_server_name() {
        assert_eq!(
            mailbox_key(Some("klachten@firma.nl"), "INBOX"),
            "imap:klachten@firma.nl/INBOX"
        );
        assert_eq!(mailbox_key(None, "Klachten/2026"), "imap:/Klachten/2026");
    }
}
