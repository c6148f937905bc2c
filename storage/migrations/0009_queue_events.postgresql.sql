-- Call-queue event log (softswitch.queues): append-only, one row per thing that happened to
-- a queued call or an agent. The call-center statistics are computed from it.

CREATE TABLE queue_events (
    id       BIGSERIAL PRIMARY KEY,
    tenant   TEXT NOT NULL,
    queue    TEXT NOT NULL,
    call_id  TEXT NOT NULL,
    agent    TEXT NOT NULL,
    event    TEXT NOT NULL,
    reason   TEXT NOT NULL,
    at       DOUBLE PRECISION NOT NULL
);
CREATE INDEX queue_events_at ON queue_events (tenant, at);
CREATE INDEX queue_events_agent ON queue_events (tenant, agent, event, at);
