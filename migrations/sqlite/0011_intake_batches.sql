-- Intake in batches (issue 8). Each mail is still taken in by a transaction of its own (the
-- fault boundary: one mail never takes others down), but those commits no longer wait for
-- the disk one by one: intake commits them without syncing, and at the end of a batch makes
-- them all durable at once with one synchronous commit, before any of the batch's mails
-- leaves the mailbox. This table is what that commit writes: a counter per mailbox, so the
-- commit always has a change to sync (a commit that changes nothing writes nothing), and
-- `status`-style figures (batches and mails taken in) come for free.
CREATE TABLE intake_batches (
    mailbox TEXT NOT NULL PRIMARY KEY,     -- imap:<user>/<folder> or maildir:<path>
    batches INTEGER NOT NULL,              -- batches made durable
    mails INTEGER NOT NULL,                -- mails handled in them (taken in, duplicates, quarantined)
    last_at TEXT NOT NULL                  -- when the last batch was made durable
);

-- The flood rules count the automatic mail sent to an address (outbox::hold_reason) before
-- every automatic send, by lower(recipients): the index on recipients cannot answer that,
-- so each send scanned the whole outbox, and a backlog's sending slowed down as it went
-- (quadratic). An index on the expression (SQLite 3.9+, PostgreSQL alike) answers it.
CREATE INDEX outbox_recipient_lower ON outbox (lower(recipients), status, sent_at);

-- Intake asks for every partner's open cases (partners::load) before it assigns a new
-- complaint: grouped from the cases table by partner, sorted each time, so on a backlog
-- every mail took longer than the one before. With this index the count is read in order
-- from the index alone.
CREATE INDEX cases_partner_status ON cases (partner_email, status);
