//! The register's closed sets: a case's status, yes/no answers, the form's fields.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Where a case is in the procedure. Stored as its [`Status::as_str`] text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Opened; the acknowledgement not yet sent.
    New,
    /// The acknowledgement was sent.
    Acknowledged,
    /// A partner is looking into it.
    Investigating,
    /// The firm has answered the complainant.
    Responded,
    Closed,
    /// Looked at and found not to be a complaint (closed without the procedure).
    NotAComplaint,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::New,
        Status::Acknowledged,
        Status::Investigating,
        Status::Responded,
        Status::Closed,
        Status::NotAComplaint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Acknowledged => "acknowledged",
            Status::Investigating => "investigating",
            Status::Responded => "responded",
            Status::Closed => "closed",
            Status::NotAComplaint => "not_a_complaint",
        }
    }

    /// Still being handled (counts for a partner's load, can be overdue).
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Closed | Status::NotAComplaint)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Status::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status {s:?}: expected one of {}",
                    Status::ALL.map(Status::as_str).join(", ")
                )
            })
    }
}

/// Parse "yes"/"no" (also Dutch, true/false).
pub fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "ja" | "j" | "true" => Ok(true),
        "no" | "n" | "nee" | "false" => Ok(false),
        other => Err(format!("{other:?}: expected yes or no")),
    }
}

/// Whether the client said to be satisfied: yes, no, or unknown (not said).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfied {
    Yes,
    No,
    Unknown,
}

impl Satisfied {
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Satisfied::Yes => Some(true),
            Satisfied::No => Some(false),
            Satisfied::Unknown => None,
        }
    }

    pub fn from_bool(b: Option<bool>) -> Self {
        match b {
            Some(true) => Satisfied::Yes,
            Some(false) => Satisfied::No,
            None => Satisfied::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Satisfied::Yes => "yes",
            Satisfied::No => "no",
            Satisfied::Unknown => "unknown",
        }
    }
}

impl FromStr for Satisfied {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "unknown" | "onbekend" | "?" => Ok(Satisfied::Unknown),
            other => parse_yes_no(other)
                .map(|b| Satisfied::from_bool(Some(b)))
                .map_err(|_| format!("{other:?}: expected yes, no or unknown")),
        }
    }
}

/// What the form's analysis part gets filled in with (`cases record`); `None` leaves a
/// field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormUpdate {
    pub cause: Option<String>,
    pub structural: Option<bool>,
    pub measure: Option<String>,
    pub handling: Option<String>,
    pub result: Option<String>,
    pub evaluation: Option<String>,
}

impl FormUpdate {
    pub fn is_empty(&self) -> bool {
        *self == FormUpdate::default()
    }
}

/// How a case is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Handled; whether the client said to be satisfied.
    Handled(Satisfied),
    /// Found not to be a complaint.
    NotAComplaint,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_refused() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert_eq!(
            "Not a complaint".parse::<Status>(),
            Ok(Status::NotAComplaint)
        );
        assert!("open".parse::<Status>().is_err());
        assert!(!Status::Closed.is_open() && Status::Responded.is_open());
    }

    #[test]
    fn satisfied_takes_yes_no_unknown() {
        assert_eq!("ja".parse::<Satisfied>(), Ok(Satisfied::Yes));
        assert_eq!("no".parse::<Satisfied>(), Ok(Satisfied::No));
        assert_eq!("unknown".parse::<Satisfied>(), Ok(Satisfied::Unknown));
        assert!("maybe".parse::<Satisfied>().is_err());
    }
}
