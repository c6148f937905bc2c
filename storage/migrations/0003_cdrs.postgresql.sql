-- Call detail records: one row per call. Times are epoch seconds (REAL); legs is a JSON
-- array describing every outbound leg tried (the call flow).

CREATE TABLE cdrs (
    call_id       TEXT    PRIMARY KEY NOT NULL,
    sip_call_id   TEXT    NOT NULL,
    tenant        TEXT    NOT NULL,
    direction     TEXT    NOT NULL,
    caller_number TEXT    NOT NULL,
    caller_name   TEXT    NOT NULL,
    dialled       TEXT    NOT NULL,
    destination   TEXT    NOT NULL,
    trunk         TEXT    NOT NULL,
    start_time    DOUBLE PRECISION NOT NULL,
    answer_time   DOUBLE PRECISION,
    end_time      DOUBLE PRECISION NOT NULL,
    disposition   TEXT    NOT NULL,
    sip_code      INTEGER NOT NULL,
    q850_cause    INTEGER NOT NULL,
    q850_name     TEXT    NOT NULL,
    legs          TEXT    NOT NULL DEFAULT '[]'
);

CREATE INDEX cdrs_start_time ON cdrs (start_time);
CREATE INDEX cdrs_tenant_start_time ON cdrs (tenant, start_time);
