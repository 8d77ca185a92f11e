//! The register for an auditor or certifying body: one row per case with what they ask —
//! reference, received, channel, acknowledged and whether in time, response due / met,
//! resolution due / closed and whether in time, extension, partner, structural, measure,
//! satisfied, status. CSV (UTF-8, header row, RFC 4180 quoting, safe against formula
//! injection) or JSON.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::store::{CaseSummary, parse_ts};

/// One row of the export.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    pub reference: String,
    pub received: String,
    pub channel: String,
    pub acknowledge_due: String,
    pub acknowledged: String,
    pub acknowledged_in_time: String,
    pub response_due: String,
    pub response_met: String,
    pub response_in_time: String,
    pub resolution_due: String,
    pub closed: String,
    pub resolved_in_time: String,
    pub extended: String,
    pub original_resolution_due: String,
    pub extension_reason: String,
    pub partner: String,
    pub structural: String,
    pub measure: String,
    pub satisfied: String,
    pub status: String,
}

/// The header, in column order.
pub const HEADER: [&str; 20] = [
    "reference",
    "received",
    "channel",
    "acknowledge_due",
    "acknowledged",
    "acknowledged_in_time",
    "response_due",
    "response_met",
    "response_in_time",
    "resolution_due",
    "closed",
    "resolved_in_time",
    "extended",
    "original_resolution_due",
    "extension_reason",
    "partner",
    "structural",
    "measure",
    "satisfied",
    "status",
];

impl Row {
    fn fields(&self) -> [&str; 20] {
        [
            &self.reference,
            &self.received,
            &self.channel,
            &self.acknowledge_due,
            &self.acknowledged,
            &self.acknowledged_in_time,
            &self.response_due,
            &self.response_met,
            &self.response_in_time,
            &self.resolution_due,
            &self.closed,
            &self.resolved_in_time,
            &self.extended,
            &self.original_resolution_due,
            &self.extension_reason,
            &self.partner,
            &self.structural,
            &self.measure,
            &self.satisfied,
            &self.status,
        ]
    }
}

/// "yes" when done by the deadline, "no" when done late or the deadline passed undone,
/// "" while it is still open and not yet due.
fn in_time(done: Option<&str>, due: &str, now: DateTime<Utc>) -> String {
    let Ok(due) = parse_ts(due) else {
        return String::new();
    };
    match done.map(parse_ts) {
        Some(Ok(t)) => if t <= due { "yes" } else { "no" }.into(),
        Some(Err(_)) => String::new(),
        None if now > due => "no".into(),
        None => String::new(),
    }
}

fn local(stored: Option<&str>, tz: Tz) -> String {
    stored
        .and_then(|s| parse_ts(s).ok())
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn yes_no(b: Option<bool>) -> String {
    match b {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => String::new(),
    }
}

/// The rows for cases received from `from` to `to` (local days, inclusive), oldest first.
pub fn rows(
    cases: &[CaseSummary],
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
    now: DateTime<Utc>,
) -> Vec<Row> {
    let mut rows: Vec<(String, Row)> = cases
        .iter()
        .filter(|c| {
            parse_ts(&c.received_at)
                .map(|t| t.with_timezone(&tz).date_naive())
                .is_ok_and(|d| d >= from && d <= to)
        })
        .map(|c| {
            (
                c.received_at.clone(),
                Row {
                    reference: c.reference.clone(),
                    received: local(Some(&c.received_at), tz),
                    channel: c.channel.clone(),
                    acknowledge_due: local(Some(&c.ack_due_at), tz),
                    acknowledged: local(c.acknowledged_at.as_deref(), tz),
                    acknowledged_in_time: in_time(c.acknowledged_at.as_deref(), &c.ack_due_at, now),
                    response_due: local(Some(&c.response_due_at), tz),
                    response_met: local(c.response_met_at.as_deref(), tz),
                    response_in_time: in_time(
                        c.response_met_at.as_deref(),
                        &c.response_due_at,
                        now,
                    ),
                    resolution_due: local(Some(&c.resolution_due_at), tz),
                    closed: local(c.closed_at.as_deref(), tz),
                    resolved_in_time: in_time(c.closed_at.as_deref(), &c.resolution_due_at, now),
                    extended: if c.original_resolution_due_at.is_some() {
                        "yes"
                    } else {
                        "no"
                    }
                    .into(),
                    original_resolution_due: local(c.original_resolution_due_at.as_deref(), tz),
                    extension_reason: c.extension_reason.clone().unwrap_or_default(),
                    partner: c.partner_email.clone(),
                    structural: yes_no(c.structural_fault),
                    measure: c.improvement_measure.clone().unwrap_or_default(),
                    satisfied: match (c.status.as_str(), c.client_satisfied) {
                        ("closed", None) => "unknown".into(),
                        (_, s) => yes_no(s),
                    },
                    status: c.status.clone(),
                },
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.reference.cmp(&b.1.reference)));
    rows.into_iter().map(|(_, r)| r).collect()
}

/// One CSV field: always quoted (RFC 4180), and a value a spreadsheet would take for a
/// formula (starting with = + - @, a tab or a carriage return) gets a leading apostrophe
/// so it stays text.
pub fn csv_field(s: &str) -> String {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let mut out = String::with_capacity(s.len() + 3);
    out.push('"');
    if risky {
        out.push('\'');
    }
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The rows as CSV: a header, CRLF line ends (RFC 4180), UTF-8.
pub fn to_csv(rows: &[Row]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, fields: &[&str]| {
        let cells: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    };
    line(&mut out, &HEADER);
    for r in rows {
        line(&mut out, &r.fields());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_stay_text_and_quotes_are_doubled() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+31 6"), "\"'+31 6\"");
        assert_eq!(csv_field("-1"), "\"'-1\"");
        assert_eq!(csv_field("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_field("gewoon, tekst"), "\"gewoon, tekst\"");
        assert_eq!(csv_field(""), "\"\"");
    }
}
