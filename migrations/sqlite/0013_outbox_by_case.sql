-- The partners' job reads every open case with what became of its acknowledgement
-- (store::partners::open_cases: four lookups in the outbox per case, by case and purpose).
-- Without an index on outbox.case_id each lookup read the whole outbox, so the job took
-- time in the square of the cases: 9.97 s for 10,000 open cases after a backlog (issue 8).
-- With this index each lookup is a few index pages.
CREATE INDEX outbox_case ON outbox (case_id, purpose, status);
