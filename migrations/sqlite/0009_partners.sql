-- The partners' side (issue 11): what partners were told, each thing once, and which of
-- our mails a partner may answer with commands.

-- Everything klachtpost tells a partner on a schedule has a key, and the key is UNIQUE:
-- the row is written in the same transaction as the queued mail, so a restart, a second
-- scheduler step or a second instance can never send the same reminder twice (the "due
-- rows with a key" shape of Oban / pg-boss / graphile-worker).
--   reminder:<case>:<deadline>:<due>:<offset>:<day>   a reminder on one working day
--   escalation:<case>:<deadline>:<due>                all partners told, once per deadline
--   ack:<case>                                        acknowledge by phone or letter
--   digest:<scheduled date>                           the partners' meeting digest
CREATE TABLE partner_notices (
    key TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,                    -- reminder | escalation | ack_warning | digest
    case_id INTEGER REFERENCES cases (id), -- NULL for a digest
    created_at TEXT NOT NULL
);
CREATE INDEX partner_notices_kind ON partner_notices (kind, created_at);

-- Every mail sent to a partner (new complaint, reminders, warnings, digest, command
-- confirmations), by Message-ID, with the cases it is about: a reply to one of these is
-- routed to the reply commands, not threaded as correspondence with the complainant (it
-- must never count as the response to the client).
CREATE TABLE partner_mail (
    message_id TEXT NOT NULL PRIMARY KEY,  -- without angle brackets
    purpose TEXT NOT NULL,
    cases TEXT NOT NULL,                   -- case references, one per line (may be empty)
    recipient TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- An acknowledgement made outside klachtpost (`cases record REF --acknowledged-by
-- phone|letter|in-person`): how; acknowledged_at keeps when.
ALTER TABLE cases ADD COLUMN acknowledged_by TEXT;
