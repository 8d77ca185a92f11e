//! What a mail *is*, as opposed to where it sits: the key that makes "the same mail is
//! never taken in twice" hold after a UIDVALIDITY change, a folder rename, a restart
//! between commit and MOVE, a second APPEND, or the same mail reaching the mailbox twice
//! (through an alias and a Cc).
//!
//! The identity is the SHA-256 of the mail's Message-ID together with the rest of what
//! its author wrote, and nothing that delivery added:
//!
//! - the author's header fields (RFC 5322 §3.6.1–§3.6.5: `From`, `Sender`, `Reply-To`,
//!   `To`, `Cc`, `Message-ID`, `In-Reply-To`, `References`, `Subject`, `Date`) and the
//!   MIME fields that say how to read the body (`MIME-Version`, `Content-Type`,
//!   `Content-Transfer-Encoding`), unfolded, runs of white space made one space, sorted by
//!   name;
//! - the body, with line endings made LF and trailing line ends dropped.
//!
//! Left out on purpose: trace fields (`Received`, `Return-Path`, RFC 5322 §3.6.7) and
//! what servers prepend on delivery (`Delivered-To`, `X-Original-To`, `Authentication-
//! Results`, `ARC-*`, spam verdicts, `X-MS-Exchange-*`, …). Those are exactly what differs
//! between the copy that came through an alias and the one that came as a Cc, or between
//! two deliveries of one mail, so a hash of the raw bytes would miss those duplicates.
//! `Bcc` and `Resent-*` are left out too: they differ per copy of the same mail.
//!
//! Since the Message-ID is part of what is hashed, two mails share an identity only when
//! they have the same Message-ID *and* the same content; a mail without a Message-ID is
//! known by its content alone. Known limit: two mails without Message-ID and without Date
//! whose author fields and body are identical (a web form sending the very same text
//! twice) count as one; the second is recorded as a duplicate, not lost.

use sha2::{Digest, Sha256};

/// The header fields that make up a mail's identity, lower-case.
const AUTHOR_FIELDS: &[&str] = &[
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "message-id",
    "in-reply-to",
    "references",
    "subject",
    "date",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// A mail's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The Message-ID as written, without angle brackets; `None` when there is none.
    pub message_id: Option<String>,
    /// SHA-256 (lower-case hex) of the Message-ID, author fields and body.
    pub sha256: String,
}

/// The identity of raw mail bytes. Never fails: bytes that are no mail at all are known by
/// their (line-end normalised) content. Reads the mail in place: no copy of it is made (a
/// mail with a 20 MB attachment is hashed as it stands, issue 8).
pub fn of(raw: &[u8]) -> Identity {
    let mut lines = lines(raw).peekable();
    let (mut hash, message_id) = author_part(header_fields(&mut lines));
    // The body with its line ends made LF, without the trailing ones: a line end is only
    // hashed once a line with content follows it.
    let mut pending = 0usize;
    for (line, ended) in lines {
        if !line.is_empty() {
            for _ in 0..pending {
                hash.update(b"\n");
            }
            pending = 0;
            hash.update(line);
        }
        if ended {
            pending += 1;
        }
    }
    finish(hash, message_id)
}

/// The hash begun over the author's fields (sorted by name, stable), and the Message-ID
/// among them.
fn author_part(fields: Vec<(String, String)>) -> (Sha256, Option<String>) {
    let mut kept: Vec<(String, String)> = fields
        .into_iter()
        .filter(|(name, _)| AUTHOR_FIELDS.contains(&name.as_str()))
        .collect();
    // Stable: fields of the same name keep their order.
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    let message_id = kept
        .iter()
        .find(|(name, _)| name == "message-id")
        .map(|(_, v)| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
        })
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let mut hash = Sha256::new();
    for (name, value) in &kept {
        hash.update(name.as_bytes());
        hash.update(b":");
        hash.update(value.as_bytes());
        hash.update(b"\n");
    }
    hash.update(b"\n");
    (hash, message_id)
}

fn finish(hash: Sha256, message_id: Option<String>) -> Identity {
    let sha256 = hash
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Identity { message_id, sha256 }
}

/// The lines of `raw` without their line ends, and whether each had one: CRLF, a lone CR
/// and LF each end a line (IMAP hands out CRLF, Maildir keeps LF, old Mac stores CR), so
/// these are the lines of the text with every line end made LF.
fn lines(raw: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let rest = raw.get(pos..).filter(|r| !r.is_empty())?;
        match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => {
                let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
                pos += i + if crlf { 2 } else { 1 };
                Some((&rest[..i], true))
            }
            None => {
                pos = raw.len();
                Some((rest, false))
            }
        }
    })
}

/// The header fields (lower-case name, unfolded and white-space-collapsed value), taken
/// from `lines`, which is left at the body. The header ends at the first empty line (taken),
/// or at the first line that is neither a field nor a continuation (left: it starts the
/// body).
fn header_fields<'a>(
    lines: &mut std::iter::Peekable<impl Iterator<Item = (&'a [u8], bool)>>,
) -> Vec<(String, String)> {
    let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(&(line, _)) = lines.peek() {
        if line.is_empty() {
            lines.next();
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            match fields.last_mut() {
                Some((_, value)) => {
                    value.push(b' ');
                    value.extend_from_slice(line);
                }
                None => break,
            }
        } else {
            match line.iter().position(|&b| b == b':') {
                Some(colon)
                    if colon > 0
                        && line[..colon]
                            .iter()
                            .all(|&b| b.is_ascii_graphic() && b != b':') =>
                {
                    let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
                    fields.push((name, line[colon + 1..].to_vec()));
                }
                _ => break,
            }
        }
        lines.next();
    }
    fields
        .into_iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(&value);
            (name, value.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &str = "From: Marieke <marieke@client.example>\r\nTo: klachten@firma.nl\r\nSubject: Klacht\r\nDate: Thu, 19 Nov 2026 16:55:00 +0100\r\nMessage-ID: <m1@client.example>\r\n\r\nHet advies kwam te laat.\r\n";

    fn id(s: &str) -> Identity {
        of(s.as_bytes())
    }

    #[test]
    fn the_message_id_is_read_without_brackets() {
        assert_eq!(id(MAIL).message_id.as_deref(), Some("m1@client.example"));
        assert_eq!(id(MAIL).sha256.len(), 64);
        assert!(id(MAIL).sha256.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_same_bytes_have_the_same_identity() {
        assert_eq!(id(MAIL), id(MAIL));
    }

    #[test]
    fn trace_and_delivery_fields_do_not_count() {
        // The copy through an alias and the copy as a Cc: different trace fields on top.
        let alias = format!(
            "Return-Path: <marieke@client.example>\r\nDelivered-To: klachten@firma.nl\r\nX-Original-To: info@firma.nl\r\nReceived: from mx.client.example by mx.firma.nl with ESMTPS id AAA;\r\n\tThu, 19 Nov 2026 16:55:02 +0100\r\nAuthentication-Results: mx.firma.nl; spf=pass\r\n{MAIL}"
        );
        let cc = format!(
            "Return-Path: <marieke@client.example>\r\nDelivered-To: klachten@firma.nl\r\nReceived: from mx.client.example by mx.firma.nl with ESMTPS id BBB;\r\n\tThu, 19 Nov 2026 16:55:03 +0100\r\nX-Spam-Status: No, score=-1.0\r\n{MAIL}"
        );
        assert_eq!(id(&alias).sha256, id(&cc).sha256);
        assert_eq!(id(&alias).sha256, id(MAIL).sha256);
    }

    #[test]
    fn another_message_id_is_another_mail() {
        let other = MAIL.replace("<m1@client.example>", "<m2@client.example>");
        assert_ne!(id(&other).sha256, id(MAIL).sha256);
    }

    #[test]
    fn the_same_message_id_with_other_content_is_another_mail() {
        let other = MAIL.replace("te laat", "te vroeg");
        assert_ne!(id(&other).sha256, id(MAIL).sha256);
        let other = MAIL.replace("Subject: Klacht", "Subject: Klacht 2");
        assert_ne!(id(&other).sha256, id(MAIL).sha256);
    }

    #[test]
    fn without_message_id_the_content_decides() {
        let bare = MAIL.replace("Message-ID: <m1@client.example>\r\n", "");
        assert_eq!(id(&bare).message_id, None);
        assert_ne!(id(&bare).sha256, id(MAIL).sha256);
        let traced = format!("Received: from a by b; Thu, 19 Nov 2026 16:56:00 +0100\r\n{bare}");
        assert_eq!(id(&traced).sha256, id(&bare).sha256);
        let changed = bare.replace("te laat", "veel te laat");
        assert_ne!(id(&changed).sha256, id(&bare).sha256);
    }

    #[test]
    fn line_ends_folding_and_trailing_newlines_do_not_count() {
        let lf = MAIL.replace("\r\n", "\n");
        assert_eq!(id(&lf).sha256, id(MAIL).sha256);
        let cr = MAIL.replace("\r\n", "\r");
        assert_eq!(id(&cr).sha256, id(MAIL).sha256);
        let folded = MAIL.replace("Subject: Klacht", "Subject:\r\n  Klacht");
        assert_eq!(id(&folded).sha256, id(MAIL).sha256);
        let trailing = format!("{MAIL}\r\n\r\n");
        assert_eq!(id(&trailing).sha256, id(MAIL).sha256);
    }

    #[test]
    fn header_order_and_name_case_do_not_count() {
        let reordered = "Message-ID: <m1@client.example>\r\nsubject: Klacht\r\nDate: Thu, 19 Nov 2026 16:55:00 +0100\r\nFROM: Marieke <marieke@client.example>\r\nTo: klachten@firma.nl\r\n\r\nHet advies kwam te laat.\r\n";
        assert_eq!(id(reordered).sha256, id(MAIL).sha256);
    }

    #[test]
    fn bcc_and_resent_fields_do_not_count() {
        let bcc = MAIL.replace(
            "To: klachten@firma.nl\r\n",
            "To: klachten@firma.nl\r\nBcc: info@firma.nl\r\nResent-From: a@firma.nl\r\n",
        );
        assert_eq!(id(&bcc).sha256, id(MAIL).sha256);
    }

    #[test]
    fn bytes_that_are_no_mail_have_an_identity_by_content() {
        let a = of(b"\x00\x01\x02\xff\xfe this is no mail at all");
        let b = of(b"\x00\x01\x02\xff\xfe this is no mail at all");
        let c = of(b"\x00\x01\x02\xff\xfe this is no mail at all!");
        assert_eq!(a, b);
        assert_ne!(a.sha256, c.sha256);
        assert_eq!(a.message_id, None);
        assert_eq!(of(b"").sha256.len(), 64);
    }

    #[test]
    fn a_body_line_that_looks_like_a_header_stays_in_the_body() {
        let a = "From: a@b.example\r\n\r\nTo: x@y.example\r\n";
        let b = "From: a@b.example\r\n\r\nTo: z@y.example\r\n";
        assert_ne!(id(a).sha256, id(b).sha256);
    }

    // The identity as it was computed before it read the mail in place (a normalised copy
    // of the whole mail): identities are stored, so the two must agree on every input.
    fn reference_of(raw: &[u8]) -> Identity {
        let text = reference_normalise(raw);
        let (fields, body) = reference_split(&text);
        // The author's fields are hashed as they always were; the body is what changed.
        let (mut hash, message_id) = author_part(fields);
        let mut end = body.len();
        while end > 0 && body[end - 1] == b'\n' {
            end -= 1;
        }
        hash.update(&body[..end]);
        finish(hash, message_id)
    }

    /// CRLF and lone CR become LF (IMAP hands out CRLF, Maildir keeps LF, old Mac stores CR).
    fn reference_normalise(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'\r' => {
                    out.push(b'\n');
                    if raw.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        out
    }

    /// The header fields (lower-case name, unfolded and white-space-collapsed value) and the
    /// body. The header ends at the first empty line, or at the first line that is neither a
    /// field nor a continuation (then that line starts the body).
    fn reference_split(text: &[u8]) -> (Vec<(String, String)>, &[u8]) {
        let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
        let mut pos = 0;
        while pos < text.len() {
            let end = text[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |i| pos + i);
            let line = &text[pos..end];
            let next = (end + 1).min(text.len());
            if line.is_empty() {
                pos = next;
                break;
            }
            if matches!(line[0], b' ' | b'\t') {
                match fields.last_mut() {
                    Some((_, value)) => {
                        value.push(b' ');
                        value.extend_from_slice(line);
                    }
                    None => break,
                }
            } else {
                match line.iter().position(|&b| b == b':') {
                    Some(colon)
                        if colon > 0
                            && line[..colon]
                                .iter()
                                .all(|&b| b.is_ascii_graphic() && b != b':') =>
                    {
                        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
                        fields.push((name, line[colon + 1..].to_vec()));
                    }
                    _ => break,
                }
            }
            pos = next;
        }
        let fields = fields
            .into_iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(&value);
                (name, value.split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .collect();
        (fields, &text[pos..])
    }

    #[test]
    fn reading_in_place_gives_the_identities_stored_before() {
        let mut inputs: Vec<Vec<u8>> = vec![
            MAIL.into(),
            MAIL.replace("\r\n", "\n").into(),
            MAIL.replace("\r\n", "\r").into(),
            format!("{MAIL}\r\n\r\n\n\r").into(),
            b"".to_vec(),
            b"\r\n".to_vec(),
            b"\n\nbody only\n\n".to_vec(),
            b" continuation first\r\nFrom: a@b\r\n\r\nx".to_vec(),
            b"From: a@b\r\nnot a field\r\nTo: c@d\r\n\r\nbody".to_vec(),
            b"From: a@b\r\n\tfolded\r\n more\r\n\r\n\r\nline\r\n\r\n\r\nlast\r".to_vec(),
            b"Subject: x\r\r\nFrom: y\r\n\r\nmixed\r\rends\n\r\n".to_vec(),
            b"From: a@b\r\nSubject: no body".to_vec(),
            b"\x00\x01\x02\xff\xfe this is no mail at all".to_vec(),
            b"From:\r\n:bad\r\n\r\n".to_vec(),
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail");
        for f in std::fs::read_dir(dir).unwrap() {
            inputs.push(std::fs::read(f.unwrap().path()).unwrap());
        }
        assert!(inputs.len() > 20);
        for raw in &inputs {
            assert_eq!(
                of(raw),
                reference_of(raw),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
