-- Acknowledgements exactly once, as far as SMTP allows (issue 8). A row is claimed before
-- it is handed to the outgoing server: status 'sending' with the time of the claim, and
-- marked 'sent' right after the server's 250. A row still 'sending' when klachtpost starts
-- was claimed by a run that crashed and may or may not have been delivered: it is sent
-- again, as the same stored message (so with the same Message-ID, fixed at queue time),
-- which lets the recipient's mail client fold the rare double.
-- status is now: queued | sending | sent | failed.
ALTER TABLE outbox ADD COLUMN claimed_at TEXT;
