//! The IMAP connection's bytes: TCP with keepalive, optionally TLS on top, and an
//! inactivity limit under both so that no IMAP step can hang.
//!
//! The limit is on *inactivity*, not on total time: a read or write that makes no progress
//! for `limit` fails with [`std::io::ErrorKind::TimedOut`], so a 40 MB FETCH that keeps
//! flowing is fine while a server that stops answering mid-command is given up after
//! `limit`. It sits under TLS, so the TLS handshake is covered too. While IDLE waits for
//! the server on purpose, [`ImapStream::limit`] lengthens it for that wait.
//!
//! TCP keepalive (RFC 1122 §4.2.3.6) makes the kernel notice a peer that vanished without a
//! FIN (a NAT that forgot us, a server that lost power) during a long IDLE.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::client::TlsStream;

/// Keepalive probes start after this long without traffic …
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// … are repeated this often …
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// … and the connection is dropped after this many unanswered ones (about 2 minutes).
const KEEPALIVE_RETRIES: u32 = 4;

/// Connect with a time limit, switch on keepalive and Nagle-off, and wrap in the
/// inactivity limit.
pub async fn connect(host: &str, port: u16, limit: Duration) -> io::Result<TimedTcp> {
    let tcp = tokio::time::timeout(limit, TcpStream::connect((host, port)))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {}s", limit.as_secs_f32()),
            )
        })??;
    set_keepalive(&tcp)?;
    tcp.set_nodelay(true)?;
    Ok(TimedTcp::new(tcp, limit))
}

/// Switch on TCP keepalive with the intervals above.
pub fn set_keepalive(tcp: &TcpStream) -> io::Result<()> {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive)
}

/// A TCP stream whose reads and writes fail after `limit` without progress.
#[derive(Debug)]
pub struct TimedTcp {
    inner: TcpStream,
    /// Milliseconds; shared so that the limit can change while async-imap owns the stream.
    limit: Arc<AtomicU64>,
    /// The last time bytes moved (or the connection was made).
    last: Instant,
    /// The server closed the connection (a read returned end of file).
    eof: bool,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
}

impl TimedTcp {
    fn new(inner: TcpStream, limit: Duration) -> TimedTcp {
        let now = Instant::now();
        TimedTcp {
            inner,
            limit: Arc::new(AtomicU64::new(millis(limit))),
            last: now,
            eof: false,
            read_timer: Box::pin(tokio::time::sleep_until(now)),
            write_timer: Box::pin(tokio::time::sleep_until(now)),
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.inner
    }

    fn limit(&self) -> Duration {
        Duration::from_millis(self.limit.load(Ordering::Relaxed))
    }

    /// Pending on the inner stream: fail once `limit` has passed since the last progress,
    /// else make sure the task is woken at that moment.
    fn poll_stalled<T>(&mut self, cx: &mut Context<'_>, write: bool) -> Poll<io::Result<T>> {
        let limit = self.limit();
        let deadline = self.last + limit;
        let timer = if write {
            &mut self.write_timer
        } else {
            &mut self.read_timer
        };
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the IMAP server did not {} for {}s",
                    if write { "take our data" } else { "answer" },
                    limit.as_secs_f32()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl AsyncRead for TimedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.last = Instant::now();
                if r.is_ok() && buf.filled().len() == before && buf.remaining() > 0 {
                    this.eof = true;
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_stalled(cx, false),
        }
    }
}

impl AsyncWrite for TimedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.last = Instant::now();
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_stalled(cx, true),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.poll_stalled(cx, true),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Changes the inactivity limit of one connection.
#[derive(Debug, Clone)]
pub struct Limit(Arc<AtomicU64>);

impl Limit {
    pub fn set(&self, limit: Duration) {
        self.0.store(millis(limit), Ordering::Relaxed);
    }
}

/// A plain or TLS connection, so one session type serves every security mode.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TimedTcp),
    Tls(Box<TlsStream<TimedTcp>>),
}

impl ImapStream {
    fn timed(&self) -> &TimedTcp {
        match self {
            ImapStream::Plain(s) => s,
            ImapStream::Tls(s) => s.get_ref().0,
        }
    }

    /// A handle to change the inactivity limit, also while async-imap holds the stream
    /// (IDLE waits longer on purpose, then restores it).
    pub fn limit(&self) -> Limit {
        Limit(self.timed().limit.clone())
    }

    /// Whether the server closed the connection. A command cut off by that can look
    /// like an empty answer to async-imap (a SEARCH that found nothing), so callers check.
    pub fn closed(&self) -> bool {
        self.timed().eof
    }

    /// The underlying TCP connection (to check its socket options).
    pub fn tcp(&self) -> &TcpStream {
        self.timed().tcp()
    }
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
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
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn keepalive_is_on_and_a_silent_peer_times_out_but_a_slow_one_does_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // Trickle: a byte every 150 ms, 6 times (longer in total than the limit).
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                s.write_all(b"x").await.unwrap();
            }
            // Then silence, connection kept open.
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let limit = Duration::from_millis(400);
        let mut s = connect("127.0.0.1", port, limit).await.unwrap();
        assert!(socket2::SockRef::from(s.tcp()).keepalive().unwrap());
        assert_eq!(
            socket2::SockRef::from(s.tcp())
                .tcp_keepalive_time()
                .unwrap(),
            KEEPALIVE_IDLE
        );
        let mut got = [0u8; 6];
        s.read_exact(&mut got).await.expect("a slow peer is fine");
        let started = std::time::Instant::now();
        let e = s.read(&mut [0u8; 1]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        server.abort();
    }
}
