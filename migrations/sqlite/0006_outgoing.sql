-- The outgoing side: mail in the case's language, and protection against loops and floods.
-- (Numbered 0006 by the lead so parallel branches do not collide.)

-- The language the case is written in ("nl" or "en"), chosen once when the case opens
-- ([templates] language), so later mail on the case (an extension) speaks the same
-- language as the acknowledgement. NULL on cases opened before: Dutch.
ALTER TABLE cases ADD COLUMN language TEXT;

-- The RFC 3834 Auto-Submitted value of an outgoing message ("auto-replied",
-- "auto-generated"); NULL for mail sent on a person's action (an extension). The flood
-- limits ([outgoing] max_auto_per_address) count automatic mail sent per recipient.
-- A row the limits or the loop rules stop gets status 'held' (never sent, kept, the case
-- flagged), next to queued | sent | failed.
ALTER TABLE outbox ADD COLUMN auto_submitted TEXT;
CREATE INDEX outbox_recipient ON outbox (recipients, status, sent_at);

-- Hard bounces per address, so no automatic mail goes to an address that bounced within
-- [outgoing] bounce_block. source: "smtp" (our server refused the recipient with 5xx) or
-- "report" (a delivery failure report for a message we sent was taken in).
CREATE TABLE bounces (
    id INTEGER NOT NULL PRIMARY KEY,
    address TEXT NOT NULL,                 -- lower-cased
    at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX bounces_address ON bounces (address, at);
