"""A user's answering rules (guide 002): the ordered list (the top-most enabled rule whose
time frame is active applies, else the default rule), moved up and down, switched on and
off, and a rule's form: its time frame, do-not-disturb, call screening, every forward
condition of ``config.answering.Forwarding`` and simultaneous ring with delayed extra
legs. Every save is the API's PUT of the whole rules document: all of it or nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from config.answering import RING_TIMES, DndMode, ForwardKind
from softswitch.api import routes_provisioning_ops
from softswitch.api.deps import TenantScope
from softswitch.api.errors import ApiError
from softswitch.api.roles import Area
from softswitch.portal.forms import FormErrors, endpoint, errors_of, form_text
from softswitch.portal.frame import check_csrf, render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession

__all__ = ["CONDITIONS", "EXTRA_LEGS", "router"]

router = APIRouter(include_in_schema=False)

#: The forward conditions in the order the guide lists them, with their labels.
CONDITIONS = (
    ("always", "Forward always"),
    ("on_active", "Forward when on a call"),
    ("when_busy", "Forward when busy"),
    ("when_unanswered", "Forward when not answered"),
    ("when_offline", "Forward when unavailable (no phone registered)"),
)
EXTRA_LEGS = 3  # extra sim-ring destinations a form offers
_KINDS = [(k.value, k.value.replace("_", " ")) for k in ForwardKind]


def _path(tenant: str, extension: str) -> str:
    return f"/t/{tenant}/users/{extension}/rules"


async def _document(
    request: Request, session: PortalSession, tenant: str, extension: str, action: str
) -> tuple[TenantScope, Any]:
    scope = await tenant_scope(request, session, tenant, Area.ROUTING, action)
    return scope, await endpoint("get_answering")(extension, Response(), scope)


def _frames(scope: TenantScope, extension: str) -> list[str]:
    """The time frames a rule of ``extension`` may use: its own, then the domain's."""
    frames = scope.tenant.routing.time_frames
    own = [f.name for f in frames if f.owner == extension]
    return own + [f.name for f in frames if f.owner is None and f.name not in own]


def _summary(rule: dict[str, Any]) -> str:
    parts = []
    if rule.get("dnd"):
        parts.append(f"do not disturb ({rule['dnd']})")
    for name, label in CONDITIONS:
        dest = (rule.get("forward") or {}).get(name)
        if dest:
            parts.append(f"{label.lower()} to {dest['kind'].replace('_', ' ')} {dest['target']}")
    simring = rule.get("simring")
    if simring is not None:
        legs = [
            f"{leg['target']}" + (f" after {leg.get('delay', 0)} s" if leg.get("delay") else "")
            for leg in simring.get("extra", [])
        ]
        parts.append("ring " + ", ".join(["own phones", *legs]))
    if rule.get("screening"):
        parts.append("screen callers")
    return "; ".join(parts) or "ring own phone"


# -- the list ---------------------------------------------------------------------------------


@router.get("/t/{tenant}/users/{extension}/rules", response_class=HTMLResponse)
async def rules(request: Request, tenant: str, extension: str) -> HTMLResponse:
    session = await signed_in(request)
    _scope, item = await _document(request, session, tenant, extension, "r")
    data = item.data
    listed = [
        {**r, "position": i, "summary": _summary(r)} for i, r in enumerate(data.get("rules", []), 1)
    ]
    return render(
        request,
        session,
        "rules.html",
        tenant,
        extension=extension,
        rules=listed,
        default=_summary(data.get("default_rule", {"simring": {}})),
        ring_time=data.get("ring_time", 25),
        voicemail=data.get("voicemail", True),
        ring_times=RING_TIMES,
        version=item.version,
        may_change=session.principal.may(Area.ROUTING, "u"),
        errors={},
    )


async def _save(
    request: Request,
    scope: TenantScope,
    extension: str,
    data: dict[str, Any],
    version: str | None,
    current_version: int,
) -> None:
    """PUT the whole document; a stale form (someone saved meanwhile) is refused."""
    if version is not None and str(current_version) != version:
        raise ApiError(412, "precondition_failed", "the rules changed meanwhile: reload the page")
    await endpoint("replace_answering")(extension, data, request, Response(), scope)


@router.post("/t/{tenant}/users/{extension}/rules/move", response_model=None)
async def move(
    request: Request,
    tenant: str,
    extension: str,
    position: int = Form(...),
    direction: str = Form(...),
    csrf: str = Form(""),
    version: str = Form(""),
) -> Response:
    """Move a rule one place up or down (the API's reorder operation)."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope, item = await _document(request, session, tenant, extension, "u")
    count = len(item.data.get("rules", []))
    other = position - 1 if direction == "up" else position + 1
    if not (1 <= position <= count and 1 <= other <= count):
        return RedirectResponse(_path(tenant, extension), status_code=303)
    if str(item.version) != version:
        raise ApiError(412, "precondition_failed", "the rules changed meanwhile: reload the page")
    order = list(range(1, count + 1))
    order[position - 1], order[other - 1] = order[other - 1], order[position - 1]
    await routes_provisioning_ops.reorder(
        extension, routes_provisioning_ops.ReorderIn(order=order), request, Response(), scope
    )
    return RedirectResponse(f"{_path(tenant, extension)}#rule-{other}", status_code=303)


@router.post("/t/{tenant}/users/{extension}/rules/{position}/toggle", response_model=None)
async def toggle(
    request: Request,
    tenant: str,
    extension: str,
    position: int,
    csrf: str = Form(""),
    version: str = Form(""),
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope, item = await _document(request, session, tenant, extension, "u")
    listed = [dict(r) for r in item.data.get("rules", [])]
    if not 1 <= position <= len(listed):
        raise ApiError(404, "not_found", f"rule {position} not found")
    rule = listed[position - 1]
    rule["enabled"] = not rule.get("enabled", True)
    await _save(request, scope, extension, {**item.data, "rules": listed}, version, item.version)
    return RedirectResponse(f"{_path(tenant, extension)}#rule-{position}", status_code=303)


@router.post("/t/{tenant}/users/{extension}/rules/{position}/delete", response_model=None)
async def delete(
    request: Request,
    tenant: str,
    extension: str,
    position: int,
    csrf: str = Form(""),
    version: str = Form(""),
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope, item = await _document(request, session, tenant, extension, "u")
    listed = list(item.data.get("rules", []))
    if not 1 <= position <= len(listed):
        raise ApiError(404, "not_found", f"rule {position} not found")
    del listed[position - 1]
    await _save(request, scope, extension, {**item.data, "rules": listed}, version, item.version)
    return RedirectResponse(_path(tenant, extension), status_code=303)


@router.post("/t/{tenant}/users/{extension}/rules/settings", response_model=None)
async def settings(request: Request, tenant: str, extension: str) -> Response:
    """Ring time and voicemail (what ends an unanswered call)."""
    session = await signed_in(request)
    form = await form_text(request)
    check_csrf(session, request, form.get("csrf"))
    scope, item = await _document(request, session, tenant, extension, "u")
    ring = form.get("ring_time", "25")
    data = {
        **item.data,
        "ring_time": None if ring == "unlimited" else ring,
        "voicemail": form.get("voicemail") == "on",
    }
    await _save(request, scope, extension, data, form.get("version"), item.version)
    return RedirectResponse(_path(tenant, extension), status_code=303)


# -- one rule ---------------------------------------------------------------------------------


def _rule_values(rule: dict[str, Any]) -> dict[str, Any]:
    """A stored rule as the form's fields."""
    values: dict[str, Any] = {
        "time_frame": rule.get("time_frame") or "",
        "enabled": rule.get("enabled", True),
        "dnd": rule.get("dnd") or "",
        "screening": rule.get("screening", False),
    }
    forward = rule.get("forward") or {}
    for name, _ in CONDITIONS:
        dest = forward.get(name) or {}
        values[f"{name}_kind"] = dest.get("kind", "")
        values[f"{name}_target"] = dest.get("target", "")
    simring = rule.get("simring")
    values["simring"] = simring is not None
    simring = simring or {}
    values["include_extension"] = simring.get("include_extension", True)
    values["ring_all_devices"] = simring.get("ring_all_devices", True)
    values["answer_confirmation"] = simring.get("answer_confirmation", False)
    extra = list(simring.get("extra", []))
    for j in range(EXTRA_LEGS):
        leg = extra[j] if j < len(extra) else {}
        values[f"leg{j}_kind"] = leg.get("kind", "number")
        values[f"leg{j}_target"] = leg.get("target", "")
        values[f"leg{j}_delay"] = str(leg.get("delay", 0)) if leg else "0"
    return values


def _rule_of(form: dict[str, str], default: bool) -> dict[str, Any]:
    """The rule a form describes (validation is the API's)."""
    rule: dict[str, Any] = {"enabled": default or form.get("enabled") == "on"}
    if not default:
        rule["time_frame"] = form.get("time_frame", "").strip() or None
    if form.get("dnd"):
        rule["dnd"] = form["dnd"]
    if form.get("screening") == "on":
        rule["screening"] = True
    forward = {}
    for name, _ in CONDITIONS:
        kind, target = form.get(f"{name}_kind", ""), form.get(f"{name}_target", "").strip()
        if kind:
            forward[name] = {"kind": kind, "target": target}
    if forward:
        rule["forward"] = forward
    if form.get("simring") == "on":
        extra = []
        for j in range(EXTRA_LEGS):
            target = form.get(f"leg{j}_target", "").strip()
            if target:
                delay = form.get(f"leg{j}_delay", "0").strip() or "0"
                extra.append(
                    {"kind": form.get(f"leg{j}_kind", "number"), "target": target, "delay": delay}
                )
        rule["simring"] = {
            "include_extension": form.get("include_extension") == "on",
            "ring_all_devices": form.get("ring_all_devices") == "on",
            "answer_confirmation": form.get("answer_confirmation") == "on",
            "extra": extra,
        }
    return rule


def _rule_fields(prefix: str, legs: int) -> dict[str, str]:
    """API error paths of a rule at ``prefix`` -> the form's fields."""
    fields = {
        f"{prefix}.time_frame": "time_frame",
        f"{prefix}.dnd": "dnd",
        f"{prefix}.simring": "simring",
    }
    for name, _ in CONDITIONS:
        fields[f"{prefix}.forward.{name}"] = f"{name}_target"
        fields[f"{prefix}.forward.{name}.kind"] = f"{name}_kind"
    for j in range(legs):
        fields[f"{prefix}.simring.extra[{j}]"] = f"leg{j}_target"
        fields[f"{prefix}.simring.extra[{j}].delay"] = f"leg{j}_delay"
    return fields


def _rule_form(
    request: Request,
    session: PortalSession,
    tenant: str,
    scope: TenantScope,
    extension: str,
    position: str,
    values: dict[str, Any],
    errors: FormErrors,
    version: int,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        session,
        "rule_edit.html",
        tenant,
        status,
        extension=extension,
        position=position,
        values=values,
        errors=errors,
        version=version,
        frames=_frames(scope, extension),
        conditions=CONDITIONS,
        kinds=_KINDS,
        dnd_modes=[m.value for m in DndMode],
        legs=range(EXTRA_LEGS),
    )


@router.get("/t/{tenant}/users/{extension}/rules/{position}", response_class=HTMLResponse)
async def rule(request: Request, tenant: str, extension: str, position: str) -> HTMLResponse:
    """A rule's form: ``new``, ``default`` or the rule's place (1 = top)."""
    session = await signed_in(request)
    scope, item = await _document(request, session, tenant, extension, "r")
    listed = item.data.get("rules", [])
    if position == "new":
        current: dict[str, Any] = {"enabled": True}
    elif position == "default":
        current = item.data.get("default_rule", {"simring": {}})
    elif (position.isascii() and position.isdigit()) and 1 <= int(position) <= len(listed):
        current = listed[int(position) - 1]
    else:
        raise ApiError(404, "not_found", f"rule {position} not found")
    values = _rule_values(current)
    return _rule_form(
        request, session, tenant, scope, extension, position, values, {}, item.version
    )


@router.post("/t/{tenant}/users/{extension}/rules/{position}", response_model=None)
async def save_rule(request: Request, tenant: str, extension: str, position: str) -> Response:
    """Save one rule into the user's rules; the form comes back with the errors at their
    fields when the API refuses, and nothing is saved."""
    session = await signed_in(request)
    form = await form_text(request)
    check_csrf(session, request, form.get("csrf"))
    scope, item = await _document(request, session, tenant, extension, "u")
    listed = list(item.data.get("rules", []))
    default = position == "default"
    new_rule = _rule_of(form, default)
    if position == "new":
        listed.append(new_rule)
        index = len(listed) - 1
    elif default:
        index = -1
    elif (position.isascii() and position.isdigit()) and 1 <= int(position) <= len(listed):
        index = int(position) - 1
        listed[index] = new_rule
    else:
        raise ApiError(404, "not_found", f"rule {position} not found")
    data = {**item.data, "rules": listed}
    if default:
        data["default_rule"] = new_rule
    prefix = "default_rule" if default else f"rules[{index}]"
    try:
        await _save(request, scope, extension, data, form.get("version"), item.version)
    except ApiError as exc:
        errors = errors_of(exc, _rule_fields(prefix, EXTRA_LEGS))
        values = {**_rule_values(new_rule), **form}
        for flag in (
            "enabled",
            "screening",
            "simring",
            "include_extension",
            "ring_all_devices",
            "answer_confirmation",
        ):
            values[flag] = form.get(flag) == "on" or (flag == "enabled" and default)
        return _rule_form(
            request,
            session,
            tenant,
            scope,
            extension,
            position,
            values,
            errors,
            item.version,
            status=exc.status if exc.status >= 400 else 422,
        )
    return RedirectResponse(_path(tenant, extension), status_code=303)
