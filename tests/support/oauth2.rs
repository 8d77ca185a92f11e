//! A small OAuth2 authorization server for tests, on plain HTTP on 127.0.0.1 (klachtpost
//! allows http only for loopback). It serves:
//!
//! - `POST /token`: the client-credentials, refresh-token and device-code grants, handing
//!   out short-lived opaque access tokens (lifetime settable), optionally rotating the
//!   refresh token on each use; errors as Microsoft Entra ID words them (RFC 6749 §5.2 code
//!   plus an `AADSTS…` description).
//! - `POST /devicecode`: the device authorization endpoint (RFC 8628 §3.1).
//! - `POST /introspect`: RFC 7662 introspection for Dovecot's `oauth2` passdb:
//!   `{"active": true, "username": …}` for a live token, `{"active": false}` otherwise.
//! - anything else: 404 (as a wrong Microsoft tenant in the URL gives).
//!
//! [`TokenServer::start_tls`] serves the same over HTTPS with a [`TestCa`] certificate, for
//! the path real providers take (klachtpost trusts it through `[oauth2] ca_file`).
//!
//! One thread accepts, one short-lived thread per connection, `Connection: close`: Dovecot's
//! and klachtpost's clients both cope with that. Stopped when dropped.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::certs::TestCa;

/// The app registration the server knows.
pub const CLIENT_ID: &str = "klachtpost-test-app";

#[derive(Debug)]
struct State {
    client_secret: String,
    username: String,
    lifetime: Duration,
    rotate: bool,
    access: HashMap<String, Instant>,
    refresh: HashSet<String>,
    /// Device code → approved.
    devices: HashMap<String, bool>,
    /// Every successful grant, by grant type, in order.
    grants: Vec<String>,
    /// Every introspection request's verdict.
    introspections: Vec<bool>,
    counter: u64,
}

impl State {
    fn new_token(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{}-{}", self.counter, random())
    }

    fn issue(&mut self, grant: &str, with_refresh: bool) -> String {
        let token = self.new_token("at");
        self.access
            .insert(token.clone(), Instant::now() + self.lifetime);
        self.grants.push(grant.to_string());
        let mut json = format!(
            r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{}"#,
            self.lifetime.as_secs()
        );
        if with_refresh {
            let refresh = self.new_token("rt");
            self.refresh.insert(refresh.clone());
            json.push_str(&format!(r#","refresh_token":"{refresh}""#));
        }
        json.push('}');
        json
    }
}

fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// A running token server.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub client_secret: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// Starts a server whose tokens log in as `username` and live `lifetime`.
    pub fn start(username: &str, lifetime: Duration) -> TokenServer {
        TokenServer::start_with(username, lifetime, None)
    }

    /// The same over HTTPS, with `ca`'s server certificate (`localhost`, `127.0.0.1`).
    pub fn start_tls(username: &str, lifetime: Duration, ca: &TestCa) -> TokenServer {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca.cert_pem)
            .expect("open cert.pem")
            .map(|c| c.expect("parse cert.pem"))
            .collect();
        let key = PrivateKeyDer::from_pem_file(&ca.key_pem).expect("read key.pem");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("a usable server certificate");
        TokenServer::start_with(username, lifetime, Some(Arc::new(config)))
    }

    fn start_with(
        username: &str,
        lifetime: Duration,
        tls: Option<Arc<ServerConfig>>,
    ) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let client_secret = format!("secret-{}", random());
        let state = Arc::new(Mutex::new(State {
            client_secret: client_secret.clone(),
            username: username.to_string(),
            lifetime,
            rotate: false,
            access: HashMap::new(),
            refresh: HashSet::new(),
            devices: HashMap::new(),
            grants: Vec::new(),
            introspections: Vec::new(),
            counter: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let state = state.clone();
                            let tls = tls.clone();
                            std::thread::spawn(move || {
                                let _ = stream.set_nonblocking(false);
                                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                                match tls {
                                    None => serve(stream, &state),
                                    Some(config) => {
                                        let Ok(conn) = ServerConnection::new(config) else {
                                            return;
                                        };
                                        let mut tls = StreamOwned::new(conn, stream);
                                        serve(&mut tls, &state);
                                        tls.conn.send_close_notify();
                                        let _ = tls.flush();
                                    }
                                }
                            });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        TokenServer {
            base,
            client_secret,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }
    pub fn device_url(&self) -> String {
        format!("{}/devicecode", self.base)
    }
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.base)
    }

    /// Hand out a new refresh token on every refresh (and invalidate the old one).
    pub fn set_rotation(&self, rotate: bool) {
        self.state.lock().unwrap().rotate = rotate;
    }

    pub fn set_lifetime(&self, lifetime: Duration) {
        self.state.lock().unwrap().lifetime = lifetime;
    }

    /// The administrator deletes the client secret: the old one is refused from now on.
    pub fn revoke_client_secret(&self) {
        self.state.lock().unwrap().client_secret = format!("secret-{}", random());
    }

    /// A refresh token the server accepts (as if `oauth2 authorize` had run).
    pub fn new_refresh_token(&self) -> String {
        let mut s = self.state.lock().unwrap();
        let t = s.new_token("rt");
        s.refresh.insert(t.clone());
        t
    }

    pub fn is_refresh_token_valid(&self, token: &str) -> bool {
        self.state.lock().unwrap().refresh.contains(token)
    }

    /// An access token issued outside any grant (what a token command would print).
    pub fn new_access_token(&self) -> String {
        let mut s = self.state.lock().unwrap();
        let t = s.new_token("at");
        let expiry = Instant::now() + s.lifetime;
        s.access.insert(t.clone(), expiry);
        t
    }

    /// How many access tokens are still alive.
    pub fn live_tokens(&self) -> usize {
        let now = Instant::now();
        let s = self.state.lock().unwrap();
        s.access.values().filter(|expiry| now < **expiry).count()
    }

    /// The provider revokes every access token it has handed out (they stop working before
    /// their expiry, as after a password reset or a policy change).
    pub fn revoke_access_tokens(&self) {
        self.state.lock().unwrap().access.clear();
    }

    /// The person approves every pending device code.
    pub fn approve_devices(&self) {
        for approved in self.state.lock().unwrap().devices.values_mut() {
            *approved = true;
        }
    }

    pub fn pending_devices(&self) -> usize {
        self.state.lock().unwrap().devices.len()
    }

    /// The grant types of every token handed out so far, in order.
    pub fn grants(&self) -> Vec<String> {
        self.state.lock().unwrap().grants.clone()
    }

    /// How many introspections answered active / inactive.
    pub fn introspections(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        let active = s.introspections.iter().filter(|a| **a).count();
        (active, s.introspections.len() - active)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: impl Read + Write, state: &Mutex<State>) {
    let Some((path, body)) = read_request(&mut stream) else {
        return;
    };
    let form = parse_form(&body);
    let field = |k: &str| get(&form, k);
    let (status, json) = {
        let mut s = state.lock().unwrap();
        match path.as_str() {
            "/token" => token(&mut s, &form),
            "/devicecode" => {
                if field("client_id") != CLIENT_ID {
                    (
                        400,
                        error(
                            "unauthorized_client",
                            "AADSTS700016: Application not found in the directory",
                        ),
                    )
                } else {
                    let code = s.new_token("dc");
                    s.devices.insert(code.clone(), false);
                    (
                        200,
                        format!(
                            r#"{{"device_code":"{code}","user_code":"KLACHT-42","verification_uri":"https://microsoft.com/devicelogin","expires_in":60,"interval":1,"message":"To sign in, use a web browser"}}"#
                        ),
                    )
                }
            }
            "/introspect" => {
                let live = s
                    .access
                    .get(field("token"))
                    .is_some_and(|expiry| Instant::now() < *expiry);
                s.introspections.push(live);
                if live {
                    (
                        200,
                        format!(r#"{{"active":true,"username":"{}"}}"#, s.username),
                    )
                } else {
                    (200, r#"{"active":false}"#.to_string())
                }
            }
            _ => (404, error("not_found", "AADSTS90002: Tenant not found.")),
        }
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

fn get<'a>(form: &'a HashMap<String, String>, key: &str) -> &'a str {
    form.get(key).map(String::as_str).unwrap_or_default()
}

fn token(s: &mut State, form: &HashMap<String, String>) -> (u16, String) {
    let field = |k: &str| get(form, k);
    if field("client_id") != CLIENT_ID {
        return (
            400,
            error(
                "unauthorized_client",
                "AADSTS700016: Application with identifier was not found in the directory.",
            ),
        );
    }
    match field("grant_type") {
        "client_credentials" => {
            if field("client_secret") != s.client_secret {
                return (
                    401,
                    error(
                        "invalid_client",
                        "AADSTS7000215: Invalid client secret provided.",
                    ),
                );
            }
            (200, s.issue("client_credentials", false))
        }
        "refresh_token" => {
            let rt = field("refresh_token").to_string();
            if !s.refresh.contains(&rt) {
                return (
                    400,
                    error(
                        "invalid_grant",
                        "AADSTS70008: The provided refresh token has expired or been revoked.",
                    ),
                );
            }
            let rotate = s.rotate;
            if rotate {
                s.refresh.remove(&rt);
            }
            (200, s.issue("refresh_token", rotate))
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            match s.devices.get(field("device_code")).copied() {
                None => (400, error("expired_token", "AADSTS70019: code expired")),
                Some(false) => (400, error("authorization_pending", "AADSTS70016: pending")),
                Some(true) => {
                    s.devices.remove(field("device_code"));
                    (200, s.issue("device_code", true))
                }
            }
        }
        other => (
            400,
            error("unsupported_grant_type", &format!("grant {other}")),
        ),
    }
}

fn error(code: &str, description: &str) -> String {
    format!(r#"{{"error":"{code}","error_description":"{description}\r\nTrace ID: 0000"}}"#)
}

/// The path and body of one request.
fn read_request(stream: &mut impl Read) -> Option<(String, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let path = head.split_whitespace().nth(1)?.to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Some((path, body))
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((decode(k), decode(v)))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
