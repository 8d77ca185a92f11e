//! A TCP proxy on 127.0.0.1 that can freeze: while frozen it forwards nothing in either
//! direction and holds what it receives, as a server that stops answering mid-command
//! does (the connection stays open, no RST, no FIN). Thawing forwards again.
//!
//! `cut_on(b"UID SEARCH")` closes each connection when that command comes, instead.
//!
//! `freeze_on(b"UID FETCH")` freezes at the moment the client sends a chunk containing
//! those bytes (the chunk is held too), so a test can make exactly one command hang.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Default)]
struct Rules {
    trigger: Option<Vec<u8>>,
    /// Close the connection whenever the client sends a chunk containing these bytes.
    cut: Option<Vec<u8>>,
    /// How many client chunks froze the proxy.
    triggered: usize,
}

/// A running proxy; stopped (every connection dropped) when dropped.
#[derive(Debug)]
pub struct FreezingProxy {
    pub port: u16,
    frozen: Arc<watch::Sender<bool>>,
    rules: Arc<Mutex<Rules>>,
    accepted: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl FreezingProxy {
    /// Listens on a fresh port of 127.0.0.1 and forwards to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> FreezingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let (frozen, frozen_rx) = watch::channel(false);
        let frozen = Arc::new(frozen);
        let rules = Arc::new(Mutex::new(Rules::default()));
        let accepted = Arc::new(Mutex::new(0));
        let task = tokio::spawn({
            let (frozen, rules, accepted) = (frozen.clone(), rules.clone(), accepted.clone());
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    *accepted.lock().unwrap() += 1;
                    let (frozen, frozen_rx, rules) =
                        (frozen.clone(), frozen_rx.clone(), rules.clone());
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                            return;
                        };
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        let up = pump(cr, sw, frozen_rx.clone(), Some((frozen, rules)));
                        let down = pump(sr, cw, frozen_rx, None);
                        tokio::select! {
                            _ = up => {}
                            _ = down => {}
                        }
                    });
                }
            }
        });
        FreezingProxy {
            port,
            frozen,
            rules,
            accepted,
            task,
        }
    }

    /// Freeze the next time the client sends bytes containing `needle`.
    pub fn freeze_on(&self, needle: &[u8]) {
        self.rules.lock().unwrap().trigger = Some(needle.to_vec());
    }

    /// Close every connection whose client sends bytes containing `needle` (before they
    /// reach the server), until [`FreezingProxy::stop_cutting`]: a server that accepts the
    /// login and then fails a later command.
    pub fn cut_on(&self, needle: &[u8]) {
        self.rules.lock().unwrap().cut = Some(needle.to_vec());
    }

    pub fn stop_cutting(&self) {
        self.rules.lock().unwrap().cut = None;
    }

    /// How many times a trigger froze the proxy.
    pub fn triggered(&self) -> usize {
        self.rules.lock().unwrap().triggered
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        *self.accepted.lock().unwrap()
    }

    pub fn thaw(&self) {
        self.rules.lock().unwrap().trigger = None;
        self.frozen.send_replace(false);
    }
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The client side's freeze switch and its rule.
type Trigger = (Arc<watch::Sender<bool>>, Arc<Mutex<Rules>>);

/// Copy `from` → `to`, holding everything while frozen. For the client side, a chunk that
/// contains the trigger freezes the proxy before it is forwarded.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    trigger: Option<Trigger>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some((freeze, rules)) = &trigger {
            let mut r = rules.lock().unwrap();
            if let Some(needle) = &r.cut
                && buf[..n]
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice())
            {
                return;
            }
            if let Some(needle) = &r.trigger
                && buf[..n]
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice())
            {
                r.trigger = None;
                r.triggered += 1;
                freeze.send_replace(true);
            }
        }
        // Hold the bytes until thawed.
        while *frozen.borrow_and_update() {
            if frozen.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::ZERO).await;
    }
}
