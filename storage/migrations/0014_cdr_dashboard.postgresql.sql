-- The dashboards' aggregates (storage/cdr_analytics.py: volume per hour/day, ASR/ACD per
-- trunk, MOS per trunk) and the call history's counts by direction/disposition read a
-- tenant's period: with every column they read in one index the database answers them from
-- the index alone, without visiting a million table rows.

CREATE INDEX cdrs_tenant_start_figures ON cdrs
    (tenant, start_time, direction, disposition, trunk, answer_time, end_time, mos);
