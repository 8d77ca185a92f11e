//! Raw bytes → [`ParsedMail`], with mail-parser.
//!
//! Parsing never fails: a message mail-parser cannot make sense of still yields a
//! `ParsedMail` (with `problem` set), so the raw bytes are stored and the mail is flagged
//! instead of lost.

mod skeleton;

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

/// A mailbox address with an optional display name. The address is kept as written,
/// compare with [`Address::normalized`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    pub name: Option<String>,
    pub address: String,
}

impl Address {
    pub fn new(name: Option<&str>, address: &str) -> Self {
        Self {
            name: name
                .map(|n| n.trim().trim_matches('"').trim().to_string())
                .filter(|n| !n.is_empty()),
            address: address.trim().to_string(),
        }
    }

    /// Lower-cased address, for comparisons (local parts are case-insensitive in practice).
    pub fn normalized(&self) -> String {
        self.address.to_ascii_lowercase()
    }

    /// The domain part, lower-cased.
    pub fn domain(&self) -> Option<String> {
        self.address
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} <{}>", self.address),
            None => write!(f, "<{}>", self.address),
        }
    }
}

/// One attachment (any non-body part), bytes decoded from its transfer encoding.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: Option<String>,
    /// e.g. `application/pdf`, `message/rfc822`.
    pub content_type: String,
    /// The decoded bytes, for the parts the classifier reads (attached mails, text and
    /// delivery reports) and any part up to [`KEEP_ATTACHMENT_BYTES`]; empty for a larger
    /// binary part, which stays in the raw mail only (bounded memory, issue 8).
    pub data: Vec<u8>,
    /// The decoded size.
    pub size: usize,
    /// An attached mail (message/rfc822 and friends): `data` is that mail's raw bytes.
    pub is_message: bool,
}

/// A binary attachment larger than this is not copied out of the mail when it is parsed.
pub const KEEP_ATTACHMENT_BYTES: usize = 1024 * 1024;

/// What klachtpost needs to know of a mail. Owned, so it outlives the raw buffer.
#[derive(Debug, Clone, Default)]
pub struct ParsedMail {
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// In-Reply-To ids, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// References ids, without angle brackets, oldest first.
    pub references: Vec<String>,
    pub from: Option<Address>,
    pub sender: Option<Address>,
    pub reply_to: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    /// Subject, decoded; empty when absent.
    pub subject: String,
    /// The Date header, if present and valid.
    pub date: Option<DateTime<Utc>>,
    /// The text of the mail: the text/plain body, or the HTML body turned into text.
    pub text: String,
    /// Top-level content type with its `report-type` when present, lower-cased:
    /// e.g. `multipart/report; report-type=delivery-status`.
    pub content_type: String,
    /// Every top-level header as (name, raw value), unfolded, in order.
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
    /// Set when the message could not be parsed as a mail (the raw bytes are still kept).
    pub problem: Option<String>,
}

impl ParsedMail {
    /// The first value of a header, case-insensitive name, trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// Whether a header is present at all.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The Return-Path as given: `Some("")` for the null sender `<>`.
    pub fn return_path(&self) -> Option<String> {
        self.header("Return-Path").map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .to_string()
        })
    }

    /// Attached mails, parsed.
    pub fn attached_messages(&self) -> impl Iterator<Item = ParsedMail> + '_ {
        self.attachments
            .iter()
            .filter(|a| a.is_message)
            .map(|a| parse(&a.data))
    }
}

/// Parse a raw message. Never panics on bad input, never fails: see [`ParsedMail::problem`].
/// A message with bare CR line endings (old Mac mail stores) is read with CRLF.
pub fn parse(raw: &[u8]) -> ParsedMail {
    let converted;
    let raw = if raw.contains(&b'\r') && !raw.contains(&b'\n') {
        converted = cr_to_crlf(raw);
        &converted[..]
    } else {
        raw
    };
    // A large mail: parsed without the bodies of its large binary attachments, which it
    // would only decode to drop (bounded memory, issue 8); whole when that is not certain.
    if raw.len() > KEEP_ATTACHMENT_BYTES
        && let Some(s) = skeleton::skeleton(raw, KEEP_ATTACHMENT_BYTES)
        && let Ok(Some(mail)) = std::panic::catch_unwind(|| parse_inner(&s.bytes, &s.cuts))
    {
        return mail;
    }
    let parsed = std::panic::catch_unwind(|| parse_inner(raw, &[]));
    match parsed {
        Ok(Some(mail)) => mail,
        Ok(None) => ParsedMail {
            problem: Some("not a mail message: no headers could be read".into()),
            text: String::from_utf8_lossy(raw).into_owned(),
            ..Default::default()
        },
        Err(_) => ParsedMail {
            problem: Some("the mail parser failed on this message".into()),
            text: String::from_utf8_lossy(raw).into_owned(),
            ..Default::default()
        },
    }
}

/// `raw` parsed; `cuts`: where a [`skeleton`] had a body cut out, and its size (`None` if
/// a cut is not an empty base64 attachment there: the skeleton was not read as expected).
fn parse_inner(raw: &[u8], cuts: &[skeleton::Cut]) -> Option<ParsedMail> {
    let msg = MessageParser::default().parse(raw)?;
    // mail-parser reads almost anything as "a header"; a mail has at least one it knows.
    if !msg.headers().iter().any(|h| !h.name.is_other()) {
        return None;
    }
    let cut = |part: &mail_parser::MessagePart<'_>| {
        cuts.iter()
            .find(|c| c.at == part.offset_body as usize)
            .map(|c| c.size)
    };
    let cut_parts = msg
        .attachments()
        .filter(|p| {
            cut(p).is_some()
                && p.encoding == mail_parser::Encoding::Base64
                && matches!(
                    p.body,
                    mail_parser::PartType::Binary(_) | mail_parser::PartType::InlineBinary(_)
                )
                && p.contents().is_empty()
        })
        .count();
    if cut_parts != cuts.len() {
        return None;
    }

    let first_addr = |a: Option<&mail_parser::Address>| -> Option<Address> {
        a.and_then(|a| a.first())
            .and_then(|a| a.address().map(|ad| Address::new(a.name(), ad)))
    };
    let all_addrs = |a: Option<&mail_parser::Address>| -> Vec<Address> {
        a.map(|a| {
            a.iter()
                .filter_map(|a| a.address().map(|ad| Address::new(a.name(), ad)))
                .collect()
        })
        .unwrap_or_default()
    };
    let ids = |v: &mail_parser::HeaderValue| -> Vec<String> {
        match v {
            mail_parser::HeaderValue::Text(t) => vec![clean_id(t)],
            mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| clean_id(t)).collect(),
            _ => Vec::new(),
        }
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
    };

    let headers = msg
        .headers()
        .iter()
        .map(|h| {
            let start = h.offset_start as usize;
            let end = (h.offset_end as usize).min(raw.len());
            let value = raw
                .get(start..end)
                .map(|b| unfold(&String::from_utf8_lossy(b)))
                .unwrap_or_default();
            (h.name.as_str().to_string(), value)
        })
        .collect();

    let content_type = msg
        .root_part()
        .content_type()
        .map(|ct| {
            let mut s = ct.ctype().to_ascii_lowercase();
            if let Some(sub) = ct.subtype() {
                s.push('/');
                s.push_str(&sub.to_ascii_lowercase());
            }
            if let Some(rt) = ct.attribute("report-type") {
                s.push_str("; report-type=");
                s.push_str(&rt.to_ascii_lowercase());
            }
            s
        })
        .unwrap_or_else(|| "text/plain".into());

    let date = msg.date().and_then(|d| {
        if d.is_valid() {
            Utc.timestamp_opt(d.to_timestamp(), 0).single()
        } else {
            None
        }
    });

    // An HTML-only body: mail-parser's conversion, with block elements as line breaks.
    let text = match msg.text_part(0).map(|p| &p.body) {
        Some(mail_parser::PartType::Html(html)) => html_to_text(html),
        _ => msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
    };

    let attachments = msg
        .attachments()
        .map(|part| {
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                    None => ct.ctype().to_ascii_lowercase(),
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            let is_message = part.is_message();
            let size = cut(part).unwrap_or(part.contents().len());
            let read = content_type.starts_with("text/")
                || content_type.contains("delivery-status")
                || content_type.ends_with("rfc822-headers");
            let data = if is_message {
                // The embedded message as it stood in the mail.
                part.message()
                    .map(|m| m.raw_message().to_vec())
                    .unwrap_or_else(|| part.contents().to_vec())
            } else if read || size <= KEEP_ATTACHMENT_BYTES {
                part.contents().to_vec()
            } else {
                Vec::new()
            };
            Attachment {
                filename: part.attachment_name().map(str::to_string),
                content_type,
                data,
                size,
                is_message,
            }
        })
        .collect();

    Some(ParsedMail {
        message_id: msg.message_id().map(clean_id).filter(|s| !s.is_empty()),
        in_reply_to: ids(msg.in_reply_to()),
        references: ids(msg.references()),
        from: first_addr(msg.from()),
        sender: first_addr(msg.sender()),
        reply_to: first_addr(msg.reply_to()),
        to: all_addrs(msg.to()),
        cc: all_addrs(msg.cc()),
        subject: msg.subject().unwrap_or_default().trim().to_string(),
        date,
        text,
        content_type,
        headers,
        attachments,
        problem: None,
    })
}

/// HTML → text, keeping the line structure: mail-parser's conversion breaks lines only at
/// `<br>` and `</p>`; here every block element (`div`, `li`, `tr`, `blockquote`, headings,
/// `hr`, tables) ends a line too, so quote headers ("On … wrote:", "Van: …") start lines.
pub fn html_to_text(html: &str) -> String {
    const BLOCKS: &[&str] = &[
        "div",
        "li",
        "tr",
        "table",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "ul",
        "ol",
        "dl",
        "dd",
        "dt",
    ];
    let mut out = String::with_capacity(html.len() + html.len() / 16);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let tag = &rest[lt..];
        let end = tag.find('>').map(|e| e + 1).unwrap_or(tag.len());
        let inner = tag[1..end.saturating_sub(1).max(1)].trim_start();
        let closing = inner.starts_with('/');
        let name: String = inner
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        out.push_str(&tag[..end]);
        if (closing && BLOCKS.contains(&name.as_str())) || name == "hr" {
            out.push_str("<br>");
        }
        rest = &tag[end..];
    }
    out.push_str(rest);
    mail_parser::decoders::html::html_to_text(&out)
}

fn cr_to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for &b in raw {
        out.push(b);
        if b == b'\r' {
            out.push(b'\n');
        }
    }
    out
}

fn clean_id(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

fn unfold(v: &str) -> String {
    v.replace("\r\n", "\n")
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `data` in base64, 76 characters a line.
    fn base64_lines(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut flat = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let w = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                flat.push(if k <= chunk.len() {
                    A[(w >> (18 - 6 * k) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        let mut out = String::new();
        for line in flat.as_bytes().chunks(76) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push_str("\r\n");
        }
        out
    }

    #[test]
    fn a_large_attachment_is_not_decoded_and_the_mail_reads_the_same() {
        let data = |n: usize, seed: u8| -> Vec<u8> {
            (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
        };
        let pdf = base64_lines(&data(1_500_001, 1));
        let jpg = base64_lines(&data(2_000_000, 2));
        let png = base64_lines(&data(700, 3));
        let mails = [
            format!(
                "From: Jan <jan@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht\r\nMessage-ID: <big1@client.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_b1\"\r\n\r\n--=_b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDe factuur klopt niet.\r\n--=_b1\r\nContent-Type: application/pdf; name=\"factuur.pdf\"\r\nContent-Disposition: attachment; filename=\"factuur.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}--=_b1--\r\n"
            ),
            format!(
                "From: jan@client.example\r\nSubject: =?utf-8?q?Schade_foto=27s?=\r\nContent-Type: multipart/mixed;\r\n boundary=outer\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\nZie de foto.\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>Zie de <b>foto</b>.</p>\r\n--alt--\r\n--outer\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n{jpg}\r\n--outer\r\nContent-Type: image/png; name=klein.png\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}--outer\r\nContent-Type: application/zip; name=\"=?utf-8?q?bijlage=C3=A9.zip?=\"\r\nContent-Transfer-Encoding: BASE64\r\n\r\n{pdf}\r\n--outer--\r\n"
            ),
            // A forwarded mail with a large attachment of its own: read whole (never cut
            // inside an attached mail), beside a large top-level one that is cut.
            format!(
                "From: staff@firma.nl\r\nSubject: Fwd: klacht\r\nContent-Type: multipart/mixed; boundary=f\r\n\r\n--f\r\nContent-Type: text/plain\r\n\r\nDoorgestuurd.\r\n--f\r\nContent-Type: message/rfc822\r\n\r\nFrom: jan@client.example\r\nSubject: Klacht\r\nContent-Type: multipart/mixed; boundary=g\r\n\r\n--g\r\nContent-Type: text/plain\r\n\r\nHet klopt niet.\r\n--g\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}--g--\r\n\r\n--f\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{jpg}--f--\r\n"
            ),
        ];
        for (i, mail) in mails.iter().enumerate() {
            let raw = mail.as_bytes();
            let s = skeleton::skeleton(raw, KEEP_ATTACHMENT_BYTES).expect("something to cut");
            assert!(s.bytes.len() < raw.len() / 2, "mail {i}: {}", s.bytes.len());
            let whole = parse_inner(raw, &[]).unwrap();
            let light = parse(raw);
            assert_eq!(format!("{light:?}"), format!("{whole:?}"), "mail {i}");
            assert!(
                light
                    .attachments
                    .iter()
                    .any(|a| a.size > KEEP_ATTACHMENT_BYTES)
            );
        }
        // A cut the parser does not read as an empty attachment: the mail is read whole.
        let raw = mails[0].as_bytes();
        let s = skeleton::skeleton(raw, KEEP_ATTACHMENT_BYTES).unwrap();
        let wrong = [skeleton::Cut {
            at: s.cuts[0].at + 1,
            size: 1,
        }];
        assert!(parse_inner(&s.bytes, &wrong).is_none());
    }

    #[test]
    fn parses_a_plain_complaint() {
        let raw = b"From: \"Jan de Vries\" <jan@example.nl>\r\nTo: klachten@firma.nl\r\nSubject: Klacht over de training\r\nDate: Thu, 19 Nov 2026 10:15:00 +0100\r\nMessage-ID: <abc@example.nl>\r\nAuto-Submitted: no\r\n\r\nIk ben niet tevreden.\r\n";
        let m = parse(raw);
        assert!(m.problem.is_none());
        assert_eq!(m.message_id.as_deref(), Some("abc@example.nl"));
        let from = m.from.clone().unwrap();
        assert_eq!(from.name.as_deref(), Some("Jan de Vries"));
        assert_eq!(from.address, "jan@example.nl");
        assert_eq!(m.subject, "Klacht over de training");
        assert_eq!(m.date.unwrap().to_rfc3339(), "2026-11-19T09:15:00+00:00");
        assert!(m.text.contains("niet tevreden"));
        assert_eq!(m.header("auto-submitted"), Some("no"));
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let raw = b"From: a@b.nl\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Slechte <b>service</b></p></body></html>\r\n";
        let m = parse(raw);
        assert!(m.text.contains("Slechte"), "{:?}", m.text);
        assert!(!m.text.contains("<b>"), "{:?}", m.text);
    }

    #[test]
    fn html_blocks_become_lines() {
        let t = html_to_text(
            "<div>Hi. I am fine.</div><div><br></div><div>Thanks,</div><DIV>Alex</DIV><blockquote>Old</blockquote>x",
        );
        assert_eq!(
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>(),
            vec!["Hi. I am fine.", "Thanks,", "Alex", "Old", "x"]
        );
    }

    #[test]
    fn bare_cr_line_endings() {
        let m =
            parse(b"From: a@b.nl\rSubject: x\rDate: Thu, 19 Nov 2026 10:15:00 +0100\r\rTekst\r");
        assert!(m.problem.is_none());
        assert_eq!(m.from.unwrap().address, "a@b.nl");
        assert_eq!(m.subject, "x");
        assert!(m.text.contains("Tekst"));
    }

    #[test]
    fn garbage_is_flagged_not_lost() {
        let m = parse(b"\x00\x01\x02 not a mail");
        assert!(m.problem.is_some());
        let m = parse(b"");
        assert!(m.problem.is_some());
    }

    #[test]
    fn references_and_attachments() {
        let raw = b"From: a@b.nl\r\nSubject: Re: x\r\nIn-Reply-To: <one@x>\r\nReferences: <zero@x> <one@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nzie bijlage\r\n--XX\r\nContent-Type: application/pdf; name=factuur.pdf\r\nContent-Disposition: attachment; filename=factuur.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--XX--\r\n";
        let m = parse(raw);
        assert_eq!(m.in_reply_to, vec!["one@x"]);
        assert_eq!(m.references, vec!["zero@x", "one@x"]);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].filename.as_deref(), Some("factuur.pdf"));
        assert_eq!(m.attachments[0].data, b"%PDF-");
    }
}
