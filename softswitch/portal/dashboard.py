"""A tenant's home dashboard (guide 000's analytics): registered devices, live calls and
calls today, call volume by hour and by day, answer-seizure ratio and average call duration
per trunk, and call quality (MOS, jitter, packet loss distributions) per trunk.

Every figure comes from the API's own route functions (registrations, live calls, call
history and the ``analytics/*`` aggregates), so a login sees exactly what its role lets
it read through ``/v1``; an area it may not read is left off the page, not refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from softswitch.api import routes_history, routes_live
from softswitch.api.roles import Area
from softswitch.portal.charts import BarChart, bar_chart
from softswitch.portal.frame import LIST_LIMIT, render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

HOURS, DAYS = 24, 30  # the volume charts' spans
PERIODS = (1, 7, 30)  # days the trunk and quality figures may cover (guide 000's choices)
DEFAULT_PERIOD = 7


@dataclass(frozen=True, slots=True)
class TrunkQuality:
    """One trunk's three quality distributions (trunk "*" is every anchored call)."""

    trunk: str
    calls: int
    mos_average: float | None
    charts: tuple[BarChart, BarChart, BarChart]


def _volume_chart(
    volume: routes_history.Volume, ident: str, title: str, keys: list[dt.datetime], fmt: str
) -> BarChart:
    by_start = {b.start: b.calls for b in volume.items}
    return bar_chart(
        ident,
        title,
        [k.strftime(fmt) for k in keys],
        [float(by_start.get(k.isoformat(), 0)) for k in keys],
        "calls",
    )


def _edges(d: routes_history.Distribution, unit: str = "", scale: float = 1.0) -> list[str]:
    """The buckets' labels: "≤ 3.5", ..., "> 4.3" (the last bucket has no upper bound)."""
    labels: list[str] = []
    low = 0.0
    for le in d.le:
        if le is None:
            labels.append(f"> {low * scale:g}{unit}")
        else:
            labels.append(f"≤ {le * scale:g}{unit}")
            low = le
    return labels


def _quality(figures: routes_history.QualityFigures, n: int) -> TrunkQuality:
    name = "all trunks and extensions" if figures.trunk == "*" else figures.trunk or "no trunk"
    return TrunkQuality(
        trunk=name,
        calls=figures.calls,
        mos_average=figures.mos.average,
        charts=(
            bar_chart(
                f"mos-{n}",
                f"MOS, {name}",
                _edges(figures.mos),
                [float(c) for c in figures.mos.counts],
                "calls",
            ),
            bar_chart(
                f"jitter-{n}",
                f"Jitter, {name}",
                _edges(figures.jitter_ms, " ms"),
                [float(c) for c in figures.jitter_ms.counts],
                "calls",
            ),
            bar_chart(
                f"loss-{n}",
                f"Packet loss, {name}",
                _edges(figures.loss, "%", 100.0),
                [float(c) for c in figures.loss.counts],
                "calls",
            ),
        ),
    )


async def _analytics(
    request: Request, session: PortalSession, tenant: str, period_days: int
) -> dict[str, object] | None:
    """The charts and per-trunk figures, or None when the login may not read analytics."""
    if not session.principal.may(Area.ANALYTICS, "r"):
        return None
    scope = await tenant_scope(request, session, tenant, Area.ANALYTICS, "r")
    now = dt.datetime.now(dt.UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [hour - dt.timedelta(hours=h) for h in range(HOURS - 1, -1, -1)]
    day = hour.replace(hour=0)
    days = [day - dt.timedelta(days=d) for d in range(DAYS - 1, -1, -1)]
    period = routes_history.Range(from_=now - dt.timedelta(days=period_days), to=now)
    # Four aggregates of the database: side by side where the Store has a pool (PostgreSQL).
    hourly, daily, trunks, quality = await asyncio.gather(
        routes_history.volume(scope, routes_history.Range(from_=hours[0], to=now), bucket="hour"),
        routes_history.volume(scope, routes_history.Range(from_=days[0], to=now), bucket="day"),
        routes_history.trunks(scope, period),
        routes_history.quality(scope, period),
    )
    return {
        "hourly": _volume_chart(hourly, "volume-hourly", "Calls per hour, last 24 h", hours, "%H"),
        "daily": _volume_chart(daily, "volume-daily", "Calls per day, last 30 days", days, "%d %b"),
        "trunks": trunks,
        "asr": bar_chart(
            "asr",
            f"Answer-seizure ratio per trunk, last {period_days} day(s)",
            [t.trunk for t in trunks],
            [round(t.asr * 100, 1) for t in trunks],
            "%",
        ),
        "quality": [_quality(q, n) for n, q in enumerate(quality) if q.calls],
        "days": period_days,
        "periods": PERIODS,
    }


@router.get("/t/{tenant}", response_class=HTMLResponse)
async def dashboard(request: Request, tenant: str) -> HTMLResponse:
    """A tenant's home: registered devices, live calls, calls today and the analytics."""
    session = await signed_in(request)
    wanted = request.query_params.get("days", "")
    period_days = (
        int(wanted)
        if (wanted.isascii() and wanted.isdigit()) and int(wanted) in PERIODS
        else DEFAULT_PERIOD
    )
    regs = await routes_live.registrations(
        await tenant_scope(request, session, tenant, Area.REGISTRATIONS, "r"),
        extension=None,
        reachable=None,
        cursor=None,
        limit=LIST_LIMIT,
    )
    calls = await routes_live.live_calls(
        await tenant_scope(request, session, tenant, Area.CALLS, "r"),
        state=None,
        extension=None,
        cursor=None,
        limit=LIST_LIMIT,
    )
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    history = await routes_history.call_history(
        await tenant_scope(request, session, tenant, Area.CALL_HISTORY, "r"),
        routes_history.Filters(from_=today),
        cursor=None,
        limit=1,
    )
    return render(
        request,
        session,
        "dashboard.html",
        tenant,
        devices=regs.total,
        live=calls.total,
        today=history.total,
        registrations=regs.items,
        analytics=await _analytics(request, session, tenant, period_days),
    )
