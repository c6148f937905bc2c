"""Statistics read from the Store for a period, and written as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from softswitch.queues.period import Period
from softswitch.queues.stats import AgentFigures, QueueFigures, agent_figures, queue_figures
from storage import Store

__all__ = ["FORMATS", "MAX_CALL_SPAN", "Report", "collect", "render"]

FORMATS = ("table", "csv", "json")
#: How long after the period's end a call that entered inside it may still produce events.
MAX_CALL_SPAN = 86400.0


@dataclass(frozen=True, slots=True)
class Report:
    """The figures of one tenant's queues and agents for one period."""

    tenant: str
    queues: list[QueueFigures]
    agents: list[AgentFigures]


async def collect(
    store: Store,
    tenant: str,
    period: Period,
    *,
    thresholds: Mapping[str, float] | None = None,
    queues: Iterable[str] = (),
    queue: str | None = None,
    agent: str | None = None,
    now: float | None = None,
) -> Report:
    """Load the events (and the agents' call records) a period needs and compute."""
    events = await store.load_queue_events(tenant, period.start, period.end + MAX_CALL_SPAN)
    before = await store.last_agent_statuses(tenant, period.start)
    cdrs = await store.load_cdrs(period.start, period.end, tenant)
    names = [queue] if queue else list(queues)
    queue_rows = queue_figures(events, period, thresholds, names)
    if queue:
        queue_rows = [q for q in queue_rows if q.queue == queue]
    agent_rows = agent_figures(events, period, before, cdrs, now=now, queue=queue)
    if agent:
        agent_rows = [a for a in agent_rows if a.agent == agent]
    elif queue:  # agents who worked this queue in the period
        agent_rows = [a for a in agent_rows if a.offered or a.handled]
    return Report(tenant, queue_rows, agent_rows)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict):
        return " ".join(f"{k}={v:.0f}" for k, v in value.items()) or "-"
    return str(value)


def _rows(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [asdict(item) for item in items]


def render(report: Report, fmt: str, what: str = "both") -> str:
    """The report as text: `fmt` one of FORMATS, `what` queues, agents or both."""
    if fmt not in FORMATS:
        raise ValueError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    parts: dict[str, list[dict[str, Any]]] = {}
    if what in ("queues", "both"):
        parts["queues"] = _rows(report.queues)
    if what in ("agents", "both"):
        parts["agents"] = _rows(report.agents)
    if fmt == "json":
        return json.dumps({"tenant": report.tenant, **parts}, indent=2, sort_keys=False) + "\n"
    out = io.StringIO()
    for title, rows in parts.items():
        if not rows:
            out.write(f"{title}: none\n")
            continue
        if fmt == "csv":
            if len(parts) > 1:
                out.write(f"# {title}\n")
            flat = [
                {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in r.items()}
                for r in rows
            ]
            writer = csv.DictWriter(out, fieldnames=list(flat[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(flat)
            continue
        out.write(f"{title}:\n")
        # One block per row: the figures are too many for columns on a terminal.
        for row in rows:
            name = row.get("queue", row.get("agent"))
            out.write(f"  {name}\n")
            for key, value in row.items():
                if key not in ("queue", "agent"):
                    out.write(f"    {key:<24} {_cell(value)}\n")
    return out.getvalue()
