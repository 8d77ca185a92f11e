-- Outages of the channels klachtpost depends on (issue 7, item 5): the mailbox it reads, and
-- (issues 9 and 12) the outgoing mail it sends. One row per channel, written after every
-- pass, so that an outage, and whether the partners have been told about it, survives a
-- restart: the alert goes out once per outage and the all-clear once, however often the
-- daemon restarts in between. `klachtpost status` reads it.
CREATE TABLE channel_health (
    channel TEXT NOT NULL PRIMARY KEY,     -- mailbox | outgoing
    last_success_at TEXT,                  -- the last pass that worked
    failing_since TEXT,                    -- first failure after the last success; NULL: healthy
    last_failure_at TEXT,
    last_error TEXT,                       -- the last failure, one line; never mail content
    alerted_at TEXT,                       -- when the partners were told of the current outage
    backlog INTEGER,                       -- messages waiting in the folder at the last look
    updated_at TEXT NOT NULL
);
