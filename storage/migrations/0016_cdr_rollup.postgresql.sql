-- The dashboards' rollup (storage/cdr_rollup.py): per tenant, 15-minute UTC slot
-- (start_time / 900), trunk and direction, the calls, answered calls, billed time in ticks of
-- 2^-22 s (exact sums) and the anchored calls' MOS / worse-side jitter / worse-side loss:
-- count, sum and how many at or below each edge of storage/cdr_analytics.py (mos_le0 is
-- MOS <= 1.0 ... jitter_le5 is <= 100 ms, loss_le5 <= 0.1). Kept up to date when read, up
-- to cdr_rollup_mark.rolled_up, so writing a CDR costs nothing more.
--
-- How far: the CDRs written by transactions below rolled_up (a snapshot's xmin, see
-- storage/cdr_rollup.py). Rows already stored count as written by transaction 0, so the
-- first read adds them all up; later rows carry their writer's id.

ALTER TABLE cdrs ADD COLUMN written xid8 NOT NULL DEFAULT '0';
ALTER TABLE cdrs ALTER COLUMN written SET DEFAULT pg_current_xact_id();
CREATE INDEX cdrs_written ON cdrs (written);

CREATE TABLE cdr_rollup (
    tenant        TEXT    NOT NULL,
    slot          BIGINT  NOT NULL,
    trunk         TEXT    NOT NULL,
    direction     TEXT    NOT NULL,
    calls         BIGINT  NOT NULL,
    answered      BIGINT  NOT NULL,
    billed        BIGINT  NOT NULL,
    mos_n       BIGINT  NOT NULL,
    mos_sum     DOUBLE PRECISION NOT NULL,
    mos_le0     BIGINT  NOT NULL,
    mos_le1     BIGINT  NOT NULL,
    mos_le2     BIGINT  NOT NULL,
    mos_le3     BIGINT  NOT NULL,
    mos_le4     BIGINT  NOT NULL,
    mos_le5     BIGINT  NOT NULL,
    mos_le6     BIGINT  NOT NULL,
    mos_le7     BIGINT  NOT NULL,
    jitter_n       BIGINT  NOT NULL,
    jitter_sum     DOUBLE PRECISION NOT NULL,
    jitter_le0     BIGINT  NOT NULL,
    jitter_le1     BIGINT  NOT NULL,
    jitter_le2     BIGINT  NOT NULL,
    jitter_le3     BIGINT  NOT NULL,
    jitter_le4     BIGINT  NOT NULL,
    jitter_le5     BIGINT  NOT NULL,
    loss_n       BIGINT  NOT NULL,
    loss_sum     DOUBLE PRECISION NOT NULL,
    loss_le0     BIGINT  NOT NULL,
    loss_le1     BIGINT  NOT NULL,
    loss_le2     BIGINT  NOT NULL,
    loss_le3     BIGINT  NOT NULL,
    loss_le4     BIGINT  NOT NULL,
    loss_le5     BIGINT  NOT NULL,
    PRIMARY KEY (tenant, slot, trunk, direction)
);

CREATE TABLE cdr_rollup_mark (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    rolled_up  xid8    NOT NULL
);
INSERT INTO cdr_rollup_mark (id, rolled_up) VALUES (1, '0');
