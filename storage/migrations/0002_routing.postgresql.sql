-- Routing state that changes at run time: disaster plan status and its history.
-- Plans themselves (numbers, forward-to numbers) live in the configuration; a plan without
-- a row here has the status its configuration gives it. Times are epoch seconds.

CREATE TABLE disaster_plans (
    tenant     TEXT             NOT NULL,
    plan       TEXT             NOT NULL,
    enabled    BOOLEAN          NOT NULL,
    changed_by TEXT             NOT NULL,
    changed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, plan)
);

-- Every execute and revert, who and when; append-only (an audit trail).
CREATE TABLE disaster_plan_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant     TEXT             NOT NULL,
    plan       TEXT             NOT NULL,
    action     TEXT             NOT NULL CHECK (action IN ('execute', 'revert')),
    changed_by TEXT             NOT NULL,
    changed_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX disaster_plan_events_plan ON disaster_plan_events (tenant, plan, id);

CREATE FUNCTION disaster_plan_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'disaster_plan_events is append-only';
END;
$$;

CREATE TRIGGER disaster_plan_events_no_change BEFORE UPDATE OR DELETE ON disaster_plan_events
FOR EACH ROW EXECUTE FUNCTION disaster_plan_events_append_only();
