-- The provisioning model in the store: one row per object (a tenant's settings, a user, a
-- trunk, a DID...), its fields as JSON in the shape of the configuration file, validated by
-- the config/ models before it is written. `version` counts the object's changes (the API's
-- ETag); the single-row `provisioning_revision` counts every change of the whole model and
-- is NOTIFYed on channel softswitch_provisioning, so every node sees a change at once.
-- JSON is kept as text: the store hands back exactly the document it was given.

CREATE TABLE provisioning_objects (
    tenant     TEXT             NOT NULL,
    kind       TEXT             NOT NULL,
    key        TEXT             NOT NULL,
    version    BIGINT           NOT NULL CHECK (version >= 1),
    data       TEXT             NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, kind, key)
);

CREATE TABLE provisioning_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT  NOT NULL
);

INSERT INTO provisioning_revision (id, revision) VALUES (1, 0);

-- Every provisioning change: who (actor), from where (source address), when, which
-- object, and the object before and after (JSON text; NULL for a create's before and a
-- delete's after). Written in the transaction of the change; append-only.
CREATE TABLE audit_log (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       DOUBLE PRECISION NOT NULL,
    actor    TEXT             NOT NULL,
    source   TEXT             NOT NULL,
    action   TEXT             NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    tenant   TEXT             NOT NULL,
    kind     TEXT             NOT NULL,
    key      TEXT             NOT NULL,
    before   TEXT,
    after    TEXT,
    revision BIGINT           NOT NULL
);

CREATE INDEX audit_log_object ON audit_log (tenant, kind, key, id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
