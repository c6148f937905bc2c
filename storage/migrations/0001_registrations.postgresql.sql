-- Registrations (location service) and the switch's own key/value settings.
-- Times are epoch seconds (double precision, same as SQLite REAL); path is a JSON
-- array of Path header values.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE registrations (
    aor           TEXT             NOT NULL,
    contact       TEXT             NOT NULL,
    expires_at    DOUBLE PRECISION NOT NULL,
    q             DOUBLE PRECISION,
    call_id       TEXT             NOT NULL,
    cseq          BIGINT           NOT NULL,
    instance_id   TEXT,
    reg_id        BIGINT,
    path          JSONB            NOT NULL DEFAULT '[]',
    received      TEXT,
    transport     TEXT             NOT NULL,
    user_agent    TEXT,
    registered_at DOUBLE PRECISION NOT NULL,
    reachable     BOOLEAN,
    PRIMARY KEY (aor, contact)
);

CREATE INDEX registrations_expires_at ON registrations (expires_at);
