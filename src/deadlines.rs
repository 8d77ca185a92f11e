//! The complaint clock: deadlines computed once at intake. (Stub: being built, issue 4.)

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;

/// `[deadlines]` in the config.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlineSettings {}

impl DeadlineSettings {
    /// Every problem, as `key: message` sentences.
    pub fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The deadlines of one case, with how they were computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deadlines {
    pub acknowledge: DateTime<Utc>,
    pub response: DateTime<Utc>,
    pub resolution: DateTime<Utc>,
    /// One line: how these were computed.
    pub explanation: String,
}

/// Compute the deadlines for a complaint received at `received`.
pub fn compute(
    _cal: &Calendar,
    _settings: &DeadlineSettings,
    received: DateTime<Utc>,
) -> Deadlines {
    Deadlines {
        acknowledge: received + Duration::days(1),
        response: received + Duration::weeks(2),
        resolution: received + Duration::weeks(4),
        explanation: "stub".into(),
    }
}
