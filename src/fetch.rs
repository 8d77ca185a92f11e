//! The mailbox edge: what is new, its raw bytes and when the firm received it; and, once
//! intake has stored a message, moving it out of the way.
//!
//! Two kinds, one shape ([`Mailbox`]):
//! - IMAP (async-imap over rustls, implicit TLS or STARTTLS, or plain on loopback). New mail
//!   is found by UID above the stored checkpoint (RFC 3501 §2.3.1.1), never by `\Seen`:
//!   people open the shared mailbox in Outlook. Bodies are fetched with `BODY.PEEK[]` so
//!   fetching marks nothing read. A stored message is moved to `processed_folder` (MOVE,
//!   RFC 6851, or COPY + `\Deleted` + EXPUNGE where MOVE is missing), created if needed.
//!   The receipt time is the server's INTERNALDATE.
//! - Maildir (the embedded default): `new/` holds what is unprocessed, a stored message is
//!   renamed into `cur/`. The receipt time is the file's modification time.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use async_imap::Session;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::config::{Config, Mailbox as MailboxConfig, Security, ServerSettings};
use crate::store::Store;

/// How many messages one IMAP FETCH asks for, bounding memory on a large backlog.
const FETCH_BATCH: usize = 25;
/// How long one network step may take before the connection is given up.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// One fetched message.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Stable identity of the message in its mailbox, for idempotent intake.
    pub source_key: String,
    pub raw: Vec<u8>,
    /// When the firm received it (INTERNALDATE, file time).
    pub received_at: DateTime<Utc>,
    handle: Handle,
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
            } => Ok(Mailbox::Imap(Box::new(
                ImapMailbox::connect(server, folder, processed_folder, *poll_interval_secs).await?,
            ))),
            MailboxConfig::Maildir { path } => Ok(Mailbox::Maildir(MaildirMailbox::open(path)?)),
        }
    }

    /// New messages since the checkpoint, at most `limit`.
    pub async fn fetch_new(&mut self, store: &Store, limit: usize) -> Result<Vec<Fetched>> {
        match self {
            Mailbox::Imap(m) => m.fetch_new(store, limit).await,
            Mailbox::Maildir(m) => m.fetch_new(limit),
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
        } => {
            let mut m =
                ImapMailbox::connect(server, folder, processed_folder, *poll_interval_secs).await?;
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

/// A local Maildir: `new/` is the inbox, `cur/` the processed folder.
pub struct MaildirMailbox {
    root: PathBuf,
}

impl MaildirMailbox {
    /// Open, creating `new/ cur/ tmp/` if missing.
    pub fn open(root: &Path) -> Result<MaildirMailbox> {
        // Raw mail is confidential: folders klachtpost creates are owner-only.
        for sub in ["new", "cur", "tmp"] {
            crate::store::create_private_dir(&root.join(sub)).with_context(|| {
                format!(
                    "cannot create the Maildir folder {}",
                    root.join(sub).display()
                )
            })?;
        }
        Ok(MaildirMailbox {
            root: root.to_path_buf(),
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

    fn fetch_new(&mut self, limit: usize) -> Result<Vec<Fetched>> {
        let mut out = Vec::new();
        for path in self.list_new()?.into_iter().take(limit) {
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
                handle: Handle::File(path),
            });
        }
        Ok(out)
    }

    fn processed(&mut self, fetched: &Fetched) -> Result<()> {
        let Handle::File(path) = &fetched.handle else {
            bail!("a Maildir message without a file");
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let unique = name.split(':').next().unwrap_or(&name);
        let target = self.root.join("cur").join(format!("{unique}:2,"));
        std::fs::rename(path, &target)
            .with_context(|| format!("cannot move {} to {}", path.display(), target.display()))
    }
}

// ---- IMAP ------------------------------------------------------------------------------

/// A plain or TLS TCP stream, so one session type serves every security mode.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connect and log in to an IMAP server as configured.
pub async fn login(server: &ServerSettings) -> Result<Session<ImapStream>> {
    let addr = (server.host.as_str(), server.port);
    let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "cannot connect to {}:{}: timed out",
                server.host,
                server.port
            )
        })?
        .with_context(|| format!("cannot connect to {}:{}", server.host, server.port))?;
    let tls = || -> Result<(TlsConnector, ServerName<'static>)> {
        let config = crate::tls::client_config(server.ca_file.as_deref())?;
        let name = ServerName::try_from(server.host.clone())
            .with_context(|| format!("{:?} is not a valid TLS server name", server.host))?;
        Ok((TlsConnector::from(config), name))
    };
    let mut client = match server.security {
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
    let _ = &mut client;
    let user = server.username.as_deref().unwrap_or_default();
    let password = server
        .password
        .as_ref()
        .map(|p| p.expose_secret().to_string())
        .unwrap_or_default();
    let session = tokio::time::timeout(IO_TIMEOUT, client.login(user, password))
        .await
        .map_err(|_| anyhow::anyhow!("IMAP login timed out"))?
        .map_err(|(e, _)| anyhow::anyhow!("IMAP login as {user} failed: {e}"))?;
    Ok(session)
}

async fn read_greeting(c: &mut async_imap::Client<ImapStream>) -> Result<()> {
    match tokio::time::timeout(IO_TIMEOUT, c.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => bail!("the IMAP server closed the connection before its greeting"),
        Ok(Err(e)) => Err(e).context("cannot read the IMAP greeting"),
        Err(_) => bail!("no IMAP greeting within {IO_TIMEOUT:?}"),
    }
}

/// A logged-in IMAP mailbox with its folder selected.
pub struct ImapMailbox {
    session: Option<Session<ImapStream>>,
    /// `imap:user@host:port/folder`, the checkpoint key.
    key: String,
    folder: String,
    processed_folder: String,
    uidvalidity: u32,
    exists: u32,
    has_idle: bool,
    has_move: bool,
    poll_interval: Duration,
    last_uid: u32,
}

impl ImapMailbox {
    pub async fn connect(
        server: &ServerSettings,
        folder: &str,
        processed_folder: &str,
        poll_interval_secs: u64,
    ) -> Result<ImapMailbox> {
        let mut session = login(server).await?;
        let caps = session
            .capabilities()
            .await
            .context("cannot read the IMAP capabilities")?;
        let has_idle = caps.has_str("IDLE");
        let has_move = caps.has_str("MOVE");
        ensure_folder(&mut session, processed_folder).await?;
        let selected = session
            .select(folder)
            .await
            .with_context(|| format!("cannot select the folder {folder}"))?;
        let uidvalidity = selected.uid_validity.unwrap_or(0);
        Ok(ImapMailbox {
            session: Some(session),
            key: format!(
                "imap:{}@{}:{}/{}",
                server.username.as_deref().unwrap_or_default(),
                server.host,
                server.port,
                folder
            ),
            folder: folder.to_string(),
            processed_folder: processed_folder.to_string(),
            uidvalidity,
            exists: selected.exists,
            has_idle,
            has_move,
            poll_interval: Duration::from_secs(poll_interval_secs),
            last_uid: 0,
        })
    }

    fn session_mut(&mut self) -> Result<&mut Session<ImapStream>> {
        self.session
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("the IMAP connection was lost"))
    }

    async fn fetch_new(&mut self, store: &Store, limit: usize) -> Result<Vec<Fetched>> {
        // The checkpoint only counts for the same UIDVALIDITY; a new one means the UIDs
        // were renumbered and everything in the folder is looked at again (duplicates are
        // caught by the source key; processed mail is no longer in the folder anyway).
        let last = match store.checkpoint(&self.key).await? {
            Some((validity, last)) if validity == self.uidvalidity => last,
            _ => 0,
        };
        self.last_uid = self.last_uid.max(last);
        let from = self.last_uid.saturating_add(1);
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
        uids.sort_unstable();
        uids.truncate(limit);
        let mut out = Vec::with_capacity(uids.len());
        for chunk in uids.chunks(FETCH_BATCH) {
            let set = chunk
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let fetches: Vec<_> = session
                .uid_fetch(&set, "(UID INTERNALDATE BODY.PEEK[])")
                .await
                .context("cannot fetch new mail")?
                .try_collect()
                .await
                .context("cannot read fetched mail")?;
            for f in fetches {
                let Some(uid) = f.uid else { continue };
                let Some(body) = f.body() else { continue };
                let received_at = f
                    .internal_date()
                    .map(|d| d.with_timezone(&Utc))
                    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
                out.push(Fetched {
                    source_key: format!("{key_prefix}:{uid}"),
                    raw: body.to_vec(),
                    received_at,
                    handle: Handle::Uid(uid),
                });
            }
        }
        out.sort_by_key(|f| match f.handle {
            Handle::Uid(u) => u,
            Handle::File(_) => 0,
        });
        Ok(out)
    }

    async fn processed(
        &mut self,
        store: &Store,
        fetched: &Fetched,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Handle::Uid(uid) = fetched.handle else {
            bail!("an IMAP message without a UID");
        };
        let (has_move, target) = (self.has_move, self.processed_folder.clone());
        let session = self.session_mut()?;
        let moved = if has_move {
            session
                .uid_mv(uid.to_string(), &target)
                .await
                .map_err(anyhow::Error::from)
        } else {
            move_by_copy(session, uid, &target).await
        };
        // The checkpoint moves even when the move failed: the message is stored, and must
        // not be fetched again; it stays in the folder for a person to look at.
        self.last_uid = self.last_uid.max(uid);
        store
            .set_checkpoint(&self.key, self.uidvalidity, self.last_uid, now)
            .await?;
        moved.with_context(|| format!("stored message UID {uid} could not be moved to {target}"))
    }

    async fn wait(&mut self, max: Duration) -> Result<()> {
        let max = max.min(self.poll_interval.max(Duration::from_secs(1)));
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
        let mut idle = session.idle();
        idle.init().await.context("cannot start IMAP IDLE")?;
        let (wait, _stop) = idle.wait_with_timeout(max);
        let result = wait.await;
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

async fn move_by_copy(session: &mut Session<ImapStream>, uid: u32, target: &str) -> Result<()> {
    session.uid_copy(uid.to_string(), target).await?;
    let _: Vec<_> = session
        .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Deleted)")
        .await?
        .try_collect()
        .await?;
    let _: Vec<_> = session.expunge().await?.try_collect().await?;
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
            "created the processed folder"
        );
    }
    Ok(())
}

// ---- retention -------------------------------------------------------------------------

/// A copy klachtpost left in the mailbox of a message it stored: the Maildir file (by its
/// source key) or the IMAP processed-folder copy (found by Message-ID, since MOVE gives
/// the copy a new UID).
#[derive(Debug, Clone, Default)]
pub struct MailCopy {
    pub source_key: Option<String>,
    pub message_id: Option<String>,
}

/// Remove the copies of purged messages from the mailbox (retention). Returns how many
/// were removed. IMAP: one session, the processed folder, `UID SEARCH HEADER Message-ID`,
/// `\Deleted` and `UID EXPUNGE` (only those UIDs). Maildir: the files in `cur/`/`new/`.
pub async fn remove_copies(config: &Config, copies: &[MailCopy]) -> Result<usize> {
    if copies.is_empty() {
        return Ok(0);
    }
    match &config.mailbox {
        MailboxConfig::Maildir { path } => {
            let mut removed = 0;
            for key in copies.iter().filter_map(|c| c.source_key.as_deref()) {
                let Some(unique) = key.strip_prefix("maildir:") else {
                    continue;
                };
                for sub in ["cur", "new"] {
                    let Ok(entries) = std::fs::read_dir(path.join(sub)) else {
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
            ..
        } => {
            let mut session = login(server).await?;
            session
                .select(processed_folder)
                .await
                .with_context(|| format!("cannot select the folder {processed_folder}"))?;
            let mut uids: Vec<u32> = Vec::new();
            for id in copies.iter().filter_map(|c| c.message_id.as_deref()) {
                if id.contains(['\r', '\n']) {
                    continue;
                }
                let quoted = format!("<{id}>").replace('\\', "\\\\").replace('"', "\\\"");
                let found = tokio::time::timeout(
                    IO_TIMEOUT,
                    session.uid_search(format!("HEADER Message-ID \"{quoted}\"")),
                )
                .await
                .context("the IMAP server did not answer in time")?
                .context("cannot search the processed folder")?;
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
            let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
            Ok(uids.len())
        }
    }
}
