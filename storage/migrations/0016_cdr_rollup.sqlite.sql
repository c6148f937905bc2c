-- The dashboards' rollup (storage/cdr_rollup.py): per tenant, 15-minute UTC slot
-- (start_time / 900), trunk and direction, the calls, answered calls, billed time in ticks of
-- 2^-22 s (exact sums) and the anchored calls' MOS / worse-side jitter / worse-side loss:
-- count, sum and how many at or below each edge of storage/cdr_analytics.py (mos_le0 is
-- MOS <= 1.0 ... jitter_le5 is <= 100 ms, loss_le5 <= 0.1). Kept up to date when read, up
-- to cdr_rollup_mark.rolled_up, so writing a CDR costs nothing more.
--
-- How far: the CDRs with a rowid up to rolled_up (writers take turns, rowids come in
-- order). The first read adds up the rows already stored.

CREATE TABLE cdr_rollup (
    tenant        TEXT    NOT NULL,
    slot          INTEGER  NOT NULL,
    trunk         TEXT    NOT NULL,
    direction     TEXT    NOT NULL,
    calls         BIGINT  NOT NULL,
    answered      BIGINT  NOT NULL,
    billed        BIGINT  NOT NULL,
    mos_n       BIGINT  NOT NULL,
    mos_sum     REAL NOT NULL,
    mos_le0     BIGINT  NOT NULL,
    mos_le1     BIGINT  NOT NULL,
    mos_le2     BIGINT  NOT NULL,
    mos_le3     BIGINT  NOT NULL,
    mos_le4     BIGINT  NOT NULL,
    mos_le5     BIGINT  NOT NULL,
    mos_le6     BIGINT  NOT NULL,
    mos_le7     BIGINT  NOT NULL,
    jitter_n       BIGINT  NOT NULL,
    jitter_sum     REAL NOT NULL,
    jitter_le0     BIGINT  NOT NULL,
    jitter_le1     BIGINT  NOT NULL,
    jitter_le2     BIGINT  NOT NULL,
    jitter_le3     BIGINT  NOT NULL,
    jitter_le4     BIGINT  NOT NULL,
    jitter_le5     BIGINT  NOT NULL,
    loss_n       BIGINT  NOT NULL,
    loss_sum     REAL NOT NULL,
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
    rolled_up  INTEGER NOT NULL
);
INSERT INTO cdr_rollup_mark (id, rolled_up) VALUES (1, 0);
