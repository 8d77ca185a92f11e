-- Intake in batches (issue 8), the twin of migrations/sqlite/0011_intake_batches.sql (the
-- comments on why are there). Each mail is still taken in by a transaction of its own, but
-- intake commits them without waiting for the disk (synchronous_commit = off on its
-- sessions) and makes a batch durable with one synchronous commit that writes this counter,
-- before any of the batch's mails leaves the mailbox.
CREATE TABLE intake_batches (
    mailbox TEXT NOT NULL PRIMARY KEY,     -- imap:<user>/<folder> or maildir:<path>
    batches BIGINT NOT NULL,               -- batches made durable
    mails BIGINT NOT NULL,                 -- mails handled in them
    last_at TIMESTAMPTZ NOT NULL           -- when the last batch was made durable
);

-- The flood rules count the automatic mail sent to an address by lower(recipients): an
-- index on the expression answers that without scanning the outbox.
CREATE INDEX outbox_recipient_lower ON outbox (lower(recipients), status, sent_at);

-- Every partner's open cases, counted before a new complaint is assigned.
CREATE INDEX cases_partner_status ON cases (partner_email, status);
