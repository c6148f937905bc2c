-- The provisioning model in the store: one row per object (a tenant's settings, a user, a
-- trunk, a DID...), its fields as JSON in the shape of the configuration file, validated by
-- the config/ models before it is written. `version` counts the object's changes (the API's
-- ETag); the single-row `provisioning_revision` counts every change of the whole model, so a
-- switch node sees another's change with one tiny query. Times are epoch seconds (REAL).

CREATE TABLE provisioning_objects (
    tenant     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    data       TEXT    NOT NULL,
    updated_at REAL    NOT NULL,
    PRIMARY KEY (tenant, kind, key)
);

CREATE TABLE provisioning_revision (
    id       INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    revision INTEGER NOT NULL
);

INSERT INTO provisioning_revision (id, revision) VALUES (1, 0);

-- Every provisioning change: who (actor), from where (source address), when, which
-- object, and the object before and after (JSON; NULL for a create's before and a delete's
-- after). Written in the transaction of the change; append-only.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY NOT NULL,
    at       REAL    NOT NULL,
    actor    TEXT    NOT NULL,
    source   TEXT    NOT NULL,
    action   TEXT    NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    tenant   TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    before   TEXT,
    after    TEXT,
    revision INTEGER NOT NULL
);

CREATE INDEX audit_log_object ON audit_log (tenant, kind, key, id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
