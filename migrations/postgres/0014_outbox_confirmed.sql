-- An outgoing server's 250, recorded at once (issue 8: exactly once under kill -9). SQLite
-- writes it to a journal file beside the database, outside its single write lock
-- (store::confirmations). PostgreSQL has no such file (instances share the database, not a
-- disk): it marked the row sent in a transaction that takes the history's advisory lock,
-- so the mark waited behind intake's transactions, and a kill in that wait sent the
-- acknowledgement again. Now the 250 sets confirmed_at in a transaction of its own, without
-- that lock; the row is marked sent (and its case acknowledged) when the sender folds the
-- confirmations after its batch, or at the next start.
ALTER TABLE outbox ADD COLUMN confirmed_at TIMESTAMPTZ;
