-- No mail stops intake, and no mail is taken in twice (issue 7, items 2 and 3).
--
-- 1. A mail's identity. `source_key` says where a mail sat (folder, UIDVALIDITY, UID);
--    that changes when UIDs are renumbered, a folder is renamed, a mail is appended
--    again or reaches the mailbox twice (an alias and a Cc). `identity` says what the
--    mail is: the SHA-256 (hex) of its Message-ID, its author's header fields and its
--    body, without what delivery adds (Received, Delivered-To, …); see
--    src/intake/identity.rs. NULL for what klachtpost sends itself, and for rows stored
--    before this migration until the daemon's start-up fills them in (SQL has no SHA-256).
ALTER TABLE messages ADD COLUMN identity TEXT;
CREATE INDEX messages_identity ON messages (identity);

-- 2. Quarantine: a mail that could not be taken in (unreadable, too large, or any error
--    inside intake) is kept here raw, in a transaction of its own, and the partners are
--    told its reference (Q-<id>), never its content. A retry that succeeds links the
--    message it became; the row stays as the record that it was quarantined.
CREATE TABLE quarantine (
    id INTEGER NOT NULL PRIMARY KEY,
    source_key TEXT,                       -- where it was fetched (as messages.source_key)
    message_id TEXT,                       -- its Message-ID, without angle brackets
    identity TEXT NOT NULL,                -- as messages.identity
    received_at TEXT NOT NULL,
    quarantined_at TEXT NOT NULL,
    reason TEXT NOT NULL,                  -- why, in a sentence (never the mail's content)
    size INTEGER NOT NULL,
    raw BLOB NOT NULL,
    status TEXT NOT NULL,                  -- quarantined | taken_in | duplicate
    attempts INTEGER NOT NULL,             -- retries so far
    last_attempt_at TEXT,
    resolved_at TEXT,
    message_row INTEGER REFERENCES messages (id), -- what a successful retry stored
    notice_row INTEGER REFERENCES messages (id)   -- the notice to the partners
);
CREATE INDEX quarantine_status ON quarantine (status);
CREATE INDEX quarantine_identity ON quarantine (identity);

-- 3. Duplicates: a mail seen before is not stored a second time; this small record (no raw
--    copy) says where it was seen, what it duplicated and how often. One row per mailbox
--    position, so a mail that cannot be moved away and is seen again and again counts up
--    instead of filling the table.
CREATE TABLE duplicates (
    id INTEGER NOT NULL PRIMARY KEY,
    source_key TEXT UNIQUE,                -- NULL when the caller gave none (tests, tools)
    identity TEXT NOT NULL,
    message_row INTEGER REFERENCES messages (id),     -- the original, when taken in
    quarantine_row INTEGER REFERENCES quarantine (id), -- the original, when quarantined
    matched_by TEXT NOT NULL,              -- source_key | identity
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    times INTEGER NOT NULL
);
