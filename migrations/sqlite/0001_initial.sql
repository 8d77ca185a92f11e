-- klachtpost's first schema: cases, every message in and out, the outbox, the mailbox
-- checkpoint.
--
-- Portable SQL on purpose (SQLite now, PostgreSQL later): TEXT timestamps in RFC 3339 UTC
-- with a fixed format ("2026-11-21T10:00:00Z"), so they sort as text; BLOB for raw bytes
-- (BYTEA in the PostgreSQL twin of this file); no SQLite-only column types. An applied
-- migration is never edited: later changes are new files.

-- One row per year: the last case sequence number handed out. References are
-- KL-<year>-<sequence>, the sequence restarting each year; this table makes that a
-- single atomic upsert instead of a MAX() race.
CREATE TABLE case_sequences (
    year INTEGER NOT NULL PRIMARY KEY,
    last INTEGER NOT NULL
);

-- A complaint. The register fields (cause … client_satisfied) are what the procedure's
-- form asks for; partners fill them in. Deadlines are computed once at intake and never
-- reset by a status change.
CREATE TABLE cases (
    id INTEGER NOT NULL PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,                  -- open | closed
    channel TEXT NOT NULL,                 -- email | forwarded | verbal
    complainant_name TEXT,
    complainant_address TEXT,              -- lower-cased; NULL when none was recognised
    complainant_source TEXT NOT NULL,      -- how the complainant was recognised
    subject TEXT NOT NULL,
    received_at TEXT NOT NULL,             -- when the firm received the complaint
    opened_at TEXT NOT NULL,               -- when klachtpost opened the case
    partner_name TEXT NOT NULL,
    partner_email TEXT NOT NULL,           -- the responsible partner
    staff_address TEXT,                    -- who forwarded it or wrote the note
    ack_due_at TEXT NOT NULL,
    response_due_at TEXT NOT NULL,
    resolution_due_at TEXT NOT NULL,
    deadline_explanation TEXT NOT NULL,
    flags TEXT NOT NULL,                   -- things a partner must look at, one per line
    cause TEXT,
    structural_fault INTEGER,              -- NULL unknown, 0 no, 1 yes
    improvement_measure TEXT,
    handling TEXT,
    result TEXT,
    evaluation TEXT,
    client_satisfied INTEGER,              -- NULL unknown, 0 no, 1 yes
    closed_at TEXT
);
CREATE INDEX cases_status ON cases (status);

-- Every message, in or out, with its raw bytes exactly as received or sent. A message not
-- (yet) on a case has case_id NULL (automatic mail, triage items).
CREATE TABLE messages (
    id INTEGER NOT NULL PRIMARY KEY,
    case_id INTEGER REFERENCES cases (id),
    direction TEXT NOT NULL,               -- inbound | outbound
    kind TEXT NOT NULL,                    -- complaint, reply, forward, note, automatic, bounce, triage, acknowledgement
    source_key TEXT UNIQUE,                -- where it was fetched: imap:<mailbox>:<uidvalidity>:<uid>, maildir:<name>
    message_id TEXT,                       -- without angle brackets
    from_name TEXT,
    from_address TEXT,
    subject TEXT NOT NULL,
    date_header TEXT,
    received_at TEXT NOT NULL,
    text TEXT NOT NULL,
    decision_reason TEXT NOT NULL,
    flags TEXT NOT NULL,
    size INTEGER NOT NULL,
    raw BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_case ON messages (case_id);

CREATE TABLE attachments (
    id INTEGER NOT NULL PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    filename TEXT,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id);

-- The durable outbox. A row is written in the same transaction as the case it belongs to;
-- the sender task delivers it. status: queued (waiting for next_attempt_at) | sent |
-- failed (permanent error or attempts exhausted: reported, never silently dropped).
CREATE TABLE outbox (
    id INTEGER NOT NULL PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    case_id INTEGER REFERENCES cases (id),
    purpose TEXT NOT NULL,                 -- acknowledgement | notice
    envelope_from TEXT NOT NULL,
    recipients TEXT NOT NULL,              -- one address per line
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- A case's history: opened, acknowledged, flagged, extended, closed … (never its text).
CREATE TABLE case_events (
    id INTEGER NOT NULL PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases (id),
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX case_events_case ON case_events (case_id);

-- Per mailbox folder: the UIDVALIDITY seen and the highest UID stored, so a restart fetches
-- only what is new (RFC 3501 §2.3.1.1). Maildir needs no checkpoint (processed mail moves
-- to cur/).
CREATE TABLE mailbox_state (
    mailbox TEXT NOT NULL PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
