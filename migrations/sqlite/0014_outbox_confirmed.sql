-- An outgoing server's 250, recorded at once (issue 8). SQLite keeps using its journal file
-- beside the database (store::confirmations); the column is here so both databases have
-- the same outbox (`klachtpost migrate` copies it either way). See the PostgreSQL file.
ALTER TABLE outbox ADD COLUMN confirmed_at TEXT;
