-- A message's raw bytes in a table of their own (issue 8), the twin of
-- migrations/sqlite/0012_message_raw.sql (why is there: on SQLite a large mail is written
-- into its row in pieces, which only stays a zeroblob count when `raw` is the record's last
-- column). PostgreSQL binds the bytes in one INSERT either way; the same schema on both
-- keeps the store's SQL and `migrate --from sqlite --to postgres` one.
--
-- Every message has exactly one row here, written in the transaction that inserts the
-- message; ON DELETE CASCADE deletes it with its message (retention).
CREATE TABLE message_raw (
    message_id BIGINT NOT NULL PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    raw BYTEA NOT NULL
);

INSERT INTO message_raw (message_id, raw) SELECT id, raw FROM messages ORDER BY id;

-- Dropped, not emptied: nothing reads a raw mail past message_raw. (PostgreSQL only marks
-- the column dropped; the old values go as rows are rewritten, deleted and vacuumed.)
ALTER TABLE messages DROP COLUMN raw;
