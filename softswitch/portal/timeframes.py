"""Time frames (guide 002): a user's own and the tenant's (domain) frames, each kind of
``config.timeframes`` (always, days of the week, specific dates with recurrence, public
holidays, and a custom union of these) in a form, a week view of the weekly schedules,
and the domain frames switched on or off in bulk (the API's toggle: all or none)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from config.timeframes import Recurrence
from softswitch.api import routes_provisioning_ops
from softswitch.api.deps import TenantScope
from softswitch.api.errors import ApiError
from softswitch.api.roles import Area
from softswitch.portal.forms import FormErrors, endpoint, errors_of, form_text
from softswitch.portal.frame import LIST_LIMIT, check_csrf, render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession

__all__ = ["KINDS", "router", "week_view"]

router = APIRouter(include_in_schema=False)

KINDS = (
    ("always", "Always"),
    ("days_of_week", "Days of the week"),
    ("specific_dates", "Specific dates"),
    ("holidays", "Public holidays"),
    ("custom", "Custom (any of the below)"),
)
_DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
_RANGE = re.compile(r"^\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")
_PERIOD = re.compile(
    r"^\s*(\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2})\s+(?:-|to)\s+(\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2})"
    r"(?:\s+(none|daily|weekly|monthly|yearly))?(?:\s+until\s+(\d{4}-\d{2}-\d{2}))?\s*$"
)


class _FormProblem(Exception):
    """A field the form itself cannot read (before the API sees anything)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# -- reading and writing the form -------------------------------------------------------------


def _ranges_text(ranges: list[dict[str, Any]]) -> str:
    def clock(value: str) -> str:
        return "24:00" if value in ("00:00", "00:00:00") else value[:5]

    return ", ".join(
        f"{r.get('start', '00:00')[:5]}-{clock(r.get('end', '00:00'))}" for r in ranges
    )


def _parse_ranges(field: str, text: str) -> list[dict[str, str]]:
    ranges = []
    for part in text.split(","):
        if not part.strip():
            continue
        found = _RANGE.match(part)
        if found is None:
            raise _FormProblem(field, f"write time ranges as 09:00-17:00, 18:00-20:00 ({part!r})")
        ranges.append({"start": found.group(1).zfill(5), "end": found.group(2).zfill(5)})
    return ranges


def _parse_periods(text: str) -> list[dict[str, Any]]:
    periods = []
    for line in text.splitlines():
        if not line.strip():
            continue
        found = _PERIOD.match(line)
        if found is None:
            raise _FormProblem(
                "periods",
                "one period a line: 2026-12-24 09:00 - 2026-12-24 17:00 [yearly] "
                f"[until 2030-01-01] ({line.strip()!r})",
            )
        period: dict[str, Any] = {
            "start": found.group(1).replace(" ", "T"),
            "end": found.group(2).replace(" ", "T"),
        }
        if found.group(3):
            period["recurrence"] = found.group(3)
        if found.group(4):
            period["ends"] = found.group(4)
        periods.append(period)
    return periods


def _parts(form: dict[str, str], kind: str) -> list[dict[str, Any]]:
    """The ``when`` specs the form's sections describe (those filled in, for custom)."""
    parts: list[dict[str, Any]] = []
    days = {d: _parse_ranges(f"day_{d}", form.get(f"day_{d}", "")) for d in _DAY_NAMES}
    days = {d: r for d, r in days.items() if r}
    if kind == "days_of_week" or (kind == "custom" and days):
        parts.append({"kind": "days_of_week", "days": days})
    periods = _parse_periods(form.get("periods", ""))
    if kind == "specific_dates" or (kind == "custom" and periods):
        parts.append({"kind": "specific_dates", "periods": periods})
    if kind == "holidays" or (kind == "custom" and form.get("country", "").strip()):
        spec: dict[str, Any] = {"kind": "holidays", "country": form.get("country", "").strip()}
        if form.get("subdiv", "").strip():
            spec["subdiv"] = form["subdiv"].strip()
        names = [n.strip() for n in form.get("holiday_names", "").split(",") if n.strip()]
        if names:
            spec["names"] = names
        hours = _parse_ranges("holiday_hours", form.get("holiday_hours", ""))
        if hours:
            spec["ranges"] = hours
        parts.append(spec)
    return parts


def _document(form: dict[str, str], owner: str | None) -> dict[str, Any]:
    kind = form.get("kind", "always")
    if kind not in dict(KINDS):
        raise _FormProblem("kind", "choose a kind of time frame")
    if kind == "always":
        when: dict[str, Any] = {"kind": "always"}
    elif kind == "custom":
        parts = _parts(form, kind)
        if not parts:
            raise _FormProblem("kind", "a custom frame needs days, dates or holidays below")
        when = {"kind": "custom", "parts": parts}
    else:
        when = _parts(form, kind)[0]
    doc: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "when": when,
        "timezone": form.get("timezone", "").strip() or "UTC",
        "enabled": form.get("enabled") == "on",
    }
    if owner is not None:
        doc["owner"] = owner
    return doc


def _values(data: dict[str, Any]) -> dict[str, Any]:
    """A stored frame as the form's fields."""
    when = data.get("when", {"kind": "always"})
    values: dict[str, Any] = {
        "name": data.get("name", ""),
        "timezone": data.get("timezone", "UTC"),
        "enabled": data.get("enabled", True),
        "kind": when.get("kind", "always"),
        "periods": "",
        "country": "",
        "subdiv": "",
        "holiday_names": "",
        "holiday_hours": "",
    }
    for d in _DAY_NAMES:
        values[f"day_{d}"] = ""
    parts = when.get("parts", []) if when.get("kind") == "custom" else [when]
    for part in parts:
        if part.get("kind") == "days_of_week":
            for d, ranges in part.get("days", {}).items():
                values[f"day_{d}"] = _ranges_text(ranges)
        elif part.get("kind") == "specific_dates":
            values["periods"] = "\n".join(_period_text(p) for p in part.get("periods", []))
        elif part.get("kind") == "holidays":
            values["country"] = part.get("country", "")
            values["subdiv"] = part.get("subdiv") or ""
            values["holiday_names"] = ", ".join(part.get("names") or [])
            values["holiday_hours"] = _ranges_text(part["ranges"]) if part.get("ranges") else ""
    return values


def _period_text(period: dict[str, Any]) -> str:
    start, end = (str(period[k])[:16].replace("T", " ") for k in ("start", "end"))
    text = f"{start} - {end}"
    if period.get("recurrence", "none") != "none":
        text += f" {period['recurrence']}"
    if period.get("ends"):
        text += f" until {period['ends']}"
    return text


def _api_errors(exc: ApiError) -> FormErrors:
    """The API's refusal at the form's fields; a weekday's problem at that day's field."""
    fields = {"name": "name", "timezone": "timezone", "enabled": "enabled", "owner": "name"}
    found = errors_of(exc, fields, key_field="name")
    for error in exc.errors:
        path = error.field.removeprefix("body.")
        message = error.message.removeprefix("Value error, ")
        if not path.startswith("when"):
            continue
        day = next((d for d in _DAY_NAMES if f".{d}" in path or message.startswith(f"{d}:")), None)
        target = (
            f"day_{day}"
            if day
            else "periods"
            if "periods" in path or "specific_dates" in path
            else "country"
            if "holidays" in path
            else "kind"
        )
        found.setdefault(target, message)
        if found.get("", "").startswith(path):
            found.pop("")
    return found


# -- week view --------------------------------------------------------------------------------


def week_view(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per weekday, the blocks of each weekly (or always) frame as percentages of the day."""
    days: list[dict[str, Any]] = [
        {"day": d, "label": n[:3], "blocks": []} for d, n in _DAY_NAMES.items()
    ]
    for frame in frames:
        when = frame["data"].get("when", {})
        parts = when.get("parts", []) if when.get("kind") == "custom" else [when]
        for part in parts:
            if part.get("kind") == "always":
                for day in days:
                    day["blocks"].append(_block(frame, 0, 1440))
            if part.get("kind") != "days_of_week":
                continue
            for i, d in enumerate(_DAY_NAMES):
                for r in part.get("days", {}).get(d, []):
                    start, end = _minute(r.get("start", "00:00")), _minute(r.get("end", "00:00"))
                    end = 1440 if end == 0 else end
                    if end > start:
                        days[i]["blocks"].append(_block(frame, start, end))
                    else:  # overnight: to midnight, then on into the next day
                        days[i]["blocks"].append(_block(frame, start, 1440))
                        days[(i + 1) % 7]["blocks"].append(_block(frame, 0, end))
    return days


def _minute(clock: str) -> int:
    hours, _, minutes = clock.partition(":")
    return int(hours) * 60 + int(minutes[:2] or 0)


def _block(frame: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    return {
        "name": frame["name"],
        "top": round(start / 14.4, 2),
        "height": round((end - start) / 14.4, 2),
        "text": f"{frame['name']} {start // 60:02}:{start % 60:02}-{end // 60:02}:{end % 60:02}",
        "enabled": frame["enabled"],
    }


# -- pages ------------------------------------------------------------------------------------


async def _frames(scope: TenantScope, owner: str | None) -> list[dict[str, Any]]:
    found = await endpoint("list_time_frame")(
        scope, where=[f"owner={owner or ''}"], q=None, cursor=None, limit=LIST_LIMIT
    )
    return [
        {
            "key": o.key,
            "name": o.data.get("name", o.key),
            "kind": dict(KINDS).get(o.data.get("when", {}).get("kind", ""), "?"),
            "enabled": o.data.get("enabled", True),
            "timezone": o.data.get("timezone", "UTC"),
            "data": o.data,
        }
        for o in found.items
    ]


def _listing(
    request: Request,
    session: PortalSession,
    tenant: str,
    owner: str | None,
    frames: list[dict[str, Any]],
    domain: list[dict[str, Any]],
) -> HTMLResponse:
    return render(
        request,
        session,
        "timeframes.html",
        tenant,
        owner=owner,
        frames=frames,
        domain=domain,
        week=week_view([f for f in frames if f["enabled"]]),
        may_change=session.principal.may(Area.ROUTING, "u"),
    )


@router.get("/t/{tenant}/time-frames", response_class=HTMLResponse)
async def domain_frames(request: Request, tenant: str) -> HTMLResponse:
    """The tenant's (domain) time frames, with their bulk toggle."""
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.ROUTING, "r")
    return _listing(request, session, tenant, None, await _frames(scope, None), [])


@router.get("/t/{tenant}/users/{extension}/time-frames", response_class=HTMLResponse)
async def user_frames(request: Request, tenant: str, extension: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.ROUTING, "r")
    if not scope.sees_extension(extension) or scope.tenant.user_by_extension(extension) is None:
        raise ApiError(404, "not_found", f"user {extension!r} not found")
    own = await _frames(scope, extension)
    return _listing(request, session, tenant, extension, own, await _frames(scope, None))


@router.post("/t/{tenant}/time-frames/toggle", response_model=None)
async def toggle(request: Request, tenant: str) -> Response:
    """Switch the ticked frames on or off together (the API's all-or-none toggle)."""
    session = await signed_in(request)
    form = await request.form()
    check_csrf(session, request, str(form.get("csrf", "")))
    scope = await tenant_scope(request, session, tenant, Area.ROUTING, "u")
    names = [str(v) for v in form.getlist("frame")]
    owner = str(form.get("owner", "")) or None
    back = f"/t/{tenant}/users/{owner}/time-frames" if owner else f"/t/{tenant}/time-frames"
    if names:
        body = routes_provisioning_ops.ToggleIn(names=names, enabled=form.get("action") == "on")
        await routes_provisioning_ops.toggle_time_frames(body, request, scope)
    return RedirectResponse(back, status_code=303)


def _frame_form(
    request: Request,
    session: PortalSession,
    tenant: str,
    owner: str | None,
    key: str | None,
    values: dict[str, Any],
    errors: FormErrors,
    version: int = 0,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        session,
        "timeframe_edit.html",
        tenant,
        status,
        owner=owner,
        key=key,
        values=values,
        errors=errors,
        version=version,
        kinds=KINDS,
        day_names=_DAY_NAMES,
        recurrences=[r.value for r in Recurrence],
    )


@router.get("/t/{tenant}/time-frames/new", response_class=HTMLResponse)
async def new_frame(request: Request, tenant: str, owner: str = "") -> HTMLResponse:
    session = await signed_in(request)
    await tenant_scope(request, session, tenant, Area.ROUTING, "c")
    values = _values({"enabled": True, "when": {"kind": "days_of_week", "days": {}}})
    return _frame_form(request, session, tenant, owner or None, None, values, {})


@router.post("/t/{tenant}/time-frames/new", response_model=None)
async def create_frame(request: Request, tenant: str) -> Response:
    session = await signed_in(request)
    form = await form_text(request)
    check_csrf(session, request, form.get("csrf"))
    scope = await tenant_scope(request, session, tenant, Area.ROUTING, "c")
    owner = form.get("owner") or None
    try:
        doc = _document(form, owner)
        await endpoint("create_time_frame")(doc, request, Response(), scope)
    except _FormProblem as problem:
        errors: FormErrors = {problem.field: problem.message}
    except ApiError as exc:
        errors = _api_errors(exc)
    else:
        return RedirectResponse(_back(tenant, owner), status_code=303)
    return _frame_form(request, session, tenant, owner, None, form, errors, status=422)


def _back(tenant: str, owner: str | None) -> str:
    return f"/t/{tenant}/users/{owner}/time-frames" if owner else f"/t/{tenant}/time-frames"


@router.get("/t/{tenant}/time-frames/edit/{key:path}", response_class=HTMLResponse)
async def frame(request: Request, tenant: str, key: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.ROUTING, "r")
    item = await endpoint("get_time_frame")(key, Response(), scope)
    owner = item.data.get("owner")
    return _frame_form(
        request, session, tenant, owner, key, _values(item.data), {}, version=item.version
    )


@router.post("/t/{tenant}/time-frames/edit/{key:path}", response_model=None)
async def save_frame(request: Request, tenant: str, key: str) -> Response:
    session = await signed_in(request)
    form = await form_text(request)
    check_csrf(session, request, form.get("csrf"))
    scope = await tenant_scope(request, session, tenant, Area.ROUTING, "u")
    item = await endpoint("get_time_frame")(key, Response(), scope)
    owner = item.data.get("owner")
    errors: FormErrors = {}
    try:
        doc = _document({**form, "name": item.data.get("name", "")}, owner)
        if str(item.version) != form.get("version"):
            raise _FormProblem("", "the time frame changed meanwhile: reload the page")
        await endpoint("replace_time_frame")(key, doc, request, Response(), scope)
    except _FormProblem as problem:
        errors = {problem.field: problem.message}
    except ApiError as exc:
        errors = _api_errors(exc)
    if errors:
        values = {**form, "name": item.data.get("name", "")}
        return _frame_form(
            request, session, tenant, owner, key, values, errors, item.version, status=422
        )
    return RedirectResponse(_back(tenant, owner), status_code=303)


@router.post("/t/{tenant}/time-frames/delete/{key:path}", response_model=None)
async def delete_frame(request: Request, tenant: str, key: str, csrf: str = Form("")) -> Response:
    """Delete a frame; refused (shown on the error page) while a rule still uses it."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.ROUTING, "d")
    item = await endpoint("get_time_frame")(key, Response(), scope)
    await endpoint("delete_time_frame")(key, request, scope)
    return RedirectResponse(_back(tenant, item.data.get("owner")), status_code=303)
