//! A minimal HTTP/1.1 client for the token endpoint: one `POST` of a form, one JSON answer,
//! one connection per request (`Connection: close`). HTTPS goes through the same rustls
//! set-up as IMAP ([`crate::tls`]: the web roots plus `ca_file`). Plain `http://` is
//! accepted only for a loopback host (127.0.0.0/8, `::1`, `localhost`), for tests and a
//! local token helper: a token or secret never crosses a network unencrypted.
//!
//! Why not a full HTTP client crate: a token request is one small request a few times an
//! hour; this keeps the dependency tree (and the build on small machines) as it was.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

/// The longest a whole request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Token responses are small; anything larger is not one.
const MAX_RESPONSE: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Url(String),
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("TLS handshake with {host} failed: {source}")]
    Handshake {
        host: String,
        source: std::io::Error,
    },
    #[error("cannot talk to {host}: {source}")]
    Io {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} did not answer within {TIMEOUT:?}")]
    Timeout { host: String },
    #[error("{host} sent a malformed HTTP response: {what}")]
    Malformed { host: String, what: String },
}

/// An HTTP response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The parts of an `http(s)://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
}

/// Parse a token or device endpoint URL, refusing plain http except on loopback.
pub fn check_url(url: &str) -> Result<Url, HttpError> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(HttpError::Url(format!("{url:?} is not an https:// URL")));
    };
    let (authority, target) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err(HttpError::Url(format!(
            "{url:?}: credentials do not belong in the URL"
        )));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| HttpError::Url(format!("{url:?}: unclosed [ in the host")))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| HttpError::Url(format!("{url:?}: {p:?} is not a port")))?,
        None if https => 443,
        None => 80,
    };
    if host.is_empty() {
        return Err(HttpError::Url(format!("{url:?} has no host")));
    }
    if !https && !is_loopback(&host) {
        return Err(HttpError::Url(format!(
            "plain http is only allowed to a loopback address, not {host:?}: use https://"
        )));
    }
    Ok(Url {
        https,
        host,
        port,
        target,
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `application/x-www-form-urlencoded` (the WHATWG rules: unreserved kept, space as `+`).
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fn enc(out: &mut String, s: &str) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(&mut out, k);
        out.push('=');
        enc(&mut out, v);
    }
    out
}

/// `POST` a form to `url` and read the whole answer.
pub async fn post_form(
    url: &str,
    fields: &[(&str, &str)],
    ca_file: Option<&Path>,
) -> Result<Response, HttpError> {
    let u = check_url(url)?;
    let host = u.host.clone();
    tokio::time::timeout(TIMEOUT, post(u, form_encode(fields), ca_file))
        .await
        .map_err(|_| HttpError::Timeout { host })?
}

async fn post(u: Url, body: String, ca_file: Option<&Path>) -> Result<Response, HttpError> {
    let tcp = TcpStream::connect((u.host.as_str(), u.port))
        .await
        .map_err(|source| HttpError::Connect {
            host: u.host.clone(),
            port: u.port,
            source,
        })?;
    let host_header = if u.host.contains(':') {
        format!("[{}]", u.host)
    } else {
        u.host.clone()
    };
    let default_port = if u.https { 443 } else { 80 };
    let host_header = if u.port == default_port {
        host_header
    } else {
        format!("{host_header}:{}", u.port)
    };
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: klachtpost/{}\r\nAccept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        u.target,
        env!("CARGO_PKG_VERSION"),
        body.len(),
    );
    let raw = if u.https {
        let config = crate::tls::client_config(ca_file)?;
        let name = ServerName::try_from(u.host.clone())
            .map_err(|_| HttpError::Url(format!("{:?} is not a valid TLS name", u.host)))?;
        let stream = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|source| HttpError::Handshake {
                host: u.host.clone(),
                source,
            })?;
        exchange(stream, request.as_bytes(), &u.host).await?
    } else {
        exchange(tcp, request.as_bytes(), &u.host).await?
    };
    parse_response(&raw).map_err(|what| HttpError::Malformed { host: u.host, what })
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    host: &str,
) -> Result<Vec<u8>, HttpError> {
    let io = |source| HttpError::Io {
        host: host.to_string(),
        source,
    };
    stream.write_all(request).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_RESPONSE {
                    return Err(HttpError::Malformed {
                        host: host.to_string(),
                        what: format!("more than {MAX_RESPONSE} bytes"),
                    });
                }
                // A server that keeps the connection open despite `Connection: close`:
                // stop once the announced body is complete.
                if let Ok(Some(_)) = complete(&raw) {
                    break;
                }
            }
            // Some TLS servers close without close_notify; what arrived is judged below.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(io(e)),
        }
    }
    Ok(raw)
}

/// `Ok(Some(len))` once `raw` holds a whole response: a Content-Length body, or a chunked
/// one with its last chunk.
fn complete(raw: &[u8]) -> Result<Option<usize>, String> {
    let Some(end) = find(raw, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    for line in head.lines().skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("content-length") {
            let n: usize = v.trim().parse().map_err(|_| "bad Content-Length")?;
            return Ok((raw.len() >= end + 4 + n).then_some(end + 4 + n));
        }
        if k.trim().eq_ignore_ascii_case("transfer-encoding")
            && v.to_ascii_lowercase().contains("chunked")
        {
            let body = &raw[end + 4..];
            let done = body.starts_with(b"0\r\n\r\n") || body.ends_with(b"\r\n0\r\n\r\n");
            return Ok(done.then_some(raw.len()));
        }
    }
    Ok(None)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Status line, headers, and a body by Content-Length, chunked, or up to the close.
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(format!("not an HTTP/1 status line: {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("no status code")?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if k.eq_ignore_ascii_case("transfer-encoding")
            && v.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or("the body is shorter than announced")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or("unterminated chunk size")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("a chunk is cut short")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("a chunk is cut short")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_https_except_on_loopback() {
        let u = check_url("https://login.microsoftonline.com/x/oauth2/v2.0/token").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.target.as_str()),
            (
                true,
                "login.microsoftonline.com",
                443,
                "/x/oauth2/v2.0/token"
            )
        );
        let u = check_url("http://127.0.0.1:8080/token").unwrap();
        assert_eq!((u.https, u.port), (false, 8080));
        assert!(check_url("http://[::1]:81/t").is_ok());
        assert!(check_url("http://localhost/t").is_ok());
        assert!(check_url("http://login.example.org/token").is_err());
        assert!(check_url("http://10.0.0.1/token").is_err());
        assert!(check_url("ftp://x/").is_err());
        assert!(check_url("https://user:pw@x/").is_err());
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            form_encode(&[("scope", "https://mail.google.com/ a"), ("x", "ä&=")]),
            "scope=https%3A%2F%2Fmail.google.com%2F+a&x=%C3%A4%26%3D"
        );
    }

    #[test]
    fn responses_by_length_chunked_and_close() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}xx").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse_response(
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=1\r\n\":1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"{\"a\":1}"[..]));
        let r = parse_response(b"HTTP/1.0 200 OK\r\n\r\nabc").unwrap();
        assert_eq!(r.body, b"abc");
        assert!(parse_response(b"SMTP 200\r\n\r\n").is_err());
        assert_eq!(
            complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap(),
            Some(40)
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n";
        assert_eq!(complete(chunked).unwrap(), None);
        let whole = [&chunked[..], b"0\r\n\r\n"].concat();
        assert_eq!(complete(&whole).unwrap(), Some(whole.len()));
    }
}
