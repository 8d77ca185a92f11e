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
