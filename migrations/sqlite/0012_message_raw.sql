-- A message's raw bytes in a table of their own (issue 8: bounded memory).
--
-- Intake writes a large mail (from 1 MiB on) into its row in pieces with SQLite's
-- incremental blob I/O: it inserts the row with `zeroblob(size)` and then writes the bytes
-- into it. SQLite keeps a zeroblob as a mere count only when it is the LAST column of the
-- record it builds; `messages.raw` was followed by `created_at` (and `identity`), so SQLite
-- expanded the zeroblob in memory, twice the mail's size (a 20 MB attachment: 107 MiB peak
-- RSS for a backlog). Here `raw` is the last column and `message_id` the rowid (INTEGER
-- PRIMARY KEY), so the record is the count alone and the pieces go straight to the pages.
-- It also keeps the messages table small: listing, threading and duplicate checks read
-- rows without 20 MB of overflow pages behind them.
--
-- Every message has exactly one row here, written in the transaction that inserts the
-- message; ON DELETE CASCADE makes deleting a message (retention) delete its raw bytes too,
-- which `secure_delete` (on for every connection) overwrites in the file.
CREATE TABLE message_raw (
    message_id INTEGER NOT NULL PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    raw BLOB NOT NULL                      -- exactly as received or sent; keep it LAST
);

-- The bytes already stored move over, row for row (a register grows by its raw mail until
-- the freed pages are given back: the retention job's incremental vacuum does that).
INSERT INTO message_raw (message_id, raw) SELECT id, raw FROM messages ORDER BY id;

-- messages.raw is dropped rather than left as an empty blob: nothing may read a raw mail
-- past this table, and an empty column would still be a second place to write. SQLite
-- (3.35+) can drop it: no index, constraint, trigger or view uses it. `size` stays.
ALTER TABLE messages DROP COLUMN raw;
