//! A large mail parsed without the bodies of its large binary attachments.
//!
//! mail-parser decodes every part it reads: a mail with a 20 MB attachment held the raw
//! mail (27 MB of base64) and the decoded attachment (20 MB) at once, the largest part of
//! intake's peak memory (issue 8), only for [`super::parse`] to drop those bytes again
//! (a binary part over [`super::KEEP_ATTACHMENT_BYTES`] keeps its name, type and size
//! only). So before a large mail is parsed, its skeleton is made: the mail without the
//! base64 bodies of its binary parts (`application`, `image`, `audio`, `video`, `font`,
//! `model`) of more than that size, each body's decoded size counted as mail-parser would
//! decode it. The skeleton is parsed; each cut part reads as an empty attachment, given
//! back its size. Nothing else changes: text, HTML, attached mails, delivery reports and
//! smaller parts are parsed from the very bytes they were.
//!
//! Only what is certain is cut: a part inside `multipart/…` boundaries this scan finds as
//! mail-parser does (`--boundary` anywhere), with an explicit binary `Content-Type` and a
//! base64 body that decodes without a problem up to its boundary; never inside an attached
//! mail. After the skeleton is parsed, every cut must be an empty base64 attachment
//! starting where the body was cut; otherwise [`super::parse`] parses the whole mail as
//! before. The raw mail stored is always the whole mail.

/// A mail's skeleton and where its bodies were cut.
pub(super) struct Skeleton {
    /// The mail without the cut bodies.
    pub bytes: Vec<u8>,
    /// Per cut body, in order: where it was in `bytes` (its part's body offset) and its
    /// decoded size.
    pub cuts: Vec<Cut>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cut {
    pub at: usize,
    pub size: usize,
}

/// Nested `multipart/…` levels scanned; deeper parts are left whole.
const MAX_DEPTH: usize = 8;

/// The skeleton of `raw` without the base64 bodies of binary parts that decode to more than
/// `min` bytes; `None` when there is nothing to cut (or the mail's structure is not
/// certain), and the mail is parsed whole.
pub(super) fn skeleton(raw: &[u8], min: usize) -> Option<Skeleton> {
    let (fields, body) = header_block(raw, 0)?;
    let boundary = multipart_boundary(&fields)?;
    let mut ranges = Vec::new();
    multipart(raw, body, &boundary, min, 0, &mut ranges)?;
    if ranges.is_empty() {
        return None;
    }
    let kept = raw.len() - ranges.iter().map(|r| r.1 - r.0).sum::<usize>();
    let mut bytes = Vec::with_capacity(kept);
    let mut cuts = Vec::with_capacity(ranges.len());
    let mut from = 0;
    for &(start, end, size) in &ranges {
        bytes.extend_from_slice(&raw[from..start]);
        cuts.push(Cut {
            at: bytes.len(),
            size,
        });
        from = end;
    }
    bytes.extend_from_slice(&raw[from..]);
    Some(Skeleton { bytes, cuts })
}

/// Scan the parts of a multipart body from `pos` (delimited by `--boundary`); push the
/// ranges to cut (start, end, decoded size). Returns where the closing delimiter ends.
fn multipart(
    raw: &[u8],
    pos: usize,
    boundary: &[u8],
    min: usize,
    depth: usize,
    ranges: &mut Vec<(usize, usize, usize)>,
) -> Option<usize> {
    let mut p = after_delimiter(raw, pos, boundary)?;
    loop {
        if raw.get(p..p + 2) == Some(b"--") {
            return Some(p + 2);
        }
        p = line_end(raw, p);
        let (fields, body) = header_block(raw, p)?;
        let content_type = field(&fields, "content-type");
        let (ctype, _) = content_type.map(media_type).unwrap_or_default();
        p = if ctype == "multipart" {
            let inner = multipart_boundary(&fields)?;
            if depth + 1 >= MAX_DEPTH {
                return None;
            }
            let end = multipart(raw, body, &inner, min, depth + 1, ranges)?;
            after_delimiter(raw, end, boundary)?
        } else if binary(content_type)
            && field(&fields, "content-transfer-encoding")
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"))
        {
            let (dashes, size) = base64_body(raw, body, boundary)?;
            if size > min {
                ranges.push((body, dashes, size));
            }
            dashes + 2 + boundary.len()
        } else {
            after_delimiter(raw, body, boundary)?
        };
    }
}

/// Where the first `--boundary` at or after `pos` ends (mail-parser finds a delimiter
/// anywhere, not only at the start of a line).
fn after_delimiter(raw: &[u8], pos: usize, boundary: &[u8]) -> Option<usize> {
    let mut delimiter = Vec::with_capacity(boundary.len() + 2);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary);
    let at = memchr::memmem::find(raw.get(pos..)?, &delimiter)?;
    Some(pos + at + delimiter.len())
}

/// Past the line end after a delimiter, as mail-parser steps over it.
fn line_end(raw: &[u8], mut p: usize) -> usize {
    match (raw.get(p), raw.get(p + 1)) {
        (Some(b'\r'), Some(b'\n')) => p + 2,
        (Some(b'\n'), _) => p + 1,
        (Some(a), _) if a.is_ascii_whitespace() => {
            p += 1;
            while let Some(&c) = raw.get(p) {
                match c {
                    b'\r' | b' ' | b'\t' => p += 1,
                    b'\n' => return p + 1,
                    _ => break,
                }
            }
            p
        }
        _ => p,
    }
}

/// The header fields from `pos` (lower-case name, unfolded value) and where the body
/// starts (after the empty line). `None` when no empty line ends them.
fn header_block(raw: &[u8], pos: usize) -> Option<(Vec<(String, String)>, usize)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut p = pos;
    loop {
        let rest = raw.get(p..)?;
        let len = rest.iter().position(|&b| b == b'\n')?;
        let line = rest[..len].strip_suffix(b"\r").unwrap_or(&rest[..len]);
        p += len + 1;
        if line.is_empty() {
            return Some((fields, p));
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(text.trim());
            }
        } else if let Some((name, value)) = text.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `type/subtype` of a Content-Type value, lower-case.
fn media_type(value: &str) -> (String, String) {
    let media = value.split(';').next().unwrap_or_default().trim();
    let (ctype, subtype) = media.split_once('/').unwrap_or((media, ""));
    (
        ctype.trim().to_ascii_lowercase(),
        subtype.trim().to_ascii_lowercase(),
    )
}

/// The boundary of a `multipart/…` Content-Type.
fn multipart_boundary(fields: &[(String, String)]) -> Option<Vec<u8>> {
    let value = field(fields, "content-type")?;
    if media_type(value).0 != "multipart" {
        return None;
    }
    value.split(';').skip(1).find_map(|param| {
        let (name, v) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        (!v.is_empty() && !v.contains(['"', '\\'])).then(|| v.as_bytes().to_vec())
    })
}

/// A part mail-parser reads as binary and [`super::parse`] does not read: an explicit
/// Content-Type of a binary top-level type.
fn binary(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return false; // text/plain, or an attached mail in a digest
    };
    let (ctype, subtype) = media_type(value);
    matches!(
        ctype.as_str(),
        "application" | "image" | "audio" | "video" | "font" | "model"
    ) && !subtype.contains("delivery-status")
        && !subtype.ends_with("rfc822-headers")
}

/// A base64 body from `pos` up to `--boundary`, read as mail-parser's MIME base64 decoder
/// reads it: where the delimiter's dashes start and how many bytes it decodes to. `None`
/// where mail-parser would find a problem (a character outside base64, no boundary).
///
/// The body is most of a large mail (27 MB for a 20 MB attachment): it is read [`BLOCK`]
/// bytes at a time, a block of only base64 letters and line ends counted at once (a loop
/// the compiler makes wide); a block with anything else in it (padding, the delimiter, a
/// stray byte) is read byte by byte.
fn base64_body(raw: &[u8], pos: usize, boundary: &[u8]) -> Option<(usize, usize)> {
    // Base64 letters since the last padding: every four decode to three bytes.
    let (mut letters, mut size) = (0usize, 0usize);
    let mut i = pos;
    while i < raw.len() {
        if let Some(block) = raw.get(i..i + BLOCK) {
            let (plain, count) = letters_in(block);
            if plain {
                letters += count;
                i += BLOCK;
                continue;
            }
        }
        let end = (i + BLOCK).min(raw.len());
        for (at, &c) in raw.iter().enumerate().take(end).skip(i) {
            match c {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => letters += 1,
                b'=' => {
                    size += 3 * (letters / 4)
                        + match letters % 4 {
                            1 | 2 => 1,
                            3 => 2,
                            _ => 0,
                        };
                    letters = 0;
                }
                b'\n' | b' ' | b'\t' | b'\r' => {}
                b'-' if at > pos && raw[at - 1] == b'-' => {
                    return raw
                        .get(at + 1..)?
                        .starts_with(boundary)
                        .then_some((at - 1, size + 3 * (letters / 4)));
                }
                b'-' => {}
                _ => return None,
            }
        }
        i = end;
    }
    None
}

/// How many bytes [`base64_body`] reads at once (under 256: [`letters_in`] counts in bytes).
const BLOCK: usize = 64;

/// Whether `block` holds only base64 letters and line ends (spaces, tabs), and how many
/// letters.
fn letters_in(block: &[u8]) -> (bool, usize) {
    // Counted in bytes (a block is under 256), so the loop runs over 16 or 32 bytes at once.
    let (mut letters, mut plain) = (0u8, 0u8);
    for &c in block {
        let letter = c.is_ascii_alphanumeric() | (c == b'+') | (c == b'/');
        let space = (c == b'\n') | (c == b'\r') | (c == b' ') | (c == b'\t');
        letters += u8::from(letter);
        plain += u8::from(letter | space);
    }
    (usize::from(plain) == block.len(), usize::from(letters))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for (n, chunk) in data.chunks(3).enumerate() {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let w = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(A[(w >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
            if n % 19 == 18 {
                out.push_str("\r\n");
            }
        }
        out
    }

    #[test]
    fn a_base64_body_is_counted_as_mail_parser_decodes_it() {
        for len in [0, 1, 2, 3, 4, 5, 100, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let body = format!("{}\r\n--b--\r\n", b64(&data));
            let (dashes, size) = base64_body(body.as_bytes(), 0, b"b").unwrap();
            assert_eq!(size, len, "{len}");
            assert_eq!(&body.as_bytes()[dashes..dashes + 3], b"--b");
        }
        assert_eq!(base64_body(b"QUJD*\r\n--b", 0, b"b"), None, "not base64");
        assert_eq!(base64_body(b"QUJD\r\n", 0, b"b"), None, "no boundary");
        assert_eq!(
            base64_body(b"QUJD\r\n--c", 0, b"b"),
            None,
            "another boundary"
        );
    }

    /// The byte-by-byte reading [`base64_body`] had before it read blocks: what it must
    /// still answer, whatever falls where in a block.
    fn base64_body_byte_by_byte(raw: &[u8], pos: usize, boundary: &[u8]) -> Option<(usize, usize)> {
        let (mut size, mut count) = (0usize, 0u8);
        let mut last = b'\n';
        for (i, &c) in raw.iter().enumerate().skip(pos) {
            match c {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => {
                    count = (count + 1) & 3;
                    if count == 0 {
                        size += 3;
                    }
                }
                b'=' => {
                    size += match count {
                        1 | 2 => 1,
                        3 => 2,
                        _ => 0,
                    };
                    count = 0;
                }
                b'\n' | b' ' | b'\t' | b'\r' => {}
                b'-' if last == b'-' => {
                    return raw
                        .get(i + 1..)?
                        .starts_with(boundary)
                        .then_some((i - 1, size));
                }
                b'-' => {}
                _ => return None,
            }
            last = c;
        }
        None
    }

    #[test]
    fn a_base64_body_read_in_blocks_reads_as_byte_by_byte() {
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 31 % 253) as u8).collect();
        let body = b64(&data);
        // Something odd put at every offset around the first blocks' edges.
        let odd: [&[u8]; 8] = [b"=", b"==", b"-", b"--", b"--b", b"--c", b"*", b"\t \r\n"];
        let mut cases = 0;
        for len in [0, 1, 3, 63, 64, 65, 127, 128, 129, 200, 400, 2000] {
            for at in [0, 1, 62, 63, 64, 65, 127, 128, len / 2, len] {
                for thing in odd {
                    let at = at.min(len);
                    let mut raw = b"lead".to_vec();
                    raw.extend_from_slice(&body.as_bytes()[..at]);
                    raw.extend_from_slice(thing);
                    raw.extend_from_slice(&body.as_bytes()[at..len]);
                    raw.extend_from_slice(b"\r\n--b--\r\n");
                    for pos in [4, 5] {
                        assert_eq!(
                            base64_body(&raw, pos, b"b"),
                            base64_body_byte_by_byte(&raw, pos, b"b"),
                            "len {len}, {thing:?} at {at}, from {pos}"
                        );
                    }
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 12 * 10 * 8);
        // A whole body of blocks, padding at its end.
        let raw = format!("{}\r\n--b--\r\n", b64(&data[..1999]));
        let (_, size) = base64_body(raw.as_bytes(), 0, b"b").unwrap();
        assert_eq!(size, 1999);
    }

    #[test]
    fn only_large_binary_base64_bodies_are_cut() {
        let big = b64(&[7u8; 3000]);
        let mail = format!(
            "From: a@b.example\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\nContent-Type: text/plain\r\n\r\nHallo\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--inner--\r\n\r\n--outer\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{big}\r\n--outer\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{big}\r\n--outer\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n{small}\r\n--outer--\r\n",
            small = b64(b"tiny"),
        );
        let s = skeleton(mail.as_bytes(), 1000).unwrap();
        assert_eq!(s.cuts.len(), 1, "the pdf only");
        assert_eq!(s.cuts[0].size, 3000);
        assert_eq!(s.bytes.len(), mail.len() - (big.len() + 2));
        assert!(s.bytes[s.cuts[0].at..].starts_with(b"--outer\r\nContent-Type: text/plain"));
        // Nothing large: nothing to cut.
        assert!(skeleton(mail.as_bytes(), 5000).is_none());
        // Not multipart, or no boundary found: parsed whole.
        assert!(skeleton(b"From: a@b\r\n\r\nbody", 0).is_none());
        let unclosed = mail.replace("--outer", "--other");
        assert!(skeleton(unclosed.as_bytes(), 1000).is_none());
    }
}
