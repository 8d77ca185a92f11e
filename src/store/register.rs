//! The register's case rows as the case commands ([`crate::case`]) read and change them.
//! Only those commands call [`update`]; every other module reads.

use std::collections::HashMap;

use super::{Result, Sql, StoreRow, TimeText, Ts, Tx, parse_ts};

macro_rules! row_columns {
    () => {
        "id, reference, status, partner_name, partner_email, cause, structural_fault, improvement_measure, handling, result, evaluation, client_satisfied, ack_due_at, response_due_at, resolution_due_at, original_resolution_due_at, extension_reason, deadline_explanation, closed_at, hold_reason, acknowledged_at, response_met_at, flags, purged_at, received_at, acknowledged_by"
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
    AcknowledgedBy,
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
            Column::AcknowledgedBy => "acknowledged_by",
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

    /// Yes/no columns (0/1 on SQLite, BOOLEAN on PostgreSQL; NULL unknown).
    fn is_flag(self) -> bool {
        matches!(self, Column::StructuralFault | Column::ClientSatisfied)
    }

    /// Time columns (given and kept by the case commands as [`super::ts`] text).
    fn is_time(self) -> bool {
        matches!(
            self,
            Column::ResolutionDueAt
                | Column::OriginalResolutionDueAt
                | Column::ExtendedAt
                | Column::ClosedAt
                | Column::AcknowledgedAt
                | Column::ResponseMetAt
                | Column::PurgedAt
        )
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
    /// An acknowledgement made outside klachtpost: phone, letter or in-person.
    pub acknowledged_by: Option<String>,
    pub purged_at: Option<String>,
    pub received_at: String,
}

/// Load a case by id or reference.
pub async fn load(tx: &mut Tx, key: CaseKey<'_>) -> Result<Option<CaseRow>> {
    let q = match key {
        CaseKey::Id(id) => Sql::new(concat!(
            "SELECT ",
            row_columns!(),
            " FROM cases WHERE id = $1"
        ))
        .bind(id),
        CaseKey::Reference(r) => Sql::new(concat!(
            "SELECT ",
            row_columns!(),
            " FROM cases WHERE reference = $1"
        ))
        .bind(r),
    };
    match q.fetch_optional(tx).await? {
        Some(r) => Ok(Some(case_row(&r)?)),
        None => Ok(None),
    }
}

/// How many cases one [`load_many`] query reads.
const CASES_PER_QUERY: usize = 100;

/// Load the cases with these ids (those that exist), a query per [`CASES_PER_QUERY`]: for
/// a command applied to many cases at once (the sender's fold of acknowledgements).
pub async fn load_many(tx: &mut Tx, ids: &[i64]) -> Result<HashMap<i64, CaseRow>> {
    let mut cases = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CASES_PER_QUERY) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {} FROM cases WHERE id IN ({})",
            row_columns!(),
            placeholders.join(", ")
        );
        // The fixed column list and numbered placeholders; every id is bound.
        let mut q = Sql::new(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(tx).await? {
            let row = case_row(&r)?;
            cases.insert(row.id, row);
        }
    }
    Ok(cases)
}

fn case_row(r: &impl StoreRow) -> Result<CaseRow> {
    Ok(CaseRow {
        id: r.col("id")?,
        reference: r.col("reference")?,
        status: r.col("status")?,
        partner_name: r.col("partner_name")?,
        partner_email: r.col("partner_email")?,
        cause: r.col("cause")?,
        structural_fault: r.col("structural_fault")?,
        improvement_measure: r.col("improvement_measure")?,
        handling: r.col("handling")?,
        result: r.col("result")?,
        evaluation: r.col("evaluation")?,
        client_satisfied: r.col("client_satisfied")?,
        ack_due_at: r.col::<TimeText>("ack_due_at")?.0,
        response_due_at: r.col::<TimeText>("response_due_at")?.0,
        resolution_due_at: r.col::<TimeText>("resolution_due_at")?.0,
        original_resolution_due_at: TimeText::opt(r.col("original_resolution_due_at")?),
        extension_reason: r.col("extension_reason")?,
        deadline_explanation: r.col("deadline_explanation")?,
        closed_at: TimeText::opt(r.col("closed_at")?),
        hold_reason: r.col("hold_reason")?,
        acknowledged_at: TimeText::opt(r.col("acknowledged_at")?),
        response_met_at: TimeText::opt(r.col("response_met_at")?),
        flags: r.col("flags")?,
        purged_at: TimeText::opt(r.col("purged_at")?),
        received_at: r.col::<TimeText>("received_at")?.0,
        acknowledged_by: r.col("acknowledged_by")?,
    })
}

/// How a command names its case.
#[derive(Debug, Clone, Copy)]
pub enum CaseKey<'a> {
    Id(i64),
    Reference(&'a str),
}

/// Set columns of one case (text values; flag columns take "yes"/"no"/None, time columns
/// [`super::ts`] text).
pub async fn update(tx: &mut Tx, id: i64, values: &[(Column, Option<String>)]) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    let mut sql = String::from("UPDATE cases SET ");
    for (i, (column, _)) in values.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(column.name());
        sql.push_str(&format!(" = ${}", i + 1));
    }
    sql.push_str(&format!(" WHERE id = ${}", values.len() + 1));
    let mut times = Vec::with_capacity(values.len());
    for (column, v) in values {
        times.push(match v {
            Some(v) if column.is_time() => Some(Ts(parse_ts(v)?)),
            _ => None,
        });
    }
    // The column names come from the closed set [`Column`], values are bound.
    let mut q = Sql::new(&sql);
    for ((column, v), time) in values.iter().zip(&times) {
        q = if column.is_flag() {
            q.bind(v.as_deref().map(|v| v == "yes"))
        } else if column.is_time() {
            q.bind(*time)
        } else {
            q.bind(v.as_deref())
        };
    }
    q.bind(id).execute(tx).await?;
    Ok(())
}

/// What mail to a case's complainant needs.
#[derive(Debug, Clone)]
pub struct Contact {
    pub address: Option<String>,
    pub name: Option<String>,
    pub subject: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub language: Option<String>,
}

/// The complainant's address and name, the subject, when the complaint came in and the
/// case's language.
pub async fn contact(tx: &mut Tx, id: i64) -> Result<Contact> {
    let r = Sql::new(
        "SELECT complainant_address, complainant_name, subject, received_at, language FROM cases WHERE id = $1",
    )
    .bind(id)
    .fetch_one(tx)
    .await?;
    Ok(Contact {
        address: r.col(0)?,
        name: r.col(1)?,
        subject: r.col(2)?,
        received_at: r.col::<Ts>(3)?.0,
        language: r.col(4)?,
    })
}
