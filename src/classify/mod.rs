//! The pure decision: what does this mail mean, for which case, for whom.
//!
//! `classify(mail, context, known) -> Decision` touches no socket and no database: intake
//! first asks [`lookups`] what the store should be asked, fetches those answers into
//! [`Known`], then calls [`classify`]. `klachtpost explain` calls the same function.
//!
//! # The rules, in order (the first that applies decides)
//!
//! 1. **Unparseable** (`ParsedMail::problem`): flagged, never acknowledged. Intake does
//!    not open a case for it: it keeps the raw bytes in quarantine and tells the partners
//!    (`crate::intake::quarantine`); this rule is what `explain` shows.
//! 2. **Our own mail** (From is the mailbox or `outgoing.from`): automatic, never
//!    acknowledged (no loops).
//! 3. **Machine mail** ([`automatic`]): a delivery failure is a *bounce*, everything else
//!    (auto-replies, lists, delivery reports, read receipts, abuse reports) *automatic*.
//!    Only header and MIME signals decide, or an auto-reply/failure subject *prefix*
//!    together with a text of that shape; words elsewhere never do. Never acknowledged,
//!    never a new case. It is attached to a case (`case` set) only when it returns or
//!    answers a message klachtpost sent for that case (the returned message's Message-ID,
//!    In-Reply-To, References against `Known::ours`) — never by the subject's case
//!    reference, which anyone can write; a bounce so attached is flagged ("acknowledgement
//!    bounced" when the bounced message is a known acknowledgement). Its sender never
//!    becomes a party.
//!    A person forwarding a delivery failure ("Fwd: Returned mail: …", or a bounce
//!    attached) is handled the same way when it returns a message klachtpost sent
//!    (bounce, attached, flagged); otherwise it is a triage item, never a complaint.
//!
//!    **Staff identity**: with `firm.trusted_authserv_id` set, a staff From counts only
//!    when the firm's own server's Authentication-Results vouch for it ([`authres`]);
//!    otherwise the mail is a *triage* item (flagged; the partner is told) and gets no
//!    staff powers.
//! 4. **On a case**: In-Reply-To, then References (newest first) against every Message-ID
//!    the store knows for a case (ours included), then a case reference in the subject
//!    ([`reference`]), then — for senders who are not staff — a case reference in the
//!    text (a party's new mail naming its case). Accepted as a *reply* only when the
//!    sender is a party to the case: its complainant, an address the complainant's own
//!    mail (or the firm's answer) put in To or Cc (`CaseInfo::parties`), or staff (for a
//!    no-reply From also its Reply-To); direction outbound when staff wrote it. The
//!    complainant's reply and the firm's answer add whom they address to the parties
//!    (`new_parties`). A reply to a closed case is kept on it, flagged, and `case_closed`
//!    set (its partner is told). Otherwise *triage* (the case's partner looks; nothing of
//!    the case goes to the sender). A reply is never acknowledged.
//! 5. **Staff mail** (sender in `staff_domains` or a partner) not on a case:
//!    - addressed to someone outside the firm with the mailbox only in Cc/Bcc, and not
//!      declared a forward by its subject ("FW:", "Doorst:") or an attached message:
//!      *triage* ("staff correspondence copied to the mailbox that matches no case"),
//!      outbound;
//!    - a *forward* ([`forward`]): the original sender (the first one in nested forwards
//!      who is not staff) is the complainant, the original date the receipt date, channel
//!      "forwarded"; acknowledged when an address is known;
//!    - a *note* ([`note`]): the complainant is who the note names, the receipt date the
//!      date given (else the arrival), channel "verbal"; acknowledged when an address is
//!      known;
//!    - anything else from staff (also when outside addresses are among the recipients
//!      next to the mailbox): *triage* when outsiders are addressed, otherwise a *note*
//!      without a recognised complainant: the case is opened and flagged, the staff member
//!      is told.
//!
//!    In every forward and note the staff member is in `staff`, and `staff_summary` says
//!    (in Dutch, for the confirmation mail) who was recognised and from what.
//! 6. **Everything else** is a new *complaint*. The complainant is From, or Reply-To when
//!    From is a no-reply address (`complainant_source` says which). A no-reply From without
//!    Reply-To, or no From at all: the case is opened, flagged, not acknowledged. The
//!    complainant and whom the complaint addresses in To/Cc besides the firm are the new
//!    case's parties (`new_parties`).
//!
//! Last, for every decision: a new case that would be acknowledged to an address mail
//! cannot be sent to (`From: Jan <jan>`), or a complaint with no sender and no staff
//! member behind it, is flagged [`UNANSWERABLE`] and not acknowledged; intake tells its
//! partner to acknowledge it another way.
//!
//! Every decision carries `new_part` ([`quote`]): the text without quoted history and
//! signature, for display. Reasons and flags never contain names, addresses or complaint
//! text, so they may be logged; `staff_summary` and the text fields may not.

mod address;
pub mod authres;
pub mod automatic;
pub use address::is_answerable;
pub mod dates;
pub mod forward;
pub mod labels;
pub mod note;
pub mod quote;
pub mod reference;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::Firm;
use crate::parse::{Address, ParsedMail};

use automatic::AutoKind;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseInfo {
    pub reference: String,
    /// The complainant's address, lower-cased.
    pub complainant: Option<String>,
    /// The case's other parties, lower-cased: the addresses the complainant's own mail put
    /// in To or Cc, and the people staff wrote to on the case. Never whoever merely sent
    /// mail that was attached to the case (an auto-reply, a bounce).
    pub parties: Vec<String>,
    /// Whether the case is closed (a reply is still kept on it; its partner is told).
    pub closed: bool,
}

/// What intake must ask the store before classifying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Message-IDs from In-Reply-To and References, and for bounces and other machine
    /// mail also those of the message it returns (attached message, returned headers,
    /// `Message-ID:` lines in the report). Sorted, without duplicates.
    pub message_ids: Vec<String>,
    /// Case references found in the subject or the text (e.g. `KL-2026-0042`),
    /// upper-cased.
    pub references: Vec<String>,
    /// Whether the mail is machine mail ([`automatic::detect`]): found while making the
    /// lookups, and what [`classify_looked_up`] decides with, so a mail is read for it once.
    pub automatic: Option<automatic::Auto>,
}

/// The store's answers to [`Lookups`].
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub by_message_id: HashMap<String, CaseInfo>,
    pub by_reference: HashMap<String, CaseInfo>,
    /// Which of the Message-IDs in `by_message_id` are acknowledgements klachtpost sent
    /// (so a bounce of one is flagged as such).
    pub acknowledgements: HashSet<String>,
    /// Which of the Message-IDs in `by_message_id` klachtpost itself sent for their case
    /// (acknowledgements, notices, extensions): the only ones automatic mail may be
    /// attached by.
    pub ours: HashSet<String>,
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

/// Where the complainant was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComplainantSource {
    /// The From of the mail.
    From,
    /// The Reply-To, because From is a no-reply address.
    ReplyTo,
    /// The From of the forwarded message.
    ForwardedOriginal,
    /// The note's complainant lines.
    Note,
}

impl ComplainantSource {
    pub fn describe(self) -> &'static str {
        match self {
            ComplainantSource::From => "from",
            ComplainantSource::ReplyTo => "reply-to (From is a no-reply address)",
            ComplainantSource::ForwardedOriginal => "forwarded original",
            ComplainantSource::Note => "note",
        }
    }
}

/// What tied the mail to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadVia {
    InReplyTo,
    References,
    SubjectReference,
    /// The case reference in the text (a party's new mail naming its case, as the
    /// acknowledgement asks).
    TextReference,
    /// A bounce or report returning a message of the case.
    ReturnedMessage,
}

/// The header or tag that matched, and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadEvidence {
    pub via: ThreadVia,
    /// The Message-ID or the case reference that matched.
    pub value: String,
}

impl ThreadEvidence {
    fn describe(&self) -> String {
        match self.via {
            ThreadVia::InReplyTo => "In-Reply-To names a message of".into(),
            ThreadVia::References => "References names a message of".into(),
            ThreadVia::SubjectReference => format!("the subject names {}, which is", self.value),
            ThreadVia::TextReference => format!("the text names {}, which is", self.value),
            ThreadVia::ReturnedMessage => "the returned message is a message of".into(),
        }
    }
}

/// Where `received_at` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceivedAtSource {
    /// When the mail reached the mailbox (`Context::received_at`).
    Arrival,
    /// The date in the forwarded message's headers.
    ForwardedDate,
    /// The date the note gives.
    NoteDate,
}

/// The decision for one mail.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub kind: Kind,
    /// The case it threads to (reference), if any. Set for replies, bounces and automatic
    /// mail on a case, and for triage (the case it seems to belong to, whose partner looks).
    pub case: Option<String>,
    /// The complainant recognised (for new cases), if an address is known.
    pub complainant: Option<Address>,
    pub channel: Channel,
    /// When the complaint was received: for a forward or note, the original date.
    pub received_at: DateTime<Utc>,
    /// Whether an acknowledgement goes to the complainant.
    pub acknowledge: bool,
    /// One sentence: why. No names, addresses or complaint text.
    pub reason: String,
    /// Direction of the message when it is correspondence on a case.
    pub direction: Direction,
    /// The staff member who forwarded or wrote a note, to be told what was recognised.
    pub staff: Option<Address>,
    /// Things a partner must look at (e.g. "no complainant recognised", "unparseable").
    pub flags: Vec<String>,
    /// Where the complainant was found.
    pub complainant_source: Option<ComplainantSource>,
    /// The complainant's name when no address is known (a note naming only a name, a
    /// forward whose From has no address).
    pub complainant_name: Option<String>,
    /// A phone number from a note.
    pub complainant_phone: Option<String>,
    /// What tied the mail to `case`.
    pub thread_evidence: Option<ThreadEvidence>,
    /// Where `received_at` comes from.
    pub received_at_source: ReceivedAtSource,
    /// The complaint's subject: the forwarded message's, the note's `Onderwerp:`, or the
    /// mail's without Re:/Fwd: prefixes.
    pub original_subject: Option<String>,
    /// The forwarded message's Message-ID (attached forwards only).
    pub original_message_id: Option<String>,
    /// The complaint's own text: for a forward the forwarded message, for a note the text
    /// below its key lines.
    pub complaint_text: Option<String>,
    /// What the staff member wrote above a forward.
    pub staff_comment: Option<String>,
    /// The text without quoted history and signature, for display.
    pub new_part: String,
    /// A note's channel as written ("telefoon", "gesprek", …).
    pub channel_detail: Option<String>,
    /// For forwards and notes: what to tell the staff member (Dutch), without the case
    /// reference (intake adds it).
    pub staff_summary: Option<String>,
    /// Whether the sender counts as staff or a partner: a staff address, and (with
    /// `firm.trusted_authserv_id` set) authenticated by the firm's own server.
    pub from_staff: bool,
    /// Whether `case` is closed and the mail comes from outside the firm (it is kept on
    /// the case and its partner told).
    pub case_closed: bool,
    /// Staff (authenticated when required) wrote to the case's complainant or another
    /// party: this meets the response deadline.
    pub answers_complainant: bool,
    /// Addresses that become parties to the case (opened or replied to), lower-cased:
    /// the complainant, and those the complainant's own mail (or staff's answer) put in
    /// To or Cc.
    pub new_parties: Vec<String>,
}

impl Decision {
    /// The JSON `klachtpost explain --json` prints: `kind`, `case`, `complainant`
    /// (`{"name", "address"}` or null; a name alone has `"address": null`), `channel`,
    /// `received_at` (RFC 3339), `acknowledge`, `reason`, and the other fields.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(map) = &mut v {
            if self.complainant.is_none()
                && let Some(name) = &self.complainant_name
            {
                map.insert(
                    "complainant".into(),
                    serde_json::json!({ "name": name, "address": null }),
                );
            }
            map.insert(
                "received_at".into(),
                self.received_at
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
                    .into(),
            );
        }
        v
    }
}

/// What to ask the store for this mail.
pub fn lookups(mail: &ParsedMail) -> Lookups {
    let mut message_ids: Vec<String> = mail
        .in_reply_to
        .iter()
        .chain(mail.references.iter())
        .cloned()
        .collect();
    let automatic = automatic::detect(mail);
    if automatic.is_some() {
        message_ids.extend(automatic::returned_message_ids(mail));
    }
    message_ids.sort();
    message_ids.dedup();
    let mut references = reference::in_subject(&mail.subject);
    for r in reference::in_text(&mail.text) {
        if !references.contains(&r) {
            references.push(r);
        }
    }
    Lookups {
        message_ids,
        references,
        automatic,
    }
}

/// A forward's date later than its arrival by more than this is not believed.
const CLOCK_SKEW: i64 = 10;

/// The flag a decision carries when classification itself failed.
pub const CLASSIFICATION_FAILED: &str = "classification failed: a partner must look at this mail";

/// The flag on a new case that gets no acknowledgement because there is no address mail
/// can be sent to (`From: Jan <jan>`, or no sender at all); intake tells its partner to
/// acknowledge it another way.
pub const UNANSWERABLE: &str = "cannot acknowledge: no usable address";

/// Decide what a mail is. Pure, and never panics: should a rule fail on an odd mail, the
/// mail becomes a flagged complaint without complainant (nothing is lost, nothing sent).
pub fn classify(mail: &ParsedMail, ctx: &Context<'_>, known: &Known) -> Decision {
    classify_as(mail, ctx, known, || automatic::detect(mail))
}

/// [`classify`] with the [`Lookups`] the store was asked (intake): the mail is not read
/// again for what they found.
pub fn classify_looked_up(
    mail: &ParsedMail,
    ctx: &Context<'_>,
    lookups: &Lookups,
    known: &Known,
) -> Decision {
    classify_as(mail, ctx, known, || lookups.automatic.clone())
}

fn classify_as(
    mail: &ParsedMail,
    ctx: &Context<'_>,
    known: &Known,
    automatic: impl FnOnce() -> Option<automatic::Auto>,
) -> Decision {
    let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut d = classify_inner(mail, ctx, known, automatic());
        // A new case's parties: its complainant, and whom the complainant's own mail
        // addressed besides the firm.
        if d.kind.opens_case() {
            let mut parties: Vec<String> = d.complainant.iter().map(|c| c.normalized()).collect();
            if d.kind == Kind::Complaint {
                let case = CaseInfo {
                    complainant: parties.first().cloned(),
                    ..CaseInfo::default()
                };
                parties.extend(addressed(mail, ctx, Some(&case)));
            }
            d.new_parties = parties;
        }
        d
    }));
    let mut d = decided.unwrap_or_else(|_| failed(ctx));
    refuse_unanswerable(&mut d);
    d
}

/// An acknowledgement needs an address mail can be sent to. Without one the case still
/// opens, flagged [`UNANSWERABLE`]; so does a complaint that has no sender at all and no
/// staff member who brought it in.
fn refuse_unanswerable(d: &mut Decision) {
    let unanswerable = d.acknowledge
        && d.complainant
            .as_ref()
            .is_some_and(|c| !address::is_answerable(&c.address));
    let nobody = d.kind == Kind::Complaint && d.complainant.is_none() && d.staff.is_none();
    if unanswerable {
        d.acknowledge = false;
        d.reason.push_str(
            "; but the complainant's address cannot be answered, so no acknowledgement: the partner is told to acknowledge another way",
        );
    }
    if (unanswerable || nobody) && !d.flags.iter().any(|f| f == UNANSWERABLE) {
        d.flags.push(UNANSWERABLE.into());
    }
}

fn failed(ctx: &Context<'_>) -> Decision {
    Decision {
        kind: Kind::Complaint,
        case: None,
        complainant: None,
        channel: Channel::Email,
        received_at: ctx.received_at,
        acknowledge: false,
        reason: "the classifier failed on this mail; it is kept and flagged for a partner".into(),
        direction: Direction::Inbound,
        staff: None,
        flags: vec![CLASSIFICATION_FAILED.into()],
        complainant_source: None,
        complainant_name: None,
        complainant_phone: None,
        thread_evidence: None,
        received_at_source: ReceivedAtSource::Arrival,
        original_subject: None,
        original_message_id: None,
        complaint_text: None,
        staff_comment: None,
        new_part: String::new(),
        channel_detail: None,
        staff_summary: None,
        from_staff: false,
        case_closed: false,
        answers_complainant: false,
        new_parties: Vec::new(),
    }
}

fn classify_inner(
    mail: &ParsedMail,
    ctx: &Context<'_>,
    known: &Known,
    automatic: Option<automatic::Auto>,
) -> Decision {
    let mut d = Decision {
        kind: Kind::Complaint,
        case: None,
        complainant: None,
        channel: Channel::Email,
        received_at: ctx.received_at,
        acknowledge: false,
        reason: String::new(),
        direction: Direction::Inbound,
        staff: None,
        flags: Vec::new(),
        complainant_source: None,
        complainant_name: None,
        complainant_phone: None,
        thread_evidence: None,
        received_at_source: ReceivedAtSource::Arrival,
        original_subject: None,
        original_message_id: None,
        complaint_text: None,
        staff_comment: None,
        new_part: quote::new_part(&mail.text),
        channel_detail: None,
        staff_summary: None,
        from_staff: false,
        case_closed: false,
        answers_complainant: false,
        new_parties: Vec::new(),
    };

    // 1. Unparseable.
    if let Some(problem) = &mail.problem {
        d.flags.push(format!("unparseable: {problem}"));
        d.reason =
            "the mail could not be parsed; intake keeps it raw in quarantine and tells the partners, no acknowledgement"
                .into();
        return d;
    }
    let is_own = |a: &str| {
        a.eq_ignore_ascii_case(&ctx.firm.address)
            || ctx.own_addresses.iter().any(|o| o.eq_ignore_ascii_case(a))
    };
    let from = mail.from.clone();

    // 2. Our own mail.
    if from.as_ref().is_some_and(|f| is_own(&f.address)) {
        d.kind = Kind::Automatic;
        d.reason = "the mail comes from klachtpost's own address; it is never acknowledged".into();
        return d;
    }

    // Who counts as staff: a staff address, vouched for by the firm's own server when
    // `trusted_authserv_id` is set (anyone can write a staff address in From).
    let claims_staff = from.as_ref().is_some_and(|f| ctx.firm.is_staff(&f.address));
    let staff_auth = match (&ctx.firm.trusted_authserv_id, &from) {
        (Some(id), Some(f)) if claims_staff => Some(authres::check(
            mail,
            id,
            f.domain().as_deref().unwrap_or_default(),
        )),
        _ => None,
    };
    let from_is_staff = claims_staff && staff_auth.as_ref().is_none_or(|v| v.pass);
    d.from_staff = from_is_staff;

    // 3. Machine mail: attached to a case only when it answers or returns a message
    // klachtpost sent for that case; a subject tag or a client's Message-ID is not enough
    // (anyone can write those), and its sender never becomes a party.
    if let Some(auto) = automatic {
        let ours = find_ours(mail, known);
        if let Some((case, ev)) = &ours {
            d.case = Some(case.reference.clone());
            d.thread_evidence = Some(ev.clone());
        }
        let not_ours = match (&ours, find_thread(mail, known, false)) {
            (None, Some((case, ev))) => format!(
                "; {} case {}, but it answers no message klachtpost sent for that case, so it is not attached",
                ev.describe(),
                case.reference
            ),
            _ => String::new(),
        };
        match auto.kind {
            AutoKind::Bounce => {
                d.kind = Kind::Bounce;
                match &ours {
                    Some((case, ev)) => {
                        let ack = known.acknowledgements.contains(&ev.value);
                        d.flags.push(if ack {
                            "acknowledgement bounced: the partner must reach the complainant another way".into()
                        } else {
                            "mail on this case bounced: the partner must check the address".into()
                        });
                        d.reason = format!(
                            "a delivery failure: {}; {} case {}; attached to the case and flagged, never acknowledged",
                            auto.why,
                            ev.describe(),
                            case.reference
                        );
                    }
                    None => {
                        d.reason = format!(
                            "a delivery failure: {}; it returns no message klachtpost sent for a case{not_ours}; never acknowledged",
                            auto.why
                        );
                    }
                }
            }
            AutoKind::Automatic => {
                d.kind = Kind::Automatic;
                d.reason = match &ours {
                    Some((case, ev)) => format!(
                        "automatic mail: {}; {} case {}; kept with the case, never acknowledged",
                        auto.why,
                        ev.describe(),
                        case.reference
                    ),
                    None => format!(
                        "automatic mail: {}{not_ours}; never acknowledged, never a complaint",
                        auto.why
                    ),
                };
            }
        }
        return d;
    }

    // A person passing a delivery failure on: attached to the case of the returned
    // message when klachtpost sent it, else a partner looks. Never a complaint, never
    // acknowledged (acknowledging bounce reports is how loops start).
    if automatic::forwarded_failure(mail) {
        match find_ours(mail, known) {
            Some((case, ev)) => {
                d.kind = Kind::Bounce;
                d.case = Some(case.reference.clone());
                d.reason = format!(
                    "someone forwarded a delivery failure report; {} case {}; attached to the case and flagged, never acknowledged",
                    ev.describe(),
                    case.reference
                );
                d.thread_evidence = Some(ev);
                d.flags.push(
                    "a forwarded delivery failure: the partner must check the complainant's address".into(),
                );
            }
            None => {
                d.kind = Kind::Triage;
                d.case = find_thread(mail, known, false).map(|(c, _)| c.reference);
                d.reason = "someone forwarded a delivery failure report that returns no message klachtpost sent for a case: a triage item for a partner, not a complaint, never acknowledged".into();
                d.flags
                    .push("a forwarded delivery failure that matches no case".into());
            }
        }
        return d;
    }

    let tz = ctx.firm.timezone;
    // A party's new mail may name its case only in the text (the acknowledgement asks
    // them to); staff name cases in the subject, and their forwards and notes open cases.
    let thread = find_thread(mail, known, !claims_staff);

    // A staff From the firm's server does not vouch for: no staff powers (no forward,
    // note or answer that meets a deadline); a partner looks, the sender learns nothing.
    if let (true, Some(v)) = (claims_staff && !from_is_staff, &staff_auth) {
        d.kind = Kind::Triage;
        d.flags.push(
            "the sender claims a staff address, but the firm's mail server did not authenticate it"
                .into(),
        );
        let on_case = match &thread {
            Some((case, ev)) => {
                d.case = Some(case.reference.clone());
                d.thread_evidence = Some(ev.clone());
                format!("; {} case {}", ev.describe(), case.reference)
            }
            None => String::new(),
        };
        d.reason = format!(
            "the From is a staff address but {}{on_case}: treated as mail from outside the firm, a triage item for a partner; nothing is sent to the sender",
            v.why
        );
        return d;
    }

    // 4. On a case.
    if let Some((case, ev)) = thread {
        d.case = Some(case.reference.clone());
        d.thread_evidence = Some(ev.clone());
        if let Some(other) = other_subject_case(mail, known, &case) {
            d.flags.push(format!(
                "the subject also names another known case, {other}"
            ));
        }
        if from_is_staff || is_party(mail, &case) {
            d.kind = Kind::Reply;
            d.direction = if from_is_staff {
                Direction::Outbound
            } else {
                Direction::Inbound
            };
            d.reason = format!(
                "{} case {} and the sender is a party to it: correspondence ({}), no acknowledgement",
                ev.describe(),
                case.reference,
                if from_is_staff { "outbound" } else { "inbound" }
            );
            // The complainant's own mail makes those it addresses parties; so does the
            // firm's answer.
            if from_is_staff || sender_is_complainant(mail, &case) {
                d.new_parties = addressed(mail, ctx, Some(&case));
            }
            // The response deadline is met by the firm writing to the complainant (or a
            // party), not by a partner answering one of klachtpost's internal notices.
            d.answers_complainant = from_is_staff
                && mail.to.iter().chain(mail.cc.iter()).any(|a| {
                    let a = a.normalized();
                    !is_own(&a)
                        && !ctx.firm.is_staff(&a)
                        && (case.complainant.as_deref() == Some(a.as_str())
                            || case.parties.contains(&a))
                });
            // The firm writing on its own closed case needs no notice to itself.
            if case.closed && !from_is_staff {
                d.case_closed = true;
                d.flags.push(
                    "mail on a closed case: the responsible partner decides whether to reopen it"
                        .into(),
                );
                d.reason
                    .push_str("; the case is closed, so its partner is told");
            }
            if from_is_staff {
                // Staff passing on a client's message about the case.
                let fwds = forward::find(mail, tz);
                if let Some(f) = fwds.iter().find(|f| {
                    f.sender
                        .as_ref()
                        .is_some_and(|s| !ctx.firm.is_staff(&s.address) && !is_own(&s.address))
                }) {
                    d.direction = Direction::Inbound;
                    d.complaint_text = Some(f.text.clone());
                    d.original_message_id = f.message_id.clone();
                    d.staff = from.clone();
                    d.new_parties.clear();
                    d.reason = format!(
                        "{} case {}; a staff member forwarded a message from outside the firm ({}), stored as inbound correspondence, no acknowledgement",
                        ev.describe(),
                        case.reference,
                        f.form.describe()
                    );
                }
            }
        } else {
            d.kind = Kind::Triage;
            d.reason = format!(
                "{} case {}, but the sender is not a party to the case: a triage item for its partner; nothing of the case is revealed to the sender",
                ev.describe(),
                case.reference
            );
        }
        return d;
    }
    let unknown_refs: Vec<String> = reference::in_subject(&mail.subject);
    if !unknown_refs.is_empty() {
        d.flags.push(format!(
            "the subject names {}, not a known case",
            unknown_refs.join(", ")
        ));
    }

    // 5. Staff mail.
    if let (true, Some(staff)) = (from_is_staff, from.clone()) {
        staff_mail(mail, ctx, staff, &is_own, &mut d);
        return d;
    }

    // 6. A new complaint.
    d.original_subject = subject_of(mail);
    let Some(from) = from else {
        d.flags.push("no sender address".into());
        d.reason = "a new mail without a sender address; the case is opened and flagged for a partner, no acknowledgement".into();
        return d;
    };
    if address::is_no_reply(&from.address) {
        match mail
            .reply_to
            .clone()
            .filter(|r| !address::is_no_reply(&r.address) && !is_own(&r.address))
        {
            Some(reply_to) => {
                d.complainant = Some(reply_to);
                d.complainant_source = Some(ComplainantSource::ReplyTo);
                d.acknowledge = true;
                d.reason = "a new complaint; From is a no-reply address, so the complainant is the Reply-To; acknowledged".into();
            }
            None => {
                d.complainant = Some(from);
                d.complainant_source = Some(ComplainantSource::From);
                d.flags.push(
                    "the sender is a no-reply address without Reply-To: no acknowledgement can be sent".into(),
                );
                d.reason = "a new complaint from a no-reply address without Reply-To; the case is opened and flagged, no acknowledgement".into();
            }
        }
        return d;
    }
    d.complainant = Some(from);
    d.complainant_source = Some(ComplainantSource::From);
    d.acknowledge = true;
    d.reason =
        "a new mail from outside the firm that is not on any case: a new complaint, acknowledged"
            .into();
    d
}

/// Staff mail that is on no case: correspondence copied to the mailbox, a forward, a note,
/// or a note without a recognised complainant.
fn staff_mail(
    mail: &ParsedMail,
    ctx: &Context<'_>,
    staff: Address,
    is_own: &dyn Fn(&str) -> bool,
    d: &mut Decision,
) {
    let tz: Tz = ctx.firm.timezone;
    let outsider = |a: &&Address| !ctx.firm.is_staff(&a.address) && !is_own(&a.address);
    let outsiders_to = mail.to.iter().filter(outsider).count();
    let outsiders_cc = mail.cc.iter().filter(outsider).count();
    let mailbox_in_to = mail.to.iter().any(|a| is_own(&a.address));
    let mailbox_in_cc = mail.cc.iter().any(|a| is_own(&a.address));
    d.staff = Some(staff);

    let forwards = forward::find(mail, tz);
    // The mail client's own word for it: a forward subject ("FW:", "Doorst:") or an
    // attached message makes a forward even when it is addressed to someone outside.
    let declared_forward = forwards.first().is_some_and(|f| {
        reference::is_forward_subject(&mail.subject) || f.form == forward::Form::Attached
    });

    // Correspondence with someone outside, the mailbox only in Cc/Bcc.
    if outsiders_to > 0 && !mailbox_in_to && !declared_forward {
        d.kind = Kind::Triage;
        d.direction = Direction::Outbound;
        d.staff = None;
        d.reason = format!(
            "a staff member's mail to someone outside the firm, with the mailbox in {}, that matches no case: a triage item for a partner",
            if mailbox_in_cc { "Cc" } else { "Bcc" }
        );
        d.flags
            .push("staff correspondence copied to the mailbox matches no case".into());
        return;
    }

    // A forward.
    if let Some(first) = forwards.first() {
        d.kind = Kind::Forward;
        d.channel = Channel::Forwarded;
        d.staff_comment = Some(first.comment.clone()).filter(|c| !c.trim().is_empty());
        let pick = forwards.iter().find(|f| {
            f.sender
                .as_ref()
                .is_some_and(|s| !ctx.firm.is_staff(&s.address) && !is_own(&s.address))
        });
        let chosen = pick.unwrap_or(first);
        d.original_subject = chosen
            .subject
            .clone()
            .or_else(|| subject_of(mail))
            .map(|s| reference::strip_prefixes(&s).to_string());
        d.original_message_id = chosen.message_id.clone();
        d.complaint_text = Some(chosen.text.clone()).filter(|t| !t.trim().is_empty());
        let how = chosen.form.describe();
        match pick {
            Some(f) => {
                let sender = f.sender.clone();
                d.complainant_source = Some(ComplainantSource::ForwardedOriginal);
                d.acknowledge = sender
                    .as_ref()
                    .is_some_and(|s| !address::is_no_reply(&s.address));
                if !d.acknowledge {
                    d.flags.push(
                        "the forwarded message comes from a no-reply address: no acknowledgement can be sent".into(),
                    );
                }
                d.complainant = sender;
                let when = forward_date(f, ctx, d);
                d.reason = format!(
                    "a staff member forwarded a mail ({how}); its original sender is the complainant and {when}{}",
                    if d.acknowledge {
                        "; the acknowledgement goes to the complainant"
                    } else {
                        ""
                    }
                );
            }
            None => {
                // No outside sender with an address: maybe a name, maybe only staff.
                d.complainant_name = forwards
                    .iter()
                    .find_map(|f| f.sender_name.clone())
                    .filter(|_| first.sender.is_none());
                let when = forward_date(chosen, ctx, d);
                d.flags
                    .push("no complainant recognised in the forward".into());
                d.reason = format!(
                    "a staff member forwarded a mail ({how}) but no complainant address was recognised{}; the case is opened and flagged for the partner, the staff member is told, and {when}",
                    if forwards.iter().all(|f| f.sender.is_some()) {
                        " (the forwarded mail comes from staff)"
                    } else {
                        ""
                    }
                );
            }
        }
        d.staff_summary = Some(summary(d, ctx));
        return;
    }

    // A note about a verbal complaint.
    if let Some(n) = note::parse(&mail.text, tz) {
        d.kind = Kind::Note;
        d.channel = Channel::Verbal;
        d.complainant_source = Some(ComplainantSource::Note);
        d.complainant = n.complainant.clone();
        if d.complainant.is_none() {
            d.complainant_name = n.name.clone();
        }
        d.complainant_phone = n.phone.clone();
        d.channel_detail = n.channel.clone();
        d.original_subject = n.subject.clone().or_else(|| subject_of(mail));
        d.complaint_text = Some(n.text.clone()).filter(|t| !t.trim().is_empty());
        d.acknowledge = d
            .complainant
            .as_ref()
            .is_some_and(|c| !address::is_no_reply(&c.address));
        let when = match (n.date, &n.date_text) {
            (Some(date), _) if date.at <= ctx.received_at + Duration::minutes(CLOCK_SKEW) => {
                d.received_at = date.at;
                d.received_at_source = ReceivedAtSource::NoteDate;
                if date.had_time {
                    "the receipt date is the date the note gives"
                } else {
                    "the receipt date is the day the note gives (no time given: 12:00)"
                }
            }
            (Some(_), _) => {
                d.flags.push(
                    "the note's date lies after its arrival: the arrival time is used".into(),
                );
                "the receipt date is the note's arrival (its date lies in the future)"
            }
            (None, Some(_)) => {
                d.flags
                    .push("the note's date could not be read: the arrival time is used".into());
                "the receipt date is the note's arrival (its date could not be read)"
            }
            (None, None) => "the receipt date is the note's arrival (no date given)",
        };
        if d.complainant.is_none() && d.complainant_name.is_none() {
            d.flags.push("no complainant recognised in the note".into());
        } else if d.complainant.is_none() {
            d.flags.push(
                "the note gives no mail address for the complainant: no acknowledgement can be sent".into(),
            );
        }
        d.reason = format!(
            "a staff member's note about a verbal complaint; the complainant is who the note names, {when}{}",
            if d.acknowledge {
                "; the acknowledgement goes to the complainant"
            } else {
                "; no acknowledgement (no address)"
            }
        );
        d.staff_summary = Some(summary(d, ctx));
        return;
    }

    // Staff mail that addresses outsiders next to the mailbox.
    if outsiders_to + outsiders_cc > 0 {
        d.kind = Kind::Triage;
        d.direction = Direction::Outbound;
        d.staff = None;
        d.reason = "a staff member's mail to the mailbox and to someone outside the firm that matches no case and is neither a forward nor a note: a triage item for a partner".into();
        d.flags
            .push("staff correspondence copied to the mailbox matches no case".into());
        return;
    }

    // Anything else: a note without a recognised complainant.
    d.kind = Kind::Note;
    d.channel = Channel::Verbal;
    d.original_subject = subject_of(mail);
    d.complaint_text = Some(d.new_part.clone()).filter(|t| !t.trim().is_empty());
    d.flags.push("no complainant recognised".into());
    d.reason = "a staff member's mail to the mailbox that is neither a forward, nor a note in the documented form, nor on a case: opened as a note without complainant, flagged for the partner, and the staff member is told".into();
    d.staff_summary = Some(summary(d, ctx));
}

/// Set the receipt date from a forward's date when it can be believed; the phrase for
/// the reason.
fn forward_date(f: &forward::Forward, ctx: &Context<'_>, d: &mut Decision) -> &'static str {
    match f.date {
        Some(at) if at <= ctx.received_at + Duration::minutes(CLOCK_SKEW) => {
            d.received_at = at;
            d.received_at_source = ReceivedAtSource::ForwardedDate;
            "the receipt date is the forwarded message's date"
        }
        Some(_) => {
            d.flags.push(
                "the forwarded message's date lies after the forward's arrival: the arrival time is used".into(),
            );
            "the receipt date is the forward's arrival (the original date lies in the future)"
        }
        None => {
            d.flags.push(
                "the forwarded message's date could not be read: the forward's arrival time is used".into(),
            );
            "the receipt date is the forward's arrival (the original date could not be read)"
        }
    }
}

/// What the staff member is told (Dutch), without the case reference.
fn summary(d: &Decision, ctx: &Context<'_>) -> String {
    let who = match (&d.complainant, &d.complainant_name) {
        (Some(c), _) => format!("Herkend als klager: {c}."),
        (None, Some(n)) => format!("Herkend als klager: {n} (geen e-mailadres bekend)."),
        (None, None) => {
            "Er is geen klager herkend; de zaak is geopend en gemarkeerd voor de verantwoordelijke partner.".into()
        }
    };
    let from = match d.complainant_source {
        Some(ComplainantSource::ForwardedOriginal) => " (afzender van de doorgestuurde mail)",
        Some(ComplainantSource::Note) => " (uit de notitie)",
        _ => "",
    };
    let local = d.received_at.with_timezone(&ctx.firm.timezone);
    let when = match d.received_at_source {
        ReceivedAtSource::ForwardedDate => "datum van de doorgestuurde mail",
        ReceivedAtSource::NoteDate => "datum uit de notitie",
        ReceivedAtSource::Arrival => "moment van binnenkomst",
    };
    let ack = if d.acknowledge {
        "De klager krijgt een ontvangstbevestiging."
    } else {
        "Er gaat geen ontvangstbevestiging naar de klager."
    };
    let who = if from.is_empty() || d.complainant.is_none() && d.complainant_name.is_none() {
        who
    } else {
        format!("{}{from}.", who.trim_end_matches('.'))
    };
    format!(
        "{who} Ontvangen: {} ({when}). Kanaal: {}. {ack}",
        local.format("%d-%m-%Y %H:%M"),
        match d.channel {
            Channel::Email => "e-mail",
            Channel::Forwarded => "doorgestuurd",
            Channel::Verbal => "mondeling",
        }
    )
}

/// The mail's subject without Re:/Fwd: prefixes, if any.
fn subject_of(mail: &ParsedMail) -> Option<String> {
    Some(reference::strip_prefixes(&mail.subject).to_string()).filter(|s| !s.is_empty())
}

/// The case the mail's threading headers or subject point to (and, with `with_text`, a
/// reference in its text), and the evidence.
fn find_thread(
    mail: &ParsedMail,
    known: &Known,
    with_text: bool,
) -> Option<(CaseInfo, ThreadEvidence)> {
    let by_id = |via: ThreadVia, id: &String| {
        known.by_message_id.get(id).map(|c| {
            (
                c.clone(),
                ThreadEvidence {
                    via,
                    value: id.clone(),
                },
            )
        })
    };
    let by_ref = |via: ThreadVia, refs: Vec<String>| {
        refs.into_iter().find_map(|r| {
            known.by_reference.get(&r).map(|c| {
                (
                    c.clone(),
                    ThreadEvidence {
                        via,
                        value: r.clone(),
                    },
                )
            })
        })
    };
    mail.in_reply_to
        .iter()
        .find_map(|id| by_id(ThreadVia::InReplyTo, id))
        .or_else(|| {
            mail.references
                .iter()
                .rev()
                .find_map(|id| by_id(ThreadVia::References, id))
        })
        .or_else(|| {
            by_ref(
                ThreadVia::SubjectReference,
                reference::in_subject(&mail.subject),
            )
        })
        .or_else(|| {
            with_text
                .then(|| by_ref(ThreadVia::TextReference, reference::in_text(&mail.text)))
                .flatten()
        })
}

/// The case of a message klachtpost sent that a bounce or automatic mail returns or
/// answers: the returned message's Message-ID, In-Reply-To, References (newest first).
fn find_ours(mail: &ParsedMail, known: &Known) -> Option<(CaseInfo, ThreadEvidence)> {
    let returned = automatic::returned_message_ids(mail);
    let tagged = returned
        .iter()
        .map(|id| (ThreadVia::ReturnedMessage, id))
        .chain(mail.in_reply_to.iter().map(|id| (ThreadVia::InReplyTo, id)))
        .chain(
            mail.references
                .iter()
                .rev()
                .map(|id| (ThreadVia::References, id)),
        );
    for (via, id) in tagged {
        if !known.ours.contains(id) {
            continue;
        }
        if let Some(c) = known.by_message_id.get(id) {
            return Some((
                c.clone(),
                ThreadEvidence {
                    via,
                    value: id.clone(),
                },
            ));
        }
    }
    None
}

/// Another known case named in the subject than the one the headers found.
fn other_subject_case(mail: &ParsedMail, known: &Known, case: &CaseInfo) -> Option<String> {
    reference::in_subject(&mail.subject)
        .into_iter()
        .find(|r| *r != case.reference && known.by_reference.contains_key(r))
}

/// The sender's addresses that count: From, and for a no-reply From also its Reply-To.
fn sender_addresses(mail: &ParsedMail) -> Vec<String> {
    let mut candidates: Vec<String> = Vec::new();
    if let Some(f) = &mail.from {
        candidates.push(f.normalized());
        if address::is_no_reply(&f.address)
            && let Some(r) = &mail.reply_to
        {
            candidates.push(r.normalized());
        }
    }
    candidates
}

/// Whether the sender is the case's complainant.
fn sender_is_complainant(mail: &ParsedMail, case: &CaseInfo) -> bool {
    sender_addresses(mail).iter().any(|a| {
        case.complainant
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(a))
    })
}

/// Whether the sender is a party to the case other than staff: its complainant, or an
/// address the complainant's own mail (or the firm) put in To or Cc. Staff are checked by
/// the caller (they must be authenticated when the firm asks for it).
fn is_party(mail: &ParsedMail, case: &CaseInfo) -> bool {
    sender_is_complainant(mail, case)
        || sender_addresses(mail)
            .iter()
            .any(|a| case.parties.iter().any(|p| p.eq_ignore_ascii_case(a)))
}

/// The people a mail addresses in To and Cc who are neither the firm (staff, the
/// mailbox) nor already the case's complainant or parties, lower-cased.
fn addressed(mail: &ParsedMail, ctx: &Context<'_>, case: Option<&CaseInfo>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in mail.to.iter().chain(mail.cc.iter()) {
        let n = a.normalized();
        let known_already = case.is_some_and(|c| {
            c.complainant.as_deref() == Some(n.as_str()) || c.parties.contains(&n)
        });
        if n.eq_ignore_ascii_case(&ctx.firm.address)
            || ctx.own_addresses.iter().any(|o| o.eq_ignore_ascii_case(&n))
            || ctx.firm.is_staff(&n)
            || address::is_no_reply(&n)
            || address::is_mail_system(&n)
            || known_already
            || out.contains(&n)
        {
            continue;
        }
        out.push(n);
    }
    out
}
