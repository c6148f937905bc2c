"""A call-center supervisor's queue board: per queue, the callers waiting (longest first,
how long, which agents are being rung), the agents with their status and state, and
today's figures (volume, handled, abandoned, service level, average wait and talk); the
board refreshes in place every 2 s.

The switch keeps no queue state apart from its event log, so the board reads what
``softswitch queues status`` and ``queues report`` read: the log's last day and each
agent's latest status (softswitch.queues.live and .stats), for the tenant the API's scope
allows (area ``queues``, read).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from softswitch.api.roles import Area
from softswitch.portal.frame import TEMPLATES, render, signed_in, tenant_scope
from softswitch.queues.live import AgentNow, CallerNow, live_state
from softswitch.queues.period import Period
from softswitch.queues.stats import QueueFigures, queue_figures

__all__ = ["LIVE_WINDOW", "QueueBoard", "router"]

router = APIRouter(include_in_schema=False)

LIVE_WINDOW = 86_400.0  # the event log's tail that holds the live state (as the CLI reads)


@dataclass(frozen=True, slots=True)
class QueueBoard:
    """One queue on the board."""

    name: str
    extension: str
    waiting: list[CallerNow]
    agents: list[AgentNow]
    today: QueueFigures | None


@router.get("/t/{tenant}/queues", response_class=HTMLResponse)
async def board(request: Request, tenant: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.QUEUES, "r")
    now = time.time()
    store = scope.ctx.store
    events = await store.load_queue_events(scope.tenant.name, now - LIVE_WINDOW, now + 1)
    statuses = await store.last_agent_statuses(scope.tenant.name, now + 1)
    callers, agents = live_state(events, statuses)
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    queues = scope.tenant.queues
    figures = {
        f.queue: f
        for f in queue_figures(
            [e for e in events if e.at >= midnight.timestamp()],
            Period(midnight.timestamp(), now + 1, ZoneInfo("UTC")),
            thresholds={q.name: q.service_level for q in queues},
            queues=[q.name for q in queues],
        )
    }
    boards = []
    for q in queues:
        members = {a.extension for a in q.agents}
        seen = {a.agent: a for a in agents if a.agent in members}
        listed = [
            seen.get(ext) or AgentNow(ext, "logged_out", "", "idle", 0.0, "", "")
            for ext in sorted(members)
        ]
        boards.append(
            QueueBoard(
                q.name,
                q.extension,
                [c for c in callers if c.queue == q.name],
                listed,
                figures.get(q.name),
            )
        )
    values = {"boards": boards, "now": now, "tenant": tenant}
    if request.query_params.get("fragment") == "1":  # portal.js: the live part only
        return TEMPLATES.TemplateResponse(request, "queue_boards.html", values)
    return render(request, session, "queues.html", tenant, boards=boards, now=now)
