-- Registrations (location service) and the switch's own key/value settings.
-- Times are epoch seconds (REAL); path is a JSON array of Path header values.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE registrations (
    aor           TEXT    NOT NULL,
    contact       TEXT    NOT NULL,
    expires_at    REAL    NOT NULL,
    q             REAL,
    call_id       TEXT    NOT NULL,
    cseq          INTEGER NOT NULL,
    instance_id   TEXT,
    reg_id        INTEGER,
    path          TEXT    NOT NULL DEFAULT '[]',
    received      TEXT,
    transport     TEXT    NOT NULL,
    user_agent    TEXT,
    registered_at REAL    NOT NULL,
    reachable     INTEGER CHECK (reachable IN (0, 1)),
    PRIMARY KEY (aor, contact)
);

CREATE INDEX registrations_expires_at ON registrations (expires_at);
