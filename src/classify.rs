//! The pure decision: what does this mail mean, for which case, for whom.
//!
//! `classify(mail, context, known) -> Decision` touches no socket and no database: intake
//! first asks [`lookups`] what the store should be asked, fetches those answers into
//! [`Known`], then calls [`classify`]. `klachtpost explain` calls the same function.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Firm;
use crate::parse::{Address, ParsedMail};

/// What a mail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A new complaint from a client: opens a case, acknowledged.
    Complaint,
    /// Correspondence on an existing case (either direction).
    Reply,
    /// A staff member forwarded a client's mail: opens a case for the original sender.
    Forward,
    /// A staff member's note about a verbal complaint: opens a case for the named client.
    Note,
    /// Auto-replies, lists, delivery/disposition notifications: never a complaint.
    Automatic,
    /// A delivery failure report.
    Bounce,
    /// Looks like it belongs to a case but the sender is no party to it: a partner looks.
    Triage,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Complaint => "complaint",
            Kind::Reply => "reply",
            Kind::Forward => "forward",
            Kind::Note => "note",
            Kind::Automatic => "automatic",
            Kind::Bounce => "bounce",
            Kind::Triage => "triage",
        }
    }

    /// Whether this kind opens a new case.
    pub fn opens_case(self) -> bool {
        matches!(self, Kind::Complaint | Kind::Forward | Kind::Note)
    }
}

/// How the complaint reached the firm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Mailed to the complaints mailbox by the client.
    Email,
    /// Forwarded by staff.
    Forwarded,
    /// Told to staff (phone, conversation) and written down in a note.
    Verbal,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Forwarded => "forwarded",
            Channel::Verbal => "verbal",
        }
    }
}

/// Direction of a message on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the client (or anyone outside the firm) to the firm.
    Inbound,
    /// From the firm (staff, partners, klachtpost) to the client.
    Outbound,
}

/// What the store knows of one case, as far as classification needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseInfo {
    pub reference: String,
    /// The complainant's address, lower-cased.
    pub complainant: Option<String>,
    /// Every address already in the case's correspondence, lower-cased.
    pub parties: Vec<String>,
}

/// What intake must ask the store before classifying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Message-IDs from In-Reply-To and References.
    pub message_ids: Vec<String>,
    /// Case references found in the subject (e.g. `KL-2026-0042`).
    pub references: Vec<String>,
}

/// The store's answers to [`Lookups`].
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub by_message_id: HashMap<String, CaseInfo>,
    pub by_reference: HashMap<String, CaseInfo>,
}

/// What the classifier knows of the firm and the moment.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub firm: &'a Firm,
    /// Addresses klachtpost itself sends from (lower-cased): the mailbox and `outgoing.from`.
    pub own_addresses: Vec<String>,
    /// When the firm received the mail (IMAP INTERNALDATE, file time for Maildir).
    pub received_at: DateTime<Utc>,
}

/// The decision for one mail.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub kind: Kind,
    /// The case it threads to (reference), if any.
    pub case: Option<String>,
    /// The complainant recognised (for new cases), if any.
    pub complainant: Option<Address>,
    pub channel: Channel,
    /// When the complaint was received: for a forward or note, the original date.
    pub received_at: DateTime<Utc>,
    /// Whether an acknowledgement goes to the complainant.
    pub acknowledge: bool,
    /// One sentence: why.
    pub reason: String,
    /// Direction of the message when it is correspondence on a case.
    #[serde(skip)]
    pub direction: Direction,
    /// The staff member who forwarded or wrote a note, to be told what was recognised.
    #[serde(skip)]
    pub staff: Option<Address>,
    /// Things a partner must look at (e.g. "no complainant recognised", "unparseable").
    pub flags: Vec<String>,
}

/// What to ask the store for this mail.
pub fn lookups(mail: &ParsedMail) -> Lookups {
    let mut message_ids: Vec<String> = mail
        .in_reply_to
        .iter()
        .chain(mail.references.iter())
        .cloned()
        .collect();
    message_ids.sort();
    message_ids.dedup();
    Lookups {
        message_ids,
        references: Vec::new(),
    }
}

/// Decide what a mail is. Pure. (The first cut: complaints, our own mail, auto-replies.)
pub fn classify(mail: &ParsedMail, ctx: &Context<'_>, known: &Known) -> Decision {
    let from = mail.from.clone();
    let from_norm = from.as_ref().map(Address::normalized);
    let mut d = Decision {
        kind: Kind::Complaint,
        case: None,
        complainant: from.clone(),
        channel: Channel::Email,
        received_at: ctx.received_at,
        acknowledge: true,
        reason: "a new mail from outside the firm that is not on any case".into(),
        direction: Direction::Inbound,
        staff: None,
        flags: Vec::new(),
    };
    if let Some(problem) = &mail.problem {
        d.flags.push(format!("unparseable: {problem}"));
        d.acknowledge = false;
        d.complainant = None;
        d.reason = "the mail could not be parsed; it is kept raw and flagged for a partner".into();
        return d;
    }
    for id in mail.in_reply_to.iter().chain(mail.references.iter()) {
        if let Some(case) = known.by_message_id.get(id) {
            d.kind = Kind::Reply;
            d.case = Some(case.reference.clone());
            d.acknowledge = false;
            d.complainant = None;
            d.reason = format!(
                "In-Reply-To/References names a message of case {}",
                case.reference
            );
            return d;
        }
    }
    if let Some(f) = &from_norm {
        if ctx.own_addresses.iter().any(|o| o == f) {
            d.kind = Kind::Automatic;
            d.acknowledge = false;
            d.complainant = None;
            d.reason = "the mail comes from klachtpost's own address".into();
            return d;
        }
    }
    if mail
        .header("Auto-Submitted")
        .is_some_and(|v| !v.eq_ignore_ascii_case("no"))
    {
        d.kind = Kind::Automatic;
        d.acknowledge = false;
        d.complainant = None;
        d.reason = "Auto-Submitted says the mail was sent automatically (RFC 3834)".into();
        return d;
    }
    if from.is_none() {
        d.acknowledge = false;
        d.flags.push("no sender address".into());
        d.reason = "a new mail without a sender address; the case is flagged for a partner".into();
    }
    d
}
