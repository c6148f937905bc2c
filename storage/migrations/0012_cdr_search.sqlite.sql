-- Call history by user: "calls one extension made, was dialled on or answered" is an OR
-- over three columns; one index per column (tenant first, newest first within) lets the
-- planner answer each part from its index and join them, instead of walking the tenant's
-- whole history. The caller/dialled "contains" search index (FTS5 trigram) is made by
-- storage/cdr_search.py at open: it depends on the SQLite library's tokenizers.

CREATE INDEX cdrs_tenant_caller ON cdrs (tenant, caller_number, start_time);
CREATE INDEX cdrs_tenant_dialled ON cdrs (tenant, dialled, start_time);
CREATE INDEX cdrs_tenant_destination ON cdrs (tenant, destination, start_time);
