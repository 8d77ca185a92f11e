-- The complaint register (issue 10): typed statuses, the form's missing fields, holds and
-- purges, a tamper-evident history, and due-row jobs.
--
-- Statuses become a closed set (src/case/status.rs): new, acknowledged, investigating,
-- responded, closed, not_a_complaint. The old "open" is mapped to the furthest step the
-- stored facts prove: responded (a reply reached the complainant), acknowledged (the
-- acknowledgement was sent), else new.

ALTER TABLE cases ADD COLUMN complainant_phone TEXT;     -- from a verbal-complaint note
ALTER TABLE cases ADD COLUMN acknowledged_at TEXT;       -- when the acknowledgement was sent
ALTER TABLE cases ADD COLUMN extended_at TEXT;           -- when the last extension was made
ALTER TABLE cases ADD COLUMN hold_reason TEXT;           -- non-NULL: on hold, never purged
ALTER TABLE cases ADD COLUMN purged_at TEXT;             -- non-NULL: a tombstone

UPDATE cases SET acknowledged_at = (
    SELECT MIN(o.sent_at) FROM outbox o
    WHERE o.case_id = cases.id AND o.purpose = 'acknowledgement' AND o.status = 'sent'
);
UPDATE cases SET status = CASE
    WHEN status = 'closed' THEN 'closed'
    WHEN response_met_at IS NOT NULL THEN 'responded'
    WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
    ELSE 'new'
END;

-- case_events is the history and stays the history (extended, not replaced, so old rows
-- keep their ids and order). Each entry now says who made the change, what changed
-- (JSON list of {field, old, new}) and why. The entry's content (detail, changes, reason)
-- is hashed into content_hash; the entry's hash covers its fixed fields, content_hash and
-- the previous entry's hash: one chain over the whole register, in id order. Purging a
-- case empties the content of its entries (content_purged = 1) but keeps content_hash,
-- so the chain still verifies (src/store/history.rs).
ALTER TABLE case_events ADD COLUMN actor TEXT NOT NULL DEFAULT 'klachtpost';
ALTER TABLE case_events ADD COLUMN changes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE case_events ADD COLUMN reason TEXT;
ALTER TABLE case_events ADD COLUMN content_purged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE case_events ADD COLUMN content_hash TEXT;
ALTER TABLE case_events ADD COLUMN prev_hash TEXT;
ALTER TABLE case_events ADD COLUMN hash TEXT;

-- SQL cannot compute SHA-256, so rows written before this migration are sealed into the
-- chain by klachtpost at the next open; only rows up to this id may be sealed that way
-- (a row added later without a hash is tampering, not legacy).
CREATE TABLE history_legacy (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    legacy_through INTEGER NOT NULL
);
INSERT INTO history_legacy (id, legacy_through) SELECT 1, COALESCE(MAX(id), 0) FROM case_events;

-- Periodic work as due rows (survives restarts; a missed run happens at the next start):
-- the daemon runs a job when due_at has passed and sets the next due_at.
CREATE TABLE jobs (
    name TEXT NOT NULL PRIMARY KEY,
    due_at TEXT NOT NULL,
    last_run_at TEXT,
    last_result TEXT
);
