-- Several instances on one database (issue 13). A lease is a row that one instance holds
-- until expires_at and renews every few seconds: `mailbox:<which>` says which instance
-- watches that mailbox (only one at a time), `instance:<id>` that an instance is alive.
-- A holder that stops renewing (killed) loses the lease when it expires, and another
-- instance takes over. Leases are runtime state: `migrate --from --to` does not copy them.
CREATE TABLE leases (
    name TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    renewed_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Which instance claimed an outbox row: at start-up only the claims of instances that are
-- gone (no live `instance:` lease) go back to the queue, not those another running
-- instance is sending right now.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
