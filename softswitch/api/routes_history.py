"""Call history of one tenant: the filtered list, one call and its call flow, CSV export
(streamed), and the dashboards' aggregates (volume, ASR/ACD per trunk, media quality)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from softswitch.api.deps import TenantScope, scoped
from softswitch.api.errors import COMMON_ERRORS, ApiError, not_found
from softswitch.api.etag import etag_of, with_etag
from softswitch.api.paging import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor
from softswitch.api.roles import Area
from storage.cdr import CSV_COLUMNS, Cdr, csv_row
from storage.cdr_analytics import (
    JITTER_EDGES,
    LOSS_EDGES,
    MOS_EDGES,
    Figures,
    QualityTotals,
    volume_slot,
)
from storage.logins import CdrQuery

__all__ = ["router"]

router = APIRouter(prefix="/v1/tenants/{tenant}", responses=COMMON_ERRORS)

Disposition = Literal["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CANCELLED"]
Direction = Literal["internal", "inbound", "outbound"]
_BATCH = 1000
_MAX_RANGE = dt.timedelta(days=400)


class CallRecord(BaseModel):
    call_id: str
    sip_call_id: str
    direction: str
    caller_number: str
    caller_name: str
    dialled: str
    destination: str
    trunk: str
    start: float
    answer: float | None
    end: float
    duration: float
    billsec: float
    disposition: str
    sip_code: int
    q850_cause: int
    q850_name: str
    mos: float | None
    quality: dict[str, Any]
    recordings: list[dict[str, Any]]


def _record(cdr: Cdr) -> CallRecord:
    return CallRecord(
        call_id=cdr.call_id,
        sip_call_id=cdr.sip_call_id,
        direction=cdr.direction,
        caller_number=cdr.caller_number,
        caller_name=cdr.caller_name,
        dialled=cdr.dialled,
        destination=cdr.destination,
        trunk=cdr.trunk,
        start=cdr.start,
        answer=cdr.answer,
        end=cdr.end,
        duration=round(cdr.duration, 3),
        billsec=round(cdr.billsec, 3),
        disposition=cdr.disposition,
        sip_code=cdr.sip_code,
        q850_cause=cdr.q850_cause,
        q850_name=cdr.q850_name,
        mos=cdr.mos,
        quality=cdr.quality,
        recordings=cdr.recordings,
    )


class Filters:
    """The call history filters (guide 002's list: date range, user, caller, dialled,
    disposition, direction; and the trunk)."""

    def __init__(
        self,
        from_: Annotated[
            dt.datetime | None,
            Query(alias="from", description="calls started at or after (ISO 8601)"),
        ] = None,
        to: Annotated[dt.datetime | None, Query(description="calls started before")] = None,
        user: Annotated[
            str | None, Query(max_length=32, description="an extension: made, dialled, answered")
        ] = None,
        caller: Annotated[str | None, Query(max_length=64, description="caller contains")] = None,
        dialled: Annotated[
            str | None, Query(max_length=64, description="dialled number contains")
        ] = None,
        disposition: Disposition | None = None,
        direction: Direction | None = None,
        trunk: Annotated[str | None, Query(max_length=64)] = None,
    ) -> None:
        self.start = _epoch(from_)
        self.end = _epoch(to)
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ApiError(422, "validation_error", "query.to: before from", field="query.to")
        self.user = user
        self.caller = caller
        self.dialled = dialled
        self.disposition = disposition
        self.direction = direction
        self.trunk = trunk

    def query(self, scope: TenantScope) -> CdrQuery:
        allowed = scope.extensions
        parties: tuple[str, ...] | None = None
        party = self.user
        if allowed is not None:
            parties = tuple(sorted(allowed))
            if party is not None and party not in allowed:
                parties = ()
        return CdrQuery(
            start=self.start,
            end=self.end,
            tenant=scope.tenant.name,
            party=party,
            parties=parties,
            caller=self.caller,
            dialled=self.dialled,
            disposition=self.disposition,
            direction=self.direction,
            trunk=self.trunk,
        )


def _epoch(when: dt.datetime | None) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        return when.timestamp()
    except (OverflowError, ValueError, OSError):
        raise ApiError(422, "validation_error", "query: date out of range") from None


@router.get("/cdrs", response_model=Page[CallRecord], tags=["call history"])
async def call_history(
    scope: Annotated[TenantScope, Depends(scoped(Area.CALL_HISTORY, "r"))],
    filters: Annotated[Filters, Depends()],
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[CallRecord]:
    """Finished calls, newest first."""
    query = filters.query(scope)
    after = decode_cursor(cursor)
    if after is not None:
        if (
            not isinstance(after, list)
            or len(after) != 2
            or not isinstance(after[0], int | float)
            or isinstance(after[0], bool)
            or not isinstance(after[1], str)
        ):
            raise ApiError(
                422,
                "validation_error",
                "query.cursor: not a cursor this API gave",
                field="query.cursor",
            )
        query = CdrQuery(**{**_fields(query), "after": (float(after[0]), after[1])})
    store = scope.ctx.store
    total = await store.count_cdrs(query)
    rows = await store.find_cdrs(query, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([rows[-1].start, rows[-1].call_id]) if more and rows else None
    return Page[CallRecord](total=total, items=[_record(c) for c in rows], next_cursor=next_cursor)


def _fields(query: CdrQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in CdrQuery.__dataclass_fields__}


async def _all(scope: TenantScope, query: CdrQuery) -> AsyncIterator[list[Cdr]]:
    """Every matching CDR, newest first, in batches (a bounded amount in memory)."""
    store = scope.ctx.store
    while True:
        rows = await store.find_cdrs(query, _BATCH)
        if rows:
            yield rows
        if len(rows) < _BATCH:
            return
        query = CdrQuery(**{**_fields(query), "after": (rows[-1].start, rows[-1].call_id)})


@router.get(
    "/cdrs.csv",
    response_class=StreamingResponse,
    tags=["call history"],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def export_csv(
    scope: Annotated[TenantScope, Depends(scoped(Area.CALL_HISTORY, "r"))],
    filters: Annotated[Filters, Depends()],
) -> StreamingResponse:
    """The filtered call history as CSV, streamed (newest first)."""
    query = filters.query(scope)

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        async for batch in _all(scope, query):
            for c in batch:
                writer.writerow(csv_row(c))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    name = f"calls-{scope.tenant.name}.csv"
    return StreamingResponse(
        lines(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


CallId = Annotated[str, Path(max_length=128)]


async def _one(scope: TenantScope, call_id: str) -> Cdr:
    cdr = await scope.ctx.store.load_cdr(call_id)
    if (
        cdr is None
        or cdr.tenant != scope.tenant.name
        or not scope.sees_extension(cdr.caller_number, cdr.dialled, cdr.destination)
    ):
        raise not_found(f"call {call_id!r}")
    return cdr


@router.get("/cdrs/{call_id}", response_model=CallRecord, tags=["call history"])
async def call_record(
    call_id: CallId,
    response: Response,
    scope: Annotated[TenantScope, Depends(scoped(Area.CALL_HISTORY, "r"))],
) -> CallRecord:
    record = _record(await _one(scope, call_id))
    with_etag(response, etag_of(record))
    return record


class FlowStep(BaseModel):
    at: float
    event: str
    detail: str = ""
    status: int | None = None


class CallFlow(BaseModel):
    call_id: str
    steps: list[FlowStep]


@router.get("/cdrs/{call_id}/flow", response_model=CallFlow, tags=["call history"])
async def call_flow(
    call_id: CallId,
    scope: Annotated[TenantScope, Depends(scoped(Area.CALL_HISTORY, "r"))],
) -> CallFlow:
    """What the call went through, step by step: each leg tried (target, device, answer)
    between the call's start and its end."""
    cdr = await _one(scope, call_id)
    steps = [
        FlowStep(
            at=cdr.start,
            event="started",
            detail=f"{cdr.caller_number or 'anonymous'} dialled {cdr.dialled}"
            + (f" via trunk {cdr.trunk}" if cdr.trunk else ""),
        )
    ]
    for leg in cdr.legs:
        started = _number(leg.get("started"), cdr.start)
        target = str(leg.get("target") or "")
        contact = str(leg.get("contact") or "")
        steps.append(FlowStep(at=started, event="ringing", detail=f"{target} {contact}".strip()))
        ended = leg.get("ended")
        status = leg.get("status") if isinstance(leg.get("status"), int) else None
        if leg.get("answered"):
            steps.append(
                FlowStep(at=cdr.answer or started, event="answered", detail=target, status=status)
            )
        elif ended is not None:
            steps.append(
                FlowStep(
                    at=_number(ended, started), event="not answered", detail=target, status=status
                )
            )
    steps.append(
        FlowStep(
            at=cdr.end,
            event="ended",
            detail=f"{cdr.disposition} ({cdr.q850_name})",
            status=cdr.sip_code,
        )
    )
    steps.sort(key=lambda s: s.at)
    return CallFlow(call_id=cdr.call_id, steps=steps)


def _number(value: Any, default: float) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


# -- aggregates for dashboards ----------------------------------------------------------------


class Range:
    """A dashboard's period (default: the last 7 days) and the time zone of its buckets."""

    def __init__(
        self,
        from_: Annotated[dt.datetime | None, Query(alias="from")] = None,
        to: dt.datetime | None = None,
        tz: Annotated[str, Query(max_length=64, description="IANA zone of the buckets")] = "UTC",
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        end = _epoch(to) or now.timestamp()
        start = _epoch(from_)
        start = start if start is not None else end - 7 * 86400
        if end < start:
            raise ApiError(422, "validation_error", "query.to: before from", field="query.to")
        if end - start > _MAX_RANGE.total_seconds():
            raise ApiError(
                422, "validation_error", "query.from: at most 400 days", field="query.from"
            )
        try:
            self.zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ApiError(
                422, "validation_error", f"query.tz: unknown time zone {tz!r}", field="query.tz"
            ) from None
        self.start, self.end = start, end

    def query(self, scope: TenantScope) -> CdrQuery:
        allowed = scope.extensions
        return CdrQuery(
            start=self.start,
            end=self.end,
            tenant=scope.tenant.name,
            parties=None if allowed is None else tuple(sorted(allowed)),
        )


class VolumeBucket(BaseModel):
    start: str = Field(description="the bucket's start, ISO 8601 in the requested zone")
    calls: int
    answered: int
    inbound: int
    outbound: int
    internal: int
    minutes: float


class Volume(BaseModel):
    bucket: Literal["hour", "day"]
    items: list[VolumeBucket]


@router.get("/analytics/volume", response_model=Volume, tags=["analytics"])
async def volume(
    scope: Annotated[TenantScope, Depends(scoped(Area.ANALYTICS, "r"))],
    period: Annotated[Range, Depends()],
    bucket: Literal["hour", "day"] = "hour",
) -> Volume:
    """Call volume by hour or day (counted by the database per slot of UTC time, the
    slots folded here into the zone's hours or days)."""
    base, width = volume_slot(period.zone, period.start, period.end)
    slots = await scope.ctx.store.cdr_volume(period.query(scope), base, width)
    buckets: dict[dt.datetime, VolumeBucket] = {}
    billsec: dict[dt.datetime, float] = {}
    # Newest first: a repeated local hour (the end of summer time) is one bucket, labelled
    # with its later offset, as it was when every call was added up here.
    for s in sorted(slots, key=lambda s: s.slot, reverse=True):
        when = dt.datetime.fromtimestamp(base + s.slot * width, period.zone)
        key = when.replace(minute=0, second=0, microsecond=0)
        if bucket == "day":
            key = key.replace(hour=0)
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = VolumeBucket(
                start=key.isoformat(),
                calls=0,
                answered=0,
                inbound=0,
                outbound=0,
                internal=0,
                minutes=0.0,
            )
            billsec[key] = 0.0
        b.calls += s.calls
        b.answered += s.answered
        b.inbound += s.inbound
        b.outbound += s.outbound
        b.internal += s.internal
        billsec[key] += s.billsec
    for key, b in buckets.items():
        b.minutes = round(billsec[key] / 60, 3)
    return Volume(bucket=bucket, items=[buckets[k] for k in sorted(buckets)])


class TrunkFigures(BaseModel):
    trunk: str
    attempts: int
    answered: int
    asr: float = Field(description="answer-seizure ratio: answered / attempts")
    acd: float = Field(description="average call duration of answered calls, seconds")
    minutes: float


@router.get("/analytics/trunks", response_model=list[TrunkFigures], tags=["analytics"])
async def trunks(
    scope: Annotated[TenantScope, Depends(scoped(Area.ANALYTICS, "r"))],
    period: Annotated[Range, Depends()],
) -> list[TrunkFigures]:
    """ASR and ACD per carrier trunk."""
    return [
        TrunkFigures(
            trunk=t.trunk,
            attempts=t.attempts,
            answered=t.answered,
            asr=round(t.answered / t.attempts, 4) if t.attempts else 0.0,
            acd=round(t.billsec / t.answered, 1) if t.answered else 0.0,
            minutes=round(t.billsec / 60, 2),
        )
        for t in await scope.ctx.store.cdr_trunk_totals(period.query(scope))
    ]


class Distribution(BaseModel):
    le: list[float | None] = Field(description="upper bounds of the buckets; null: beyond")
    counts: list[int]
    average: float | None


class QualityFigures(BaseModel):
    trunk: str = Field(description="'' for calls that used no trunk")
    calls: int
    mos: Distribution
    jitter_ms: Distribution
    loss: Distribution


def _distribution(figures: Figures, edges: tuple[float, ...]) -> Distribution:
    below = (0, *figures.at_most)
    counts = [below[i + 1] - below[i] for i in range(len(edges))]
    counts.append(figures.count - below[-1])
    return Distribution(
        le=[*edges, None],
        counts=counts,
        average=round(figures.total / figures.count, 3) if figures.count else None,
    )


def _sum(totals: list[QualityTotals]) -> QualityTotals:
    """Every trunk's figures added up (the tenant's, trunk "*")."""

    def add(pick: Callable[[QualityTotals], Figures], edges: int) -> Figures:
        parts = [pick(t) for t in totals]
        return Figures(
            count=sum(p.count for p in parts),
            total=sum(p.total for p in parts),
            at_most=tuple(sum(p.at_most[i] for p in parts) for i in range(edges)),
        )

    return QualityTotals(
        trunk="*",
        calls=sum(t.calls for t in totals),
        mos=add(lambda t: t.mos, len(MOS_EDGES)),
        jitter_ms=add(lambda t: t.jitter_ms, len(JITTER_EDGES)),
        loss=add(lambda t: t.loss, len(LOSS_EDGES)),
    )


@router.get("/analytics/quality", response_model=list[QualityFigures], tags=["analytics"])
async def quality(
    scope: Annotated[TenantScope, Depends(scoped(Area.ANALYTICS, "r"))],
    period: Annotated[Range, Depends()],
) -> list[QualityFigures]:
    """MOS, jitter and packet loss distributions of anchored calls, for the tenant (first
    item, trunk "*") and per trunk (the worse side of each call)."""
    per_trunk = await scope.ctx.store.cdr_quality_totals(period.query(scope))
    return [
        QualityFigures(
            trunk=t.trunk,
            calls=t.calls,
            mos=_distribution(t.mos, MOS_EDGES),
            jitter_ms=_distribution(t.jitter_ms, JITTER_EDGES),
            loss=_distribution(t.loss, LOSS_EDGES),
        )
        for t in [_sum(per_trunk), *sorted(per_trunk, key=lambda t: t.trunk)]
    ]
