-- The partners' job reads every open case with what became of its acknowledgement
-- (store::partners::open_cases: four lookups in the outbox per case, by case and purpose).
-- Without an index on outbox.case_id each lookup read the whole outbox, so the job took
-- time in the square of the cases: 9.97 s for 10,000 open cases after a backlog (issue 8).
-- With this index each lookup is a few index pages. Not on status: a row's status changes
-- two or three times (queued, sending, sent), and each change would rewrite the entry.
CREATE INDEX outbox_case ON outbox (case_id, purpose);

-- No query reads the outbox by recipients as written any more: the flood rules ask by
-- lower(recipients), answered by outbox_recipient_lower (0011). The old index only cost
-- every outbox insert and status change a write.
DROP INDEX outbox_recipient;
