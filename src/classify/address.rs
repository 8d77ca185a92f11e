//! Mail addresses written in free text: `Name <addr>`, `Name [mailto:addr]`,
//! `"Name" <addr<mailto:addr>>`, `Name, addr`, a bare `addr`, or a name alone; and the
//! kinds of address that are not a person (no-reply, mailer-daemon).

use crate::parse::Address;

/// Characters allowed in the local part when scanning free text (RFC 5322 atext and dot;
/// the apostrophe is common: o'brien@…).
fn local_char(c: char) -> bool {
    c.is_alphanumeric() || "._%+-'!#$&*=?^`{|}~".contains(c)
}

fn domain_char(c: char) -> bool {
    c.is_alphanumeric() || c == '.' || c == '-'
}

/// Every mail address in a text: byte range and the address as written.
pub fn find_all(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut search_from = 0;
    while let Some(rel) = text[search_from..].find('@') {
        let at = search_from + rel;
        // Scan left over the local part.
        let mut start = at;
        for (i, c) in text[..at].char_indices().rev() {
            if local_char(c) {
                start = i;
            } else {
                break;
            }
        }
        // Scan right over the domain.
        let mut end = at + 1;
        for (i, c) in text[at + 1..].char_indices() {
            if domain_char(c) {
                end = at + 1 + i + c.len_utf8();
            } else {
                break;
            }
        }
        let local = text[start..at].trim_start_matches(['.', '\'']);
        let start = at - local.len();
        let domain = text[at + 1..end].trim_end_matches(['.', '-']);
        let end = at + 1 + domain.len();
        if !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.contains("..")
            && domain
                .rsplit('.')
                .next()
                .is_some_and(|tld| tld.chars().all(char::is_alphanumeric) && !tld.is_empty())
        {
            out.push((start, end, format!("{local}@{domain}")));
        }
        search_from = at + 1;
    }
    out
}

/// The first address in a header value, with the display name written before it.
pub fn first_address(value: &str) -> Option<Address> {
    let (start, _, addr) = find_all(value).into_iter().next()?;
    let before = &value[..start];
    let cut = before.find(['<', '[', '(']).unwrap_or(before.len());
    let name = clean_name(&before[..cut]);
    Some(Address::new(name.as_deref(), &addr))
}

/// A name written without an address ("From: John Doe").
pub fn name_only(value: &str) -> Option<String> {
    if value.contains('@') {
        return None;
    }
    clean_name(value)
}

/// Trim quotes, brackets and separators around a display name; `None` when nothing that
/// looks like a name is left.
pub fn clean_name(s: &str) -> Option<String> {
    let t = s
        .trim()
        .trim_matches(|c: char| {
            c.is_whitespace() || "\"'«»“”„‘’,;:-–<>[]()".contains(c) || c == '\u{a0}'
        })
        .trim();
    let t = t.strip_suffix("mailto").unwrap_or(t).trim();
    if t.is_empty()
        || t.contains('@')
        || t.chars().count() > 80
        || !t.chars().any(char::is_alphabetic)
    {
        None
    } else {
        Some(t.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

/// Whether mail can be sent to `address`: a local part and a domain a message can carry
/// (what the outgoing mail builder accepts). `jan` (no domain) cannot be answered.
pub fn is_answerable(address: &str) -> bool {
    address.trim().parse::<lettre::Address>().is_ok()
}

/// Local parts of addresses nobody reads (RFC 2142 role names excluded: those are people).
pub fn is_no_reply(address: &str) -> bool {
    let local = address
        .rsplit_once('@')
        .map(|(l, _)| l)
        .unwrap_or(address)
        .to_lowercase();
    let squashed: String = local.chars().filter(|c| c.is_alphanumeric()).collect();
    [
        "noreply",
        "donotreply",
        "dontreply",
        "nereply",
        "nepasrepondre",
        "nietbeantwoorden",
        "geenantwoord",
        "antwoordniet",
        "nichtantworten",
        "keineantwort",
    ]
    .iter()
    .any(|k| squashed.starts_with(k) || squashed.ends_with(k))
}

/// Mail system senders: mailer-daemon, postmaster and the like (RFC 3464 §2 reports come
/// from these; RFC 5321 §4.5.1 postmaster).
pub fn is_mail_system(address_or_name: &str) -> bool {
    let lower = address_or_name.to_lowercase();
    let local = lower.rsplit_once('@').map(|(l, _)| l).unwrap_or(&lower);
    let squashed: String = local.chars().filter(|c| c.is_alphanumeric()).collect();
    [
        "mailerdaemon",
        "maildaemon",
        "postmaster",
        "poostmaster",
        "mailersystem",
        "maildeliverysystem",
        "maildeliverysubsystem",
        "mailsystem",
    ]
    .iter()
    .any(|k| squashed == *k || squashed.starts_with(k))
        || squashed.contains("mailerdaemon")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(v: &str) -> (Option<String>, String) {
        let a = first_address(v).unwrap();
        (a.name, a.address)
    }

    #[test]
    fn forms_of_a_from_value() {
        let jd = (
            Some("John Doe".to_string()),
            "john.doe@acme.com".to_string(),
        );
        assert_eq!(addr("John Doe <john.doe@acme.com>"), jd);
        assert_eq!(addr("\"John Doe\" <john.doe@acme.com>"), jd);
        assert_eq!(addr("John Doe [mailto:john.doe@acme.com]"), jd);
        assert_eq!(
            addr(
                "John Doe<mailto:john.doe@acme.com> <john.doe@acme.com<mailto:john.doe@acme.com>> on behalf of x@acme.com"
            ),
            jd
        );
        assert_eq!(addr("John Doe (<john.doe@acme.com>)"), jd);
        assert_eq!(addr("John Doe, john.doe@acme.com"), jd);
        assert_eq!(
            addr("john.doe@acme.com"),
            (None, "john.doe@acme.com".into())
        );
        assert_eq!(
            addr("bessie@acme.com <bessie@acme.com>"),
            (None, "bessie@acme.com".into())
        );
        assert_eq!(
            addr("O'Brien, Patrick <p.o'brien@example.com>"),
            (
                Some("O'Brien, Patrick".into()),
                "p.o'brien@example.com".into()
            )
        );
        assert_eq!(name_only("John Doe").as_deref(), Some("John Doe"));
        assert_eq!(name_only("  "), None);
        assert!(first_address("geen adres").is_none());
        assert!(first_address("op 12@ uur").is_none());
    }

    #[test]
    fn machine_addresses() {
        assert!(is_no_reply("noreply@x.nl"));
        assert!(is_no_reply("no-reply@sns.amazonaws.com"));
        assert!(is_no_reply("do_not_reply@x.nl"));
        assert!(is_no_reply("webshop-noreply@x.nl"));
        assert!(!is_no_reply("jan@x.nl"));
        assert!(!is_no_reply("nora@x.nl"));
        assert!(is_mail_system("MAILER-DAEMON@x.org"));
        assert!(is_mail_system("MAILER-DAEMON"));
        assert!(is_mail_system("postmaster@x.nl"));
        assert!(!is_mail_system("post@x.nl"));
    }
}
