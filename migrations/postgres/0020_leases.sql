-- Several instances on one database (issue 13). A lease is a row that one instance holds
-- until expires_at and renews every few seconds: `mailbox:<which>` says which instance
-- watches that mailbox (only one at a time), `instance:<id>` that an instance is alive.
-- A holder that stops renewing (killed) loses the lease when it expires, and another
-- instance takes over. Leases are runtime state: `migrate --from --to` does not copy them.
CREATE TABLE leases (
    name TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- Which instance claimed an outbox row: at start-up only the claims of instances that are
-- gone (no live `instance:` lease) go back to the queue, not those another running
-- instance is sending right now.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;

-- Wake-ups across instances: a row queued by one instance is sent at once by whichever
-- instance's sender is free; each daemon LISTENs on this channel.
CREATE FUNCTION klachtpost_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('klachtpost_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION klachtpost_outbox_notify();
