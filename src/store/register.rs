//! The register's case rows as the case commands ([`crate::case`]) read and change them.
//! Only those commands call [`update`]; every other module reads.

use sqlx::{Row, SqliteConnection};

use super::Result;

macro_rules! row_columns {
    () => {
        "id, reference, status, partner_name, partner_email, cause, structural_fault, improvement_measure, handling, result, evaluation, client_satisfied, ack_due_at, response_due_at, resolution_due_at, original_resolution_due_at, extension_reason, deadline_explanation, closed_at, hold_reason, acknowledged_at, response_met_at, flags, purged_at, received_at"
    };
}

/// A column of `cases` that a case command may change. A closed set, so the SQL stays
/// `&'static str` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Status,
    PartnerName,
    PartnerEmail,
    Cause,
    StructuralFault,
    ImprovementMeasure,
    Handling,
    Result,
    Evaluation,
    ClientSatisfied,
    ResolutionDueAt,
    OriginalResolutionDueAt,
    ExtensionReason,
    ExtendedAt,
    DeadlineExplanation,
    ClosedAt,
    HoldReason,
    AcknowledgedAt,
    ResponseMetAt,
    Flags,
    ComplainantName,
    ComplainantAddress,
    ComplainantPhone,
    Subject,
    StaffAddress,
    PurgedAt,
}

impl Column {
    pub fn name(self) -> &'static str {
        match self {
            Column::Status => "status",
            Column::PartnerName => "partner_name",
            Column::PartnerEmail => "partner_email",
            Column::Cause => "cause",
            Column::StructuralFault => "structural_fault",
            Column::ImprovementMeasure => "improvement_measure",
            Column::Handling => "handling",
            Column::Result => "result",
            Column::Evaluation => "evaluation",
            Column::ClientSatisfied => "client_satisfied",
            Column::ResolutionDueAt => "resolution_due_at",
            Column::OriginalResolutionDueAt => "original_resolution_due_at",
            Column::ExtensionReason => "extension_reason",
            Column::ExtendedAt => "extended_at",
            Column::DeadlineExplanation => "deadline_explanation",
            Column::ClosedAt => "closed_at",
            Column::HoldReason => "hold_reason",
            Column::AcknowledgedAt => "acknowledged_at",
            Column::ResponseMetAt => "response_met_at",
            Column::Flags => "flags",
            Column::ComplainantName => "complainant_name",
            Column::ComplainantAddress => "complainant_address",
            Column::ComplainantPhone => "complainant_phone",
            Column::Subject => "subject",
            Column::StaffAddress => "staff_address",
            Column::PurgedAt => "purged_at",
        }
    }

    /// Columns stored as INTEGER (yes = 1, no = 0, NULL unknown).
    fn is_flag(self) -> bool {
        matches!(self, Column::StructuralFault | Column::ClientSatisfied)
    }
}

/// A case's changeable state, as stored (times as stored text).
#[derive(Debug, Clone, Default)]
pub struct CaseRow {
    pub id: i64,
    pub reference: String,
    pub status: String,
    pub partner_name: String,
    pub partner_email: String,
    pub cause: Option<String>,
    pub structural_fault: Option<bool>,
    pub improvement_measure: Option<String>,
    pub handling: Option<String>,
    pub result: Option<String>,
    pub evaluation: Option<String>,
    pub client_satisfied: Option<bool>,
    pub ack_due_at: String,
    pub response_due_at: String,
    pub resolution_due_at: String,
    pub original_resolution_due_at: Option<String>,
    pub extension_reason: Option<String>,
    pub deadline_explanation: String,
    pub closed_at: Option<String>,
    pub hold_reason: Option<String>,
    pub acknowledged_at: Option<String>,
    pub response_met_at: Option<String>,
    pub flags: String,
    pub purged_at: Option<String>,
    pub received_at: String,
}

fn flag(v: Option<i64>) -> Option<bool> {
    v.map(|v| v != 0)
}

/// Load a case by id or reference.
pub async fn load(tx: &mut SqliteConnection, key: CaseKey<'_>) -> Result<Option<CaseRow>> {
    let sql = match key {
        CaseKey::Id(_) => concat!("SELECT ", row_columns!(), " FROM cases WHERE id = $1"),
        CaseKey::Reference(_) => concat!(
            "SELECT ",
            row_columns!(),
            " FROM cases WHERE reference = $1"
        ),
    };
    let q = sqlx::query(sql);
    let q = match key {
        CaseKey::Id(id) => q.bind(id),
        CaseKey::Reference(r) => q.bind(r.to_string()),
    };
    let Some(r) = q.fetch_optional(&mut *tx).await? else {
        return Ok(None);
    };
    Ok(Some(CaseRow {
        id: r.try_get("id")?,
        reference: r.try_get("reference")?,
        status: r.try_get("status")?,
        partner_name: r.try_get("partner_name")?,
        partner_email: r.try_get("partner_email")?,
        cause: r.try_get("cause")?,
        structural_fault: flag(r.try_get("structural_fault")?),
        improvement_measure: r.try_get("improvement_measure")?,
        handling: r.try_get("handling")?,
        result: r.try_get("result")?,
        evaluation: r.try_get("evaluation")?,
        client_satisfied: flag(r.try_get("client_satisfied")?),
        ack_due_at: r.try_get("ack_due_at")?,
        response_due_at: r.try_get("response_due_at")?,
        resolution_due_at: r.try_get("resolution_due_at")?,
        original_resolution_due_at: r.try_get("original_resolution_due_at")?,
        extension_reason: r.try_get("extension_reason")?,
        deadline_explanation: r.try_get("deadline_explanation")?,
        closed_at: r.try_get("closed_at")?,
        hold_reason: r.try_get("hold_reason")?,
        acknowledged_at: r.try_get("acknowledged_at")?,
        response_met_at: r.try_get("response_met_at")?,
        flags: r.try_get("flags")?,
        purged_at: r.try_get("purged_at")?,
        received_at: r.try_get("received_at")?,
    }))
}

/// How a command names its case.
#[derive(Debug, Clone, Copy)]
pub enum CaseKey<'a> {
    Id(i64),
    Reference(&'a str),
}

/// Set columns of one case (text values; flag columns take "yes"/"no"/None).
pub async fn update(
    tx: &mut SqliteConnection,
    id: i64,
    values: &[(Column, Option<String>)],
) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    let mut sql = String::from("UPDATE cases SET ");
    for (i, (c, _)) in values.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(c.name());
        sql.push_str(&format!(" = ${}", i + 1));
    }
    sql.push_str(&format!(" WHERE id = ${}", values.len() + 1));
    // Safe: the column names come from the closed set [`Column`], values are bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (c, v) in values {
        q = if c.is_flag() {
            q.bind(v.as_deref().map(|v| i64::from(v == "yes")))
        } else {
            q.bind(v.clone())
        };
    }
    q.bind(id).execute(&mut *tx).await?;
    Ok(())
}
