-- Admin API: logins (people and machine accounts), their tokens and failed logins.
-- A login's role and scope (tenants, site, extension) decide what it may see; permissions
-- narrow the role per area (JSON object: area -> subset of "crud"). version counts updates
-- (the API's ETag). Tokens keep only a SHA-256 of their secret.

CREATE TABLE api_logins (
    name          TEXT    PRIMARY KEY NOT NULL,
    role          TEXT    NOT NULL,
    tenants       TEXT    NOT NULL DEFAULT '[]',
    site          TEXT,
    extension     TEXT,
    permissions   TEXT    NOT NULL DEFAULT '{}',
    password_hash TEXT,
    totp_secret   TEXT,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    DOUBLE PRECISION    NOT NULL,
    updated_at    DOUBLE PRECISION    NOT NULL,
    version       INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE api_tokens (
    id            TEXT    PRIMARY KEY NOT NULL,
    login         TEXT    NOT NULL REFERENCES api_logins (name) ON DELETE CASCADE,
    secret_hash   TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    created_at    DOUBLE PRECISION    NOT NULL,
    expires_at    DOUBLE PRECISION,
    revoked_at    DOUBLE PRECISION
);

CREATE INDEX api_tokens_login ON api_tokens (login);

CREATE TABLE api_login_failures (
    login         TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    failed_at     DOUBLE PRECISION    NOT NULL
);

CREATE INDEX api_login_failures_login ON api_login_failures (login, failed_at);
CREATE INDEX api_login_failures_source ON api_login_failures (source, failed_at);
