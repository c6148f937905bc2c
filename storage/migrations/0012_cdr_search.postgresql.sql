-- Call history by user: "calls one extension made, was dialled on or answered" is an OR
-- over three columns; one index per column (tenant first) lets the planner combine them
-- (BitmapOr) instead of walking the tenant's whole history.

CREATE INDEX cdrs_tenant_caller ON cdrs (tenant, caller_number, start_time);
CREATE INDEX cdrs_tenant_dialled ON cdrs (tenant, dialled, start_time);
CREATE INDEX cdrs_tenant_destination ON cdrs (tenant, destination, start_time);

-- "Caller contains" and "dialled contains" (LIKE '%...%') served by trigram GIN indexes.
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension (13+): the database
-- owner may create it. Where it cannot be had, the migration still applies, says so
-- (a WARNING in the server's log and to this session) and the search scans: same answers.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'softswitch: pg_trgm unavailable (%), call history "contains" searches will scan', SQLERRM;
END
$$;

-- The operator class is named with the extension's schema: it may sit in another schema
-- than the tables (installed earlier by the operator, or search_path set per node).
DO $$
DECLARE
    trgm_schema name;
BEGIN
    SELECT n.nspname INTO trgm_schema
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format('CREATE INDEX cdrs_caller_trgm ON cdrs USING gin (caller_number %I.gin_trgm_ops)', trgm_schema);
        EXECUTE format('CREATE INDEX cdrs_dialled_trgm ON cdrs USING gin (dialled %I.gin_trgm_ops)', trgm_schema);
    END IF;
END
$$;
