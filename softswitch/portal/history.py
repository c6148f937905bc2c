"""Call history (guide 002): the filtered list (date range, user, caller, dialled,
disposition, direction), one call's flow as a timeline of its legs, its recordings to play
and download, and the filtered list as CSV (the API's streamed export).

A basic user sees their own history at ``/t/{tenant}/users/{extension}/history`` and is
refused anyone else's: the API answers such a query with an empty list, a page says no.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse

from softswitch.api import routes_history
from softswitch.api.deps import TenantScope
from softswitch.api.errors import ApiError, not_found
from softswitch.api.roles import Area
from softswitch.portal.frame import render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE = 50  # calls per page of the list
FILTERS = ("from", "to", "user", "caller", "dialled", "disposition", "direction")
DISPOSITIONS = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CANCELLED")
DIRECTIONS = ("inbound", "outbound", "internal")


@dataclass(frozen=True, slots=True)
class LegBar:
    """One leg of a call on the timeline: where it starts and ends in percent of the call."""

    label: str
    contact: str
    outcome: str  # answered, rang (no answer) or failed
    status: int | None
    left: float
    width: float
    seconds: float


def _date(form: dict[str, str], name: str, errors: dict[str, str]) -> dt.datetime | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        errors[name] = "a date as YYYY-MM-DD (or YYYY-MM-DDTHH:MM)"
        return None
    if len(text) == 10 and name == "to":
        when += dt.timedelta(days=1)  # "to 7 Dec": calls of the 7th included
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _filters(
    form: dict[str, str], extension: str | None, errors: dict[str, str]
) -> routes_history.Filters | None:
    """The API's filters from the form's fields; None with ``errors`` (field: message)."""
    start, end = _date(form, "from", errors), _date(form, "to", errors)
    disposition = form.get("disposition") or None
    if disposition is not None and disposition not in DISPOSITIONS:
        errors["disposition"] = f"one of {', '.join(DISPOSITIONS)}"
    direction = form.get("direction") or None
    if direction is not None and direction not in DIRECTIONS:
        errors["direction"] = f"one of {', '.join(DIRECTIONS)}"
    for name in ("user", "caller", "dialled"):
        if len(form.get(name, "")) > 32:
            errors[name] = "at most 32 characters"
    if errors:
        return None
    try:
        return routes_history.Filters(
            from_=start,
            to=end,
            user=extension or form.get("user") or None,
            caller=form.get("caller") or None,
            dialled=form.get("dialled") or None,
            disposition=disposition,  # type: ignore[arg-type]
            direction=direction,  # type: ignore[arg-type]
        )
    except ApiError as exc:
        field = exc.errors[0].field if exc.errors and exc.errors[0].field else "query.from"
        errors[field.removeprefix("query.")] = exc.message.split(": ", 1)[-1]
        return None


async def _scope(
    request: Request, session: PortalSession, tenant: str, extension: str | None
) -> TenantScope:
    scope = await tenant_scope(request, session, tenant, Area.CALL_HISTORY, "r")
    if extension is not None and not scope.sees_extension(extension):
        # The API answers an empty list for another user's history; a page says no.
        raise ApiError(403, "forbidden", f"not permitted: call history of {extension}")
    if extension is None and scope.extensions is not None:
        raise ApiError(403, "forbidden", "not permitted: the whole tenant's call history")
    return scope


def _base(tenant: str, extension: str | None) -> str:
    return f"/t/{tenant}/users/{extension}/history" if extension else f"/t/{tenant}/history"


async def _history(request: Request, tenant: str, extension: str | None) -> HTMLResponse:
    session = await signed_in(request)
    scope = await _scope(request, session, tenant, extension)
    form = {k: v for k, v in request.query_params.items() if k in FILTERS and v}
    errors: dict[str, str] = {}
    filters = _filters(form, extension, errors)
    records: list[routes_history.CallRecord] = []
    total, more = 0, None
    if filters is not None:
        found = await routes_history.call_history(
            scope, filters, cursor=request.query_params.get("cursor") or None, limit=PAGE
        )
        records, total, more = found.items, found.total, found.next_cursor
    query = urlencode(form)
    base = _base(tenant, extension)
    return render(
        request,
        session,
        "history.html",
        tenant,
        200 if not errors else 422,
        records=records,
        total=total,
        extension=extension,
        form=form,
        errors=errors,
        base=base,
        older=f"{base}?{urlencode({**form, 'cursor': more})}" if more else None,
        export=f"{base}.csv" + (f"?{query}" if query else ""),
        dispositions=DISPOSITIONS,
        directions=DIRECTIONS,
    )


@router.get("/t/{tenant}/history", response_class=HTMLResponse)
async def tenant_history(request: Request, tenant: str) -> HTMLResponse:
    return await _history(request, tenant, None)


@router.get("/t/{tenant}/users/{extension}/history", response_class=HTMLResponse)
async def user_history(request: Request, tenant: str, extension: str) -> HTMLResponse:
    return await _history(request, tenant, extension)


async def _export(request: Request, tenant: str, extension: str | None) -> Response:
    session = await signed_in(request)
    scope = await _scope(request, session, tenant, extension)
    form = {k: v for k, v in request.query_params.items() if k in FILTERS and v}
    errors: dict[str, str] = {}
    filters = _filters(form, extension, errors)
    if filters is None:
        field, message = next(iter(errors.items()))
        raise ApiError(422, "validation_error", f"{field}: {message}")
    answer: StreamingResponse = await routes_history.export_csv(scope, filters)
    return answer


@router.get("/t/{tenant}/history.csv", response_model=None)
async def tenant_export(request: Request, tenant: str) -> Response:
    """The filtered history as CSV, streamed by the API's export."""
    return await _export(request, tenant, None)


@router.get("/t/{tenant}/users/{extension}/history.csv", response_model=None)
async def user_export(request: Request, tenant: str, extension: str) -> Response:
    return await _export(request, tenant, extension)


# -- one call ----------------------------------------------------------------------------------


def _number(value: Any, default: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else default


def leg_bars(start: float, end: float, legs: list[dict[str, Any]]) -> list[LegBar]:
    """The legs placed on the call's time axis (0 to 100 percent of start..end)."""
    span = max(end - start, 0.001)
    bars = []
    for leg in legs:
        began = min(max(_number(leg.get("started"), start), start), end)
        ended = min(max(_number(leg.get("ended"), end), began), end)
        status = leg.get("status") if isinstance(leg.get("status"), int) else None
        if leg.get("answered"):
            outcome = "answered"
        elif status is not None and status >= 400 and status not in (480, 486, 487):
            outcome = "failed"
        else:
            outcome = "rang"
        bars.append(
            LegBar(
                label=str(leg.get("target") or "leg"),
                contact=str(leg.get("contact") or ""),
                outcome=outcome,
                status=status,
                left=round(100 * (began - start) / span, 2),
                width=max(round(100 * (ended - began) / span, 2), 0.5),
                seconds=round(ended - began, 1),
            )
        )
    return bars


async def _record(
    request: Request, session: PortalSession, tenant: str, call_id: str
) -> tuple[TenantScope, routes_history.CallRecord]:
    scope = await tenant_scope(request, session, tenant, Area.CALL_HISTORY, "r")
    return scope, await routes_history.call_record(call_id, Response(), scope)


@router.get("/t/{tenant}/history/{call_id}", response_class=HTMLResponse)
async def call_page(request: Request, tenant: str, call_id: str) -> HTMLResponse:
    """One call: its details, its flow step by step, its legs on a timeline, recordings."""
    session = await signed_in(request)
    scope, record = await _record(request, session, tenant, call_id)
    flow = await routes_history.call_flow(call_id, scope)
    cdr = await scope.ctx.store.load_cdr(call_id)  # the legs; call_record checked the scope
    legs = leg_bars(record.start, record.end, cdr.legs if cdr is not None else [])
    p = session.principal
    back = _base(tenant, p.extension if p.extension and scope.extensions is not None else None)
    return render(
        request,
        session,
        "history_call.html",
        tenant,
        record=record,
        steps=flow.steps,
        legs=legs,
        back=back,
    )


def _recording_path(scope: TenantScope, record: routes_history.CallRecord, n: int) -> Path:
    """The file of recording ``n``, only inside the tenant's recordings folder."""
    if not 0 <= n < len(record.recordings):
        raise not_found(f"recording {n + 1} of call {record.call_id!r}")
    folder = (Path(scope.ctx.switch.config.media.recordings_dir) / scope.tenant.name).resolve()
    path = Path(str(record.recordings[n].get("path", ""))).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise not_found(f"recording {n + 1} of call {record.call_id!r}")
    return path


@router.get("/t/{tenant}/history/{call_id}/recordings/{n}", response_model=None)
async def recording(request: Request, tenant: str, call_id: str, n: int) -> Response:
    """A call's recording (WAV): played in the page's audio control, or downloaded."""
    session = await signed_in(request)
    scope, record = await _record(request, session, tenant, call_id)
    path = _recording_path(scope, record, n - 1)
    download = request.query_params.get("download") == "1"
    return FileResponse(
        path,
        media_type="audio/wav",
        filename=f"{record.call_id}-{n}.wav",
        content_disposition_type="attachment" if download else "inline",
    )
