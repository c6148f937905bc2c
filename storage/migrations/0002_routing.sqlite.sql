-- Routing state that changes at run time: disaster plan status and its history.
-- Plans themselves (numbers, forward-to numbers) live in the configuration; a plan without
-- a row here has the status its configuration gives it. Times are epoch seconds (REAL).

CREATE TABLE disaster_plans (
    tenant     TEXT    NOT NULL,
    plan       TEXT    NOT NULL,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    changed_by TEXT    NOT NULL,
    changed_at REAL    NOT NULL,
    PRIMARY KEY (tenant, plan)
);

-- Every execute and revert, who and when; append-only (an audit trail).
CREATE TABLE disaster_plan_events (
    id         INTEGER PRIMARY KEY NOT NULL,
    tenant     TEXT    NOT NULL,
    plan       TEXT    NOT NULL,
    action     TEXT    NOT NULL CHECK (action IN ('execute', 'revert')),
    changed_by TEXT    NOT NULL,
    changed_at REAL    NOT NULL
);

CREATE INDEX disaster_plan_events_plan ON disaster_plan_events (tenant, plan, id);

CREATE TRIGGER disaster_plan_events_no_update BEFORE UPDATE ON disaster_plan_events
BEGIN
    SELECT RAISE(ABORT, 'disaster_plan_events is append-only');
END;

CREATE TRIGGER disaster_plan_events_no_delete BEFORE DELETE ON disaster_plan_events
BEGIN
    SELECT RAISE(ABORT, 'disaster_plan_events is append-only');
END;
