-- Who may write on a case (issue 12). Until now every address whose mail had been attached
-- to a case counted as a party to it, so a stranger could join a case in two mails: an
-- auto-reply quoting its reference was attached, and the next mail from the same address
-- was taken as a party's reply. Parties are now recorded explicitly, when klachtpost decides
-- someone is one: the complainant when the case opens, and the addresses the complainant's
-- own mail (or the firm's answer) puts in To or Cc. Staff and partners are parties by role
-- and are not listed. Automatic mail never adds a party.
CREATE TABLE case_parties (
    case_id INTEGER NOT NULL REFERENCES cases (id),
    address TEXT NOT NULL,                 -- lower-cased
    role TEXT NOT NULL,                    -- complainant | addressed
    added_at TEXT NOT NULL,
    message_id INTEGER REFERENCES messages (id), -- the mail that made them a party, if any
    PRIMARY KEY (case_id, address)
);

-- Existing cases keep their complainant as party. Other addresses that wrote on them are
-- not carried over (that was the hole): their next mail is a triage item for the partner.
INSERT INTO case_parties (case_id, address, role, added_at)
SELECT id, complainant_address, 'complainant', opened_at
FROM cases
WHERE complainant_address IS NOT NULL;
