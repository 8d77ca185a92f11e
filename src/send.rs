//! The outgoing edge: one operation, "deliver these bytes to these recipients", over SMTP
//! (implicit TLS, STARTTLS or plain on loopback), a local sendmail, or a folder of `.eml`
//! files (the embedded default).
//!
//! Errors say what failed, because the outbox acts on it ([`SendError`]): a failure of the
//! SMTP *session* — no connection, TLS, the greeting, EHLO, AUTH refused, our sender
//! refused at MAIL FROM — is an outage of the transport, not a verdict on the mail (one
//! wrong password must not fail every acknowledgement); a 4xx to the mail is worth
//! another try; a 5xx to a recipient (RCPT) or to the message (DATA) fails that mail only.
//! To tell them apart the SMTP dialogue is driven here (lettre's connection, not its
//! transport, which reports all of them alike). When the server offers PIPELINING (RFC 2920)
//! MAIL FROM, the RCPT TOs and DATA go out in one write and their replies are read in order,
//! so a message costs two round trips instead of three and one per recipient; the first
//! refusal decides as in the dialogue step by step, and the message only follows a 354.
//!
//! Every error text is [`redact`]ed: SMTP replies echo addresses, and errors are logged and
//! stored.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{
    ClientId, Extension, MailBodyParameter, MailParameter, ServerInfo,
};
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSendmailTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{Auth, Config, Security, ServerSettings, Transport};
use crate::oauth2::{AccessToken, TokenSource};

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The transport is down (no connection, TLS, AUTH refused, sender refused): nothing
    /// is wrong with this mail; it stays queued and the outage is tracked.
    #[error("the outgoing server cannot be used: {0}")]
    Outage(String),
    /// Worth another try later: the server answered 4xx to this mail.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// A recipient was refused for good (5xx to RCPT): a hard bounce of that address.
    #[error("recipient refused: {0}")]
    RecipientRefused(String),
    /// Will not work however often it is tried: 5xx to the message, an invalid address.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Replace anything address-like (`local@domain`, with or without angle brackets) with
/// `<redacted>`, so an SMTP reply can be logged and stored.
pub fn redact(text: &str) -> String {
    let is_local = |c: char| c.is_alphanumeric() || "._%+-=!#$&'*/?^`{|}~".contains(c);
    let is_domain = |c: char| c.is_alphanumeric() || ".-[]:".contains(c);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut last = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut start = i;
            while start > last && is_local(chars[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < chars.len() && is_domain(chars[end]) {
                end += 1;
            }
            if start < i || end > i + 1 {
                if start > last && chars[start - 1] == '<' {
                    start -= 1;
                }
                if end < chars.len() && chars[end] == '>' {
                    end += 1;
                }
                out.extend(&chars[last..start]);
                out.push_str("<redacted>");
                last = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.extend(&chars[last..]);
    out
}

/// A configured transport, with the state of its outage if it is down.
pub struct Sender {
    kind: Kind,
    /// Set while the transport is down; the outbox's policy reads and updates it.
    ///
    /// Kept in memory, on purpose minimal: it lives as long as the daemon's transport.
    /// The outbox also records the outage in [`crate::health`], for `klachtpost status`.
    pub outage: std::sync::Mutex<Option<Outage>>,
}

enum Kind {
    Smtp(Box<SmtpSender>),
    Sendmail(AsyncSendmailTransport<Tokio1Executor>),
    File(PathBuf),
}

/// A transport that is down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// The first failure.
    pub since: DateTime<Utc>,
    /// The last error, redacted.
    pub last_error: String,
    /// Failed tries so far.
    pub failures: u32,
    /// When to try again.
    pub next_try: DateTime<Utc>,
    /// Whether the partners have been told.
    pub alerted: bool,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sender({})", self.describe())
    }
}

impl Sender {
    /// The outage, if the transport is down.
    pub fn outage(&self) -> Option<Outage> {
        self.outage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// When a transport that is down should be tried again.
    pub fn retry_at(&self) -> Option<DateTime<Utc>> {
        self.outage().map(|o| o.next_try)
    }

    /// The main transport, `[outgoing]`.
    pub fn from_config(config: &Config) -> Result<Sender> {
        Self::from_transport(&config.outgoing.transport)
    }

    /// The fallback transport, `[outgoing.fallback]`, if one is configured.
    pub fn fallback(config: &Config) -> Result<Option<Sender>> {
        config
            .outgoing
            .fallback
            .as_ref()
            .map(Self::from_transport)
            .transpose()
    }

    pub fn from_transport(transport: &Transport) -> Result<Sender> {
        let kind = match transport {
            Transport::Smtp(server) => Kind::Smtp(Box::new(SmtpSender::new(server)?)),
            Transport::Sendmail { command } => {
                Kind::Sendmail(AsyncSendmailTransport::<Tokio1Executor>::new_with_command(
                    command.as_os_str(),
                ))
            }
            Transport::File { dir } => {
                crate::store::create_private_dir(dir).with_context(|| {
                    format!("cannot create the outbox folder {}", dir.display())
                })?;
                Kind::File(dir.clone())
            }
        };
        Ok(Sender {
            kind,
            outage: std::sync::Mutex::new(None),
        })
    }

    /// Where this transport delivers, for logs and notices (no secret, no address).
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Smtp(s) => format!("SMTP {}:{}", s.server.host, s.server.port),
            Kind::Sendmail(_) => "sendmail".into(),
            Kind::File(d) => format!("the folder {}", d.display()),
        }
    }

    /// End an SMTP session kept open between messages (after a drain).
    pub async fn close_idle(&self) {
        if let Kind::Smtp(s) = &self.kind {
            s.close().await;
        }
    }

    /// Deliver `raw` to `recipients`, with `from` as the envelope sender.
    pub async fn send(
        &self,
        from: &str,
        recipients: &[String],
        raw: &[u8],
        file_stem: &str,
    ) -> Result<(), SendError> {
        self.send_before(from, recipients, raw, file_stem, None)
            .await
    }

    /// [`Sender::send`], saying which mail is sent right after it: over SMTP with
    /// PIPELINING its MAIL FROM, RCPT TO and DATA go out behind this message's end (RFC
    /// 2920), one round trip a message instead of two. The next call must send `next`
    /// (another mail ends the session first; nothing is lost, the session is new).
    pub async fn send_before(
        &self,
        from: &str,
        recipients: &[String],
        raw: &[u8],
        file_stem: &str,
        next: Option<Next<'_>>,
    ) -> Result<(), SendError> {
        match &self.kind {
            Kind::Smtp(s) => {
                let next = next.and_then(|n| Some((envelope(n.from, n.recipients).ok()?, n.raw)));
                s.send(
                    &envelope(from, recipients)?,
                    raw,
                    next.as_ref().map(|(e, r)| (e, *r)),
                )
                .await
            }
            Kind::Sendmail(t) => {
                let env = envelope(from, recipients)?;
                t.send_raw(&env, raw)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError::Transient(redact(&e.to_string())))
            }
            Kind::File(dir) => {
                envelope(from, recipients)?;
                write_file(dir, file_stem, raw)
                    .map_err(|e| SendError::Transient(redact(&e.to_string())))
            }
        }
    }
}

/// The mail a [`Sender::send_before`] call says comes next.
#[derive(Debug, Clone, Copy)]
pub struct Next<'a> {
    pub from: &'a str,
    pub recipients: &'a [String],
    pub raw: &'a [u8],
}

fn envelope(from: &str, recipients: &[String]) -> Result<Envelope, SendError> {
    let from = from
        .parse()
        .map_err(|e| SendError::Permanent(redact(&format!("invalid sender address: {e}"))))?;
    let to = recipients
        .iter()
        .map(|r| r.parse())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SendError::Permanent(redact(&format!("invalid recipient address: {e}"))))?;
    Envelope::new(Some(from), to).map_err(|e| SendError::Permanent(redact(&e.to_string())))
}

/// SMTP, driven command by command (pipelined where offered) so a failure of the session
/// is told apart from a refusal of the mail. One session carries a drain's messages one
/// after another (RFC 5321 §3.3: a new MAIL FROM after a completed transaction);
/// [`Sender::close_idle`] ends it when the drain is done, and a session idle longer than
/// [`SESSION_IDLE`] is not reused.
pub struct SmtpSender {
    server: ServerSettings,
    tls: Option<TlsParameters>,
    open: tokio::sync::Mutex<Option<(Session, std::time::Instant)>>,
}

/// An SMTP session, greeted (and logged in) and ready for a mail transaction.
struct Session {
    conn: AsyncSmtpConnection,
    /// The server offers PIPELINING (RFC 2920).
    pipelining: bool,
    /// The next mail's MAIL FROM, RCPT TO and DATA, written behind the last message's end,
    /// their replies not read yet ([`Sender::send_before`]). The server takes what follows
    /// them as the message: the session can only be dropped unless that mail comes next.
    ahead: Option<String>,
}

/// How far a mail transaction got, for how [`SmtpSender::send`] ends a session it failed in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stage {
    /// MAIL FROM not accepted: a kept session may have been ended by the server.
    #[default]
    Before,
    /// MAIL FROM accepted.
    Started,
    /// The server accepted DATA and waits for the message, which is not sent (a recipient
    /// of the same pipelined group was refused, or the message was cut off): the session
    /// can only be dropped. A QUIT would be taken as part of the message and never
    /// answered, and a closing dot would deliver it.
    InData,
}

impl Session {
    /// End a session a transaction failed in: QUIT, or drop it while the server is in DATA.
    async fn end(mut self, stage: Stage) {
        if stage != Stage::InData && self.ahead.is_none() {
            self.conn.abort().await;
        }
    }
}

/// The commands of one pipelined group: MAIL FROM, every RCPT TO, then DATA, which must be
/// the last (RFC 2920 §3.1). lettre's commands each end in CRLF.
struct Group {
    mail: Mail,
    rcpts: Vec<Rcpt>,
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.mail)?;
        for rcpt in &self.rcpts {
            write!(f, "{rcpt}")?;
        }
        write!(f, "{Data}")
    }
}

/// The longest an open SMTP session waits for the next message before it is not reused.
const SESSION_IDLE: Duration = Duration::from_secs(5);

impl SmtpSender {
    fn new(server: &ServerSettings) -> Result<SmtpSender> {
        let tls = match server.security {
            Security::None => None,
            Security::Starttls | Security::Tls => Some(tls_parameters(server)?),
        };
        Ok(SmtpSender {
            server: server.clone(),
            tls,
            open: tokio::sync::Mutex::new(None),
        })
    }

    /// Connect, greet, STARTTLS and AUTH as configured. Every failure here is an outage.
    async fn session(&self) -> Result<Session, SendError> {
        let s = &self.server;
        let outage = |what: &str, e: lettre::transport::smtp::Error| {
            SendError::Outage(redact(&format!("{what} {}:{}: {e}", s.host, s.port)))
        };
        match (&s.auth, &s.username) {
            (Auth::OAuth2(tokens), Some(user)) => self.oauth2_session(tokens, user).await,
            (Auth::Password, Some(user)) => {
                let mut session = self.connect().await?;
                if let Some(password) = &s.password {
                    let credentials =
                        Credentials::new(user.clone(), password.expose_secret().to_string());
                    session
                        .conn
                        .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                        .await
                        .map_err(|e| outage("login refused by", e))?;
                }
                Ok(session)
            }
            _ => self.connect().await,
        }
    }

    /// Connect, greet and STARTTLS as configured; no login yet.
    async fn connect(&self) -> Result<Session, SendError> {
        let s = &self.server;
        let hello = ClientId::default();
        let outage = |what: &str, e: lettre::transport::smtp::Error| {
            SendError::Outage(redact(&format!("{what} {}:{}: {e}", s.host, s.port)))
        };
        let mut conn = match s.security {
            Security::Tls => AsyncSmtpConnection::connect_tokio1(
                (s.host.as_str(), s.port),
                Some(s.timeout),
                &hello,
                self.tls.clone(),
                None,
            )
            .await
            .map_err(|e| outage("cannot connect to", e))?,
            // Our own socket, with Nagle's algorithm off: lettre writes a message and its
            // closing dot separately, and the dot would wait for the server's delayed ACK
            // (40 ms a message on Linux, the sender's whole budget on a backlog).
            _ => {
                let cannot = |e: std::io::Error| {
                    SendError::Outage(redact(&format!(
                        "cannot connect to {}:{}: {e}",
                        s.host, s.port
                    )))
                };
                let tcp = tokio::time::timeout(
                    s.timeout,
                    tokio::net::TcpStream::connect((s.host.as_str(), s.port)),
                )
                .await
                .map_err(|_| cannot(std::io::ErrorKind::TimedOut.into()))?
                .map_err(cannot)?;
                tcp.set_nodelay(true).map_err(cannot)?;
                tokio::time::timeout(
                    s.timeout,
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello),
                )
                .await
                .map_err(|_| cannot(std::io::ErrorKind::TimedOut.into()))?
                .map_err(|e| outage("cannot connect to", e))?
            }
        };
        if s.security == Security::Starttls {
            let params = self
                .tls
                .clone()
                .ok_or_else(|| SendError::Outage("no TLS parameters".into()))?;
            conn.starttls(params, &hello)
                .await
                .map_err(|e| outage("cannot start TLS with", e))?;
        }
        // lettre reads the EHLO reply but keeps only the extensions it knows, and PIPELINING
        // is not one of them: ask once more, before any login (RFC 5321 §4.1.4 allows it; it
        // resets only a mail transaction). A server that refuses a second EHLO is asked
        // step by step.
        let ehlo = tokio::time::timeout(s.timeout, conn.command(Ehlo::new(hello)))
            .await
            .map_err(|_| {
                SendError::Outage(redact(&format!(
                    "no answer to EHLO from {}:{}",
                    s.host, s.port
                )))
            })?;
        let pipelining = match ehlo {
            Ok(reply) => offers_pipelining(&reply),
            Err(e) if e.is_transient() || e.is_permanent() => false,
            Err(e) => return Err(outage("cannot greet", e)),
        };
        Ok(Session {
            conn,
            pipelining,
            ahead: None,
        })
    }

    /// Log in with an OAuth2 access token (SASL XOAUTH2; lettre has no OAUTHBEARER). A
    /// token the server refuses is replaced once, on a new connection. A token that cannot
    /// be had, or is refused twice, is an outage of the transport: mail stays queued.
    async fn oauth2_session(&self, tokens: &TokenSource, user: &str) -> Result<Session, SendError> {
        let s = &self.server;
        let no_token = |e: crate::oauth2::TokenError| {
            SendError::Outage(redact(&format!("cannot get an OAuth2 token: {e}")))
        };
        let login =
            |token: &AccessToken| Credentials::new(user.to_string(), token.expose().to_string());
        let token = tokens.token().await.map_err(no_token)?;
        let mut session = self.connect().await?;
        match session
            .conn
            .auth(&[Mechanism::Xoauth2], &login(&token))
            .await
        {
            Ok(_) => return Ok(session),
            Err(e) if crate::oauth2::smtp::is_auth_rejection(&e) => {
                session.conn.abort().await;
                tracing::warn!(
                    event = "oauth2.smtp_refused",
                    "the SMTP server refused the access token; getting a new one"
                );
            }
            Err(e) => {
                return Err(SendError::Outage(redact(&format!(
                    "login refused by {}:{}: {e}",
                    s.host, s.port
                ))));
            }
        }
        let token = tokens
            .refresh_after_rejection(&token)
            .await
            .map_err(no_token)?;
        let mut session = self.connect().await?;
        session
            .conn
            .auth(&[Mechanism::Xoauth2], &login(&token))
            .await
            .map_err(|e| {
                SendError::Outage(redact(&format!(
                    "{}:{} refused the OAuth2 token twice (does the app have the send permission, SMTP.SendAsApp, and is SMTP AUTH on for the mailbox?): {e}",
                    s.host, s.port
                )))
            })?;
        Ok(session)
    }

    async fn send(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        next: Option<(&Envelope, &[u8])>,
    ) -> Result<(), SendError> {
        let mut open = self.open.lock().await;
        if let Some((mut session, since)) = open.take() {
            if since.elapsed() <= SESSION_IDLE {
                let mut stage = Stage::Before;
                match Self::transaction(&mut session, envelope, raw, next, &mut stage).await {
                    Ok(()) => {
                        *open = Some((session, std::time::Instant::now()));
                        return Ok(());
                    }
                    // The server ended the session it kept open (a limit per session, an
                    // idle timeout) before taking this mail, or the session was written
                    // ahead for another mail: a new session, as below.
                    Err(_) if stage == Stage::Before => session.end(stage).await,
                    Err(e) => {
                        session.end(stage).await;
                        return Err(e);
                    }
                }
            } else {
                session.end(Stage::Before).await;
            }
        }
        let mut session = self.session().await?;
        let mut stage = Stage::Before;
        let result = Self::transaction(&mut session, envelope, raw, next, &mut stage).await;
        if result.is_ok() {
            *open = Some((session, std::time::Instant::now()));
        } else {
            session.end(stage).await;
        }
        result
    }

    /// End the session kept open for the next message.
    async fn close(&self) {
        if let Some((session, _)) = self.open.lock().await.take() {
            session.end(Stage::Before).await;
        }
    }

    /// One mail transaction, pipelined if the server offers it. `stage` says how far it got.
    /// With `next`, that mail's MAIL FROM, RCPT TO and DATA are written behind the message
    /// ([`Session::ahead`]).
    async fn transaction(
        session: &mut Session,
        envelope: &Envelope,
        raw: &[u8],
        next: Option<(&Envelope, &[u8])>,
        stage: &mut Stage,
    ) -> Result<(), SendError> {
        let info = session.conn.server_info();
        let group = Self::group(info, envelope, raw)?;
        let ahead = next
            .filter(|_| session.pipelining)
            .and_then(|(envelope, raw)| Self::group(info, envelope, raw).ok())
            .map(|g| g.to_string());
        // This mail's commands went out behind the last message, or none did: the server
        // waits for another mail's message, and this session cannot send this one.
        let written = match session.ahead.take() {
            None => false,
            Some(text) if text == group.to_string() => true,
            Some(text) => {
                session.ahead = Some(text);
                return Err(SendError::Outage(
                    "the session was written ahead for another mail".into(),
                ));
            }
        };
        let conn = &mut session.conn;
        let data = if session.pipelining {
            Self::pipelined(conn, group, written, stage).await?
        } else {
            let Group { mail, rcpts } = group;
            // Our own sender refused for good is a problem of the configuration, for every
            // mail alike: an outage.
            conn.command(mail)
                .await
                .map_err(|e| judge("MAIL FROM", e, SendError::Outage))?;
            *stage = Stage::Started;
            for rcpt in rcpts {
                conn.command(rcpt)
                    .await
                    .map_err(|e| judge("RCPT TO", e, SendError::RecipientRefused))?;
            }
            let data = conn
                .command(Data)
                .await
                .map_err(|e| judge("DATA", e, SendError::Permanent))?;
            *stage = Stage::InData;
            data
        };
        if !data.has_code(354) {
            return Err(SendError::Outage(format!(
                "DATA: the server answered {} instead of 354",
                data.code()
            )));
        }
        let (sent, appended) = send_data(conn, raw, ahead.as_deref()).await;
        if appended {
            session.ahead = ahead;
        }
        // A session written ahead waited for this mail; a server that ended it meanwhile
        // (its timeout: 421, RFC 5321 §3.8) took nothing of it. As for a kept session the
        // server ended, a new session sends the mail at once ([`SmtpSender::send`]).
        if written
            && sent
                .as_ref()
                .err()
                .and_then(|e| e.status())
                .is_some_and(|code| u16::from(code) == 421)
        {
            *stage = Stage::Before;
            return Err(SendError::Outage(
                "the server ended the session written ahead for this mail".into(),
            ));
        }
        // A reply to the end of the message, positive or not, ends DATA.
        if sent.as_ref().err().is_none_or(is_reply) {
            *stage = Stage::Started;
        }
        sent.map_err(|e| judge("end of DATA", e, SendError::Permanent))?;
        Ok(())
    }

    /// The MAIL FROM (with SMTPUTF8 and 8BITMIME as the mail needs them) and RCPT TOs of
    /// a mail; refused when the server cannot take it.
    fn group(info: &ServerInfo, envelope: &Envelope, raw: &[u8]) -> Result<Group, SendError> {
        let mut options = Vec::new();
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(SendError::Permanent(
                    "the address is not ASCII and the server has no SMTPUTF8".into(),
                ));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !raw.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(SendError::Permanent(
                    "the message is 8-bit and the server has no 8BITMIME".into(),
                ));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(Group {
            mail: Mail::new(envelope.from().cloned(), options),
            rcpts: envelope
                .to()
                .iter()
                .map(|to| Rcpt::new(to.clone(), vec![]))
                .collect(),
        })
    }

    /// MAIL FROM, the RCPT TOs and DATA in one write (RFC 2920), then their replies in
    /// order. Each is judged as in the dialogue step by step and the first refusal decides
    /// (a refused recipient, not the DATA refused after it). Returns the reply to DATA.
    async fn pipelined(
        conn: &mut AsyncSmtpConnection,
        group: Group,
        written: bool,
        stage: &mut Stage,
    ) -> Result<Response, SendError> {
        // A negative reply is remembered (unless an earlier one was) and the next one is
        // read; a failure without a reply (the connection dropped, garbage) ends the reading.
        fn note(
            failure: &mut Option<SendError>,
            step: &str,
            e: lettre::transport::smtp::Error,
            permanent: fn(String) -> SendError,
        ) -> Result<(), SendError> {
            let reply = is_reply(&e);
            let first = failure.get_or_insert_with(|| judge(step, e, permanent));
            if reply { Ok(()) } else { Err(first.clone()) }
        }
        let recipients = group.rcpts.len();
        let mut failure = None;
        let first = if written {
            // Written behind the last message ([`Session::ahead`]): only the replies.
            conn.read_response().await
        } else {
            conn.command(group).await
        };
        match first {
            // Our own sender refused for good: an outage, as step by step.
            Err(e) => note(&mut failure, "MAIL FROM", e, SendError::Outage)?,
            Ok(_) => *stage = Stage::Started,
        }
        for _ in 0..recipients {
            if let Err(e) = conn.read_response().await {
                note(&mut failure, "RCPT TO", e, SendError::RecipientRefused)?;
            }
        }
        match conn.read_response().await {
            Ok(data) => {
                // Any positive reply: the server may be waiting for the message.
                *stage = Stage::InData;
                match failure {
                    Some(first) => Err(first),
                    None => Ok(data),
                }
            }
            Err(e) => Err(failure.unwrap_or_else(|| judge("DATA", e, SendError::Permanent))),
        }
    }
}

/// A reply to the mail: 4xx transient, 5xx as `permanent` says; anything else (the
/// connection dropped, a timeout) is the session failing.
fn judge(
    step: &str,
    e: lettre::transport::smtp::Error,
    permanent: fn(String) -> SendError,
) -> SendError {
    let text = redact(&format!("{step}: {e}"));
    if e.is_transient() {
        SendError::Transient(text)
    } else if e.is_permanent() {
        permanent(text)
    } else {
        SendError::Outage(text)
    }
}

/// The error is the server's negative reply (the session goes on), not a failure of it.
fn is_reply(e: &lettre::transport::smtp::Error) -> bool {
    e.is_transient() || e.is_permanent()
}

/// An EHLO reply names PIPELINING (a keyword on a line after the first).
fn offers_pipelining(ehlo: &Response) -> bool {
    ehlo.message().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
    })
}

/// The message after DATA's 354, dot-stuffed, with its end mark in ONE write. lettre's
/// `message` writes the two apart, and each write wakes the server (on loopback, the other
/// CPU): the sender's most frequent system call on a backlog. lettre's `command` writes
/// any text and reads the reply, so a message that is text goes through it; anything else
/// (not UTF-8) through `message`, as before.
/// Write the message and its end mark, and `ahead` (the next mail's commands) behind them
/// in the same write when the message is text; read the reply to the message. Returns
/// whether `ahead` was written.
async fn send_data(
    conn: &mut AsyncSmtpConnection,
    raw: &[u8],
    ahead: Option<&str>,
) -> (
    Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
    bool,
) {
    match std::str::from_utf8(raw) {
        Ok(text) => {
            let mut block = dot_stuffed(text);
            if let Some(ahead) = ahead {
                block.push_str(ahead);
            }
            (conn.command(DataBlock(block)).await, ahead.is_some())
        }
        Err(_) => (conn.message(raw).await, false),
    }
}

/// Text for [`send_data`]: written as it is.
struct DataBlock(String);

impl std::fmt::Display for DataBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` as SMTP's DATA carries it (RFC 5321 4.5.2, as lettre's codec does it): a `.` that
/// begins a line is doubled, and `CRLF . CRLF` ends it. A line begins at the start and after
/// CR LF only (lettre's codec: not after a bare LF or CR). The lines are found with memmem,
/// not character by character: every message a backlog sends passes here.
fn dot_stuffed(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 64 + 5);
    if text.starts_with('.') {
        out.push('.');
    }
    let mut from = 0;
    for at in memchr::memmem::find_iter(text.as_bytes(), b"\r\n.") {
        // `at + 3` is past the ASCII dot: a character boundary.
        out.push_str(&text[from..at + 3]);
        out.push('.');
        from = at + 3;
    }
    out.push_str(&text[from..]);
    out.push_str("\r\n.\r\n");
    out
}

/// Write atomically: a reader of the folder never sees half a message.
/// The folder and files are owner-only: raw mail is confidential.
fn write_file(dir: &Path, stem: &str, raw: &[u8]) -> std::io::Result<()> {
    crate::store::create_private_dir(dir)?;
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let tmp = dir.join(format!(".{safe}.tmp"));
    crate::export::person::write_private(&tmp, raw)?;
    std::fs::rename(&tmp, dir.join(format!("{safe}.eml")))
}

/// `[mailbox] sent_folder`: append a copy of a sent mail to that IMAP folder, marked
/// read. klachtpost never reads the folder, so the copy is never taken in as new mail. A
/// failure is logged and otherwise ignored: the mail itself went out.
pub async fn copy_to_sent_folder(config: &Config, raw: &[u8]) {
    let crate::config::Mailbox::Imap {
        server,
        sent_folder: Some(folder),
        ..
    } = &config.mailbox
    else {
        return;
    };
    let append = async {
        let mut session = crate::fetch::login(server).await?;
        // Created when missing; "already exists" is no error here.
        let _ = session.create(folder).await;
        session
            .append(folder, Some("(\\Seen)"), None, raw)
            .await
            .with_context(|| format!("cannot append to {folder}"))?;
        let _ = session.logout().await;
        anyhow::Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(60), append).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(
            event = "outbox.sent_copy_failed",
            error = %redact(&format!("{e:#}")),
            "sent, but no copy in the sent folder"
        ),
        Err(_) => tracing::warn!(
            event = "outbox.sent_copy_failed",
            error = "timed out",
            "sent, but no copy in the sent folder"
        ),
    }
}

fn tls_parameters(server: &ServerSettings) -> Result<TlsParameters> {
    let mut b = TlsParameters::builder(server.host.clone());
    if let Some(ca) = &server.ca_file {
        let pem = std::fs::read(ca)
            .with_context(|| format!("cannot read the CA file {}", ca.display()))?;
        b = b.add_root_certificate(
            Certificate::from_pem(&pem)
                .with_context(|| format!("no certificate in {}", ca.display()))?,
        );
    }
    b.build().context("cannot set up TLS for SMTP")
}

/// `check-config`: connect (and log in) to the SMTP server, or check the folder/command.
pub async fn check(config: &Config) -> Result<String> {
    match &config.outgoing.transport {
        Transport::Smtp(server) => {
            let t = SmtpSender::new(server)?;
            match t.session().await {
                Ok(mut session) => {
                    let _ = session.conn.quit().await;
                    Ok(format!(
                        "connected to {}:{}{}",
                        server.host,
                        server.port,
                        match (&server.auth, &server.username) {
                            (Auth::OAuth2(_), Some(_)) => " and logged in with OAuth2 (XOAUTH2)",
                            (_, Some(_)) => " and logged in",
                            _ => "",
                        }
                    ))
                }
                Err(e) => Err(anyhow::anyhow!("{e}")),
            }
        }
        Transport::Sendmail { command } => {
            if std::fs::metadata(command).is_ok() {
                Ok(format!("sendmail command {} exists", command.display()))
            } else {
                anyhow::bail!("sendmail command {} does not exist", command.display())
            }
        }
        Transport::File { dir } => {
            crate::store::create_private_dir(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Ok(format!("outgoing mail is written to {}", dir.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_redacted_from_smtp_replies() {
        assert_eq!(
            redact("550 5.1.1 <jan.de-vries+x@client.example.nl>: Recipient address rejected"),
            "550 5.1.1 <redacted>: Recipient address rejected"
        );
        assert_eq!(
            redact("RCPT TO: 553 sorry, anna@firma.nl is not allowed; neither is b@c"),
            "RCPT TO: 553 sorry, <redacted> is not allowed; neither is <redacted>"
        );
        assert_eq!(
            redact("535 5.7.8 Error: authentication failed"),
            "535 5.7.8 Error: authentication failed"
        );
        assert_eq!(redact("a lone @ sign"), "a lone @ sign");
        assert_eq!(redact("user@[127.0.0.1] said no"), "<redacted> said no");
    }

    #[test]
    fn data_is_dot_stuffed_as_lettre_does_and_ends_with_its_mark() {
        assert_eq!(dot_stuffed("a\r\nb"), "a\r\nb\r\n.\r\n");
        // A dot at the start of the data and of a line is doubled; elsewhere not.
        assert_eq!(
            dot_stuffed(".x\r\n.\r\na.b\r\n..y"),
            "..x\r\n..\r\na.b\r\n...y\r\n.\r\n"
        );
        // Only CR LF starts a line (lettre's codec): not a bare LF, nor CR then a dot.
        assert_eq!(dot_stuffed("a\n.b\r.c"), "a\n.b\r.c\r\n.\r\n");
        assert_eq!(dot_stuffed("é\r\n.ü"), "é\r\n..ü\r\n.\r\n");
        // Lines one after another, and a CR before the CR LF.
        assert_eq!(
            dot_stuffed("\r\n.\r\n.\r\r\n.x"),
            "\r\n..\r\n..\r\r\n..x\r\n.\r\n"
        );
        assert_eq!(dot_stuffed("."), "..\r\n.\r\n");
        assert_eq!(dot_stuffed(""), "\r\n.\r\n");
    }

    #[test]
    fn a_pipelined_group_is_mail_from_every_rcpt_to_and_data_last() {
        let address = |a: &str| a.parse::<lettre::Address>().unwrap();
        let group = Group {
            mail: Mail::new(
                Some(address("klachten@firma.nl")),
                vec![MailParameter::Body(MailBodyParameter::EightBitMime)],
            ),
            rcpts: vec![
                Rcpt::new(address("jan@client.example"), vec![]),
                Rcpt::new(address("anna@firma.nl"), vec![]),
            ],
        };
        assert_eq!(
            group.to_string(),
            "MAIL FROM:<klachten@firma.nl> BODY=8BITMIME\r\n\
             RCPT TO:<jan@client.example>\r\n\
             RCPT TO:<anna@firma.nl>\r\n\
             DATA\r\n"
        );
    }

    #[test]
    fn pipelining_is_read_from_the_ehlo_reply() {
        use lettre::transport::smtp::response::{Category, Code, Detail, Severity};
        let ehlo = |lines: &[&str]| {
            Response::new(
                Code::new(
                    Severity::PositiveCompletion,
                    Category::MailSystem,
                    Detail::Zero,
                ),
                lines.iter().map(|l| l.to_string()).collect(),
            )
        };
        assert!(offers_pipelining(&ehlo(&[
            "mx.firma.nl",
            "SIZE 10240000",
            "pipelining",
            "8BITMIME"
        ])));
        assert!(!offers_pipelining(&ehlo(&[
            "mx.firma.nl",
            "SIZE 10240000",
            "8BITMIME"
        ])));
        // The server's name and greeting are no keyword.
        assert!(!offers_pipelining(&ehlo(&["PIPELINING"])));
        assert!(!offers_pipelining(&ehlo(&[
            "mx",
            "XPIPELINING",
            "X-PIPELINING-2"
        ])));
    }
}
