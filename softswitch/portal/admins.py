"""Admins and their permissions (guide 000: create, read, update, delete per area), their
API tokens (the secret shown once, revoke) and the audit log, on the API's login, token
and audit operations. Pages live under a tenant (``/t/{tenant}/admins``): the logins shown
are those of that tenant the signed-in login manages, and its own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from softswitch.api import routes_audit, routes_logins
from softswitch.api.deps import context
from softswitch.api.errors import ApiError
from softswitch.api.roles import ACTIONS, Area, Role, effective_permissions, rank, role_ceiling
from softswitch.portal.forms import FormErrors, form_text
from softswitch.portal.frame import LIST_LIMIT, check_csrf, render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete"}
_FIELDS = ("name", "role", "password", "site", "extension", "permissions", "totp", "tenants")


def _roles(session: PortalSession) -> list[tuple[str, str]]:
    """The roles this login may give (lower than its own; an operator any)."""
    own = session.principal.role
    return [
        (r.value, r.value.replace("_", " "))
        for r in Role
        if own is Role.OPERATOR or rank(r) < rank(own)
    ]


def _grid(role: Role, permissions: dict[str, str]) -> list[dict[str, Any]]:
    """Per area of the role: each action's box, ticked when the login has it."""
    have = effective_permissions(role, permissions)
    return [
        {
            "area": area.value,
            "label": area.value.replace("_", " "),
            "actions": [
                {
                    "letter": a,
                    "word": _WORDS[a],
                    "allowed": a in allowed,
                    "on": a in have.get(area, ""),
                }
                for a in ACTIONS
            ],
        }
        for area, allowed in role_ceiling(role).items()
        if allowed
    ]


def _permissions(form: Any, role: Role) -> dict[str, str]:
    """The ticked boxes as the API's per-area letters (every area of the role named, so an
    area left empty is "nothing", not "the role's ceiling")."""
    return {
        area.value: "".join(a for a in ACTIONS if form.get(f"perm_{area.value}_{a}") == "on")
        for area, allowed in role_ceiling(role).items()
        if allowed
    }


def _field_of(location: str) -> str:
    name = location.removeprefix("body.").split(".")[0]
    return name if name in _FIELDS else ""


def _validation(exc: ValidationError) -> FormErrors:
    errors: FormErrors = {}
    for e in exc.errors():
        field = _field_of(".".join(str(p) for p in e.get("loc", ())))
        errors.setdefault(field, str(e.get("msg", "invalid")).removeprefix("Value error, "))
    return errors


def _api_errors(exc: ApiError) -> FormErrors:
    if exc.status == 409:
        return {"name": exc.message}
    found: FormErrors = {}
    for e in exc.errors:
        found.setdefault(_field_of(e.field), e.message)
    return found or {"": exc.message}


# -- the list ---------------------------------------------------------------------------------


@router.get("/t/{tenant}/admins", response_class=HTMLResponse)
async def admins(request: Request, tenant: str) -> HTMLResponse:
    session = await signed_in(request)
    await tenant_scope(request, session, tenant, Area.ADMINS, "r")
    found = await routes_logins.list_logins(
        request, session.principal, role=None, tenant=tenant, cursor=None, limit=LIST_LIMIT
    )
    return render(
        request,
        session,
        "admins.html",
        tenant,
        logins=found.items,
        may_create=session.principal.may(Area.ADMINS, "c"),
    )


# -- add --------------------------------------------------------------------------------------


def _login_form(
    request: Request,
    session: PortalSession,
    tenant: str,
    values: dict[str, Any],
    errors: FormErrors,
    *,
    new: bool,
    status: int = 200,
    tokens: list[Any] | None = None,
    created: Any = None,
) -> HTMLResponse:
    role = Role(values.get("role") or Role.USER.value)
    return render(
        request,
        session,
        "admin_edit.html",
        tenant,
        status,
        values=values,
        errors=errors,
        new=new,
        roles=_roles(session),
        grid=_grid(role, values.get("permissions") or {}),
        sites=_sites(request, tenant),
        tokens=tokens,
        created=created,
        own=values.get("name") == session.principal.login,
        may_change=session.principal.may(Area.ADMINS, "u"),
        may_delete=session.principal.may(Area.ADMINS, "d"),
    )


@router.get("/t/{tenant}/admins/new", response_class=HTMLResponse)
async def new_login(request: Request, tenant: str, role: str = "") -> HTMLResponse:
    session = await signed_in(request)
    await tenant_scope(request, session, tenant, Area.ADMINS, "c")
    offered = [r for r, _ in _roles(session)]
    chosen = role if role in offered else offered[-1] if offered else Role.USER.value
    values = {"role": chosen, "permissions": {}, "enabled": True}
    return _login_form(request, session, tenant, values, {}, new=True)


@router.post("/t/{tenant}/admins/new", response_model=None)
async def create_login(request: Request, tenant: str) -> Response:
    """Create a login of this tenant; its TOTP secret (when asked for) is shown once."""
    session = await signed_in(request)
    form = await request.form()
    text = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(session, request, text.get("csrf"))
    await tenant_scope(request, session, tenant, Area.ADMINS, "c")
    values: dict[str, Any] = {**text, "enabled": True}
    try:
        role = Role(text.get("role", ""))
    except ValueError:
        values["role"] = Role.USER.value
        return _login_form(
            request, session, tenant, values, {"role": "choose a role"}, new=True, status=422
        )
    permissions = _permissions(form, role)
    values["permissions"] = permissions
    try:
        body = routes_logins.LoginIn(
            name=text.get("name", "").strip(),
            role=role.value,
            password=text.get("password") or None,
            tenants=[tenant],
            site=text.get("site") or None,
            extension=text.get("extension", "").strip() or None,
            permissions=permissions,
            totp=text.get("totp") == "on",
        )
        created = await routes_logins.add_login(request, Response(), body, session.principal)
    except ValidationError as exc:
        return _login_form(request, session, tenant, values, _validation(exc), new=True, status=422)
    except ApiError as exc:
        return _login_form(
            request, session, tenant, values, _api_errors(exc), new=True, status=exc.status
        )
    if created.totp_secret:
        return _login_form(
            request,
            session,
            tenant,
            _out_values(created),
            {},
            new=False,
            status=201,
            tokens=[],
            created=created,
        )
    return RedirectResponse(f"/t/{tenant}/admins/{created.name}", status_code=303)


def _sites(request: Request, tenant: str) -> list[str]:
    found = context(request).tenant(tenant)
    return [s.name for s in found.sites] if found is not None else []


def _out_values(login: routes_logins.LoginOut) -> dict[str, Any]:
    return {
        "name": login.name,
        "role": login.role,
        "site": login.site or "",
        "extension": login.extension or "",
        "permissions": login.permissions,
        "totp": login.totp,
        "enabled": login.enabled,
    }


# -- one login: edit, delete, tokens ----------------------------------------------------------


async def _tokens(request: Request, session: PortalSession, name: str) -> list[Any]:
    found = await routes_logins.list_tokens(
        request, name, session.principal, cursor=None, limit=LIST_LIMIT
    )
    return [t for t in found.items if t.kind == "api"]


@router.get("/t/{tenant}/admins/{name}", response_class=HTMLResponse)
async def login(request: Request, tenant: str, name: str) -> HTMLResponse:
    session = await signed_in(request)
    await tenant_scope(request, session, tenant, Area.TENANTS, "r")
    found = await routes_logins.get_login(request, Response(), name, session.principal)
    tokens = await _tokens(request, session, name)
    return _login_form(request, session, tenant, _out_values(found), {}, new=False, tokens=tokens)


@router.post("/t/{tenant}/admins/{name}", response_model=None)
async def save_login(request: Request, tenant: str, name: str) -> Response:
    """Role, scope, permissions and enabled (another login's); password (one's own or a
    managed login's). Nothing is saved when a field is refused."""
    session = await signed_in(request)
    form = await request.form()
    text = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(session, request, text.get("csrf"))
    await tenant_scope(request, session, tenant, Area.TENANTS, "r")
    current = await routes_logins.get_login(request, Response(), name, session.principal)
    own = name == session.principal.login
    changes: dict[str, Any] = {}
    if text.get("password"):
        changes["password"] = text["password"]
    if not own:
        role = Role(text.get("role") or current.role)
        changes |= {
            "role": role.value,
            "permissions": _permissions(form, role),
            "enabled": text.get("enabled") == "on",
            "site": text.get("site") or None,
            "extension": text.get("extension", "").strip() or None,
        }
    values = {**_out_values(current), **changes}
    try:
        patch = routes_logins.LoginPatch(**changes)
        await routes_logins.update_login(request, Response(), name, patch, session.principal)
    except ValidationError as exc:
        errors = _validation(exc)
    except ApiError as exc:
        errors = _api_errors(exc)
    else:
        return RedirectResponse(f"/t/{tenant}/admins/{name}?saved=1", status_code=303)
    tokens = await _tokens(request, session, name)
    return _login_form(
        request, session, tenant, values, errors, new=False, status=422, tokens=tokens
    )


@router.post("/t/{tenant}/admins/{name}/delete", response_model=None)
async def delete_login(request: Request, tenant: str, name: str, csrf: str = Form("")) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    await tenant_scope(request, session, tenant, Area.ADMINS, "d")
    await routes_logins.delete_login(request, name, session.principal)
    return RedirectResponse(f"/t/{tenant}/admins", status_code=303)


@router.post("/t/{tenant}/admins/{name}/tokens", response_class=HTMLResponse)
async def create_token(request: Request, tenant: str, name: str) -> HTMLResponse:
    """A new API token: its secret is on this answer and never again."""
    session = await signed_in(request)
    form = await form_text(request)
    check_csrf(session, request, form.get("csrf"))
    await tenant_scope(request, session, tenant, Area.TENANTS, "r")
    current = await routes_logins.get_login(request, Response(), name, session.principal)
    errors: FormErrors = {}
    token = None
    days = form.get("expires_days", "").strip()
    try:
        body = routes_logins.TokenIn(
            description=form.get("description", "").strip(),
            expires_in=int(days) * 86_400 if days else None,
        )
        token = await routes_logins.add_token(request, name, session.principal, body)
    except ValueError as exc:  # a ValidationError is one, and so is int("x")
        errors = {"expires_days": "give whole days from 1 to 1825, or leave it empty"}
        if isinstance(exc, ValidationError) and any(
            e.get("loc", ("",))[0] == "description" for e in exc.errors()
        ):
            errors = {"description": "at most 200 characters"}
    tokens = await _tokens(request, session, name)
    return _login_form(
        request,
        session,
        tenant,
        _out_values(current),
        errors,
        new=False,
        status=422 if errors else 201,
        tokens=tokens,
        created=token,
    )


@router.post("/t/{tenant}/tokens/{token_id}/revoke", response_model=None)
async def revoke_token(
    request: Request, tenant: str, token_id: str, csrf: str = Form(""), back: str = Form("")
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    await tenant_scope(request, session, tenant, Area.TENANTS, "r")
    await routes_logins.revoke_token(request, token_id, session.principal)
    target = back if back.startswith(f"/t/{tenant}/") else f"/t/{tenant}/admins"
    return RedirectResponse(target, status_code=303)


# -- the audit log ----------------------------------------------------------------------------


@router.get("/t/{tenant}/audit", response_class=HTMLResponse)
async def audit(
    request: Request,
    tenant: str,
    actor: str = "",
    kind: str = "",
    key: str = "",
    cursor: str | None = None,
) -> HTMLResponse:
    """Who changed what and when, newest first, filtered by who, kind and key."""
    session = await signed_in(request)
    await tenant_scope(request, session, tenant, Area.AUDIT, "r")
    found = await routes_audit.audit(
        request,
        session.principal,
        tenant=tenant,
        actor=actor.strip()[:160] or None,
        kind=kind.strip()[:160] or None,
        key=key.strip()[:160] or None,
        since=None,
        until=None,
        cursor=cursor or None,
        limit=50,
    )
    rows = [
        {
            "at": e.at,
            "actor": e.actor,
            "source": e.source,
            "action": e.action,
            "kind": e.kind.replace("_", " "),
            "key": e.key,
            "changed": _changed(e.before, e.after),
        }
        for e in found.items
    ]
    return render(
        request,
        session,
        "audit.html",
        tenant,
        entries=rows,
        total=found.total,
        filters={"actor": actor, "kind": kind, "key": key},
        next_cursor=found.next_cursor,
    )


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """The fields a change touched (their names, not values: secrets stay out of pages)."""
    if before is None:
        return "created"
    if after is None:
        return "deleted"
    names = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return ", ".join(names) or "no field"
