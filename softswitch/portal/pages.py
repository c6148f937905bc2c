"""The portal's first pages: login and logout, the start page, the tenant list and live
calls (hang up). The dashboard and call history are in their own modules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from softswitch.api import routes_live, routes_logins
from softswitch.api.deps import context
from softswitch.api.errors import ApiError
from softswitch.api.roles import Area, Role
from softswitch.portal.frame import (
    ASSETS,
    LIST_LIMIT,
    TEMPLATES,
    check_csrf,
    render,
    signed_in,
    tenant_scope,
)
from softswitch.portal.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    PortalSession,
    csrf_matches,
    login_csrf,
    set_cookie,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# -- login and logout ------------------------------------------------------------------------


def _login_form(
    request: Request, error: str | None = None, status: int = 200, name: str = ""
) -> HTMLResponse:
    token = login_csrf(request)
    response = TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"csrf": token, "error": error, "name": name, "assets": ASSETS, "nav": [], "session": None},
        status_code=status,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, 3600)
    return response


@router.get("/login", response_class=HTMLResponse)
async def loginrender(request: Request) -> HTMLResponse:
    return _login_form(request)


@router.post("/login", response_model=None)
async def login(
    request: Request,
    name: str = Form(""),
    password: str = Form(""),
    totp_code: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    """Sign in with the API's login (password, and the TOTP code when the login has one)."""
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf) or not csrf:
        return _login_form(request, "The form has expired: please sign in again.", 403, name)
    try:
        credentials = routes_logins.Credentials(
            name=name, password=password, totp_code=totp_code or None
        )
        session = await routes_logins.login(request, credentials)
    except ValidationError:
        return _login_form(request, "Wrong name, password or code.", 401, name)
    except ApiError as exc:
        message = "Wrong name, password or code." if exc.status == 401 else exc.message
        return _login_form(request, message, exc.status, name)
    response = RedirectResponse("/", status_code=303)
    lifetime = (
        int(session.expires_at - dt.datetime.now(dt.UTC).timestamp())
        if session.expires_at
        else 86_400
    )
    set_cookie(request, response, SESSION_COOKIE, session.token, max(60, lifetime))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request, csrf: str = Form("")) -> Response:
    """Sign out: the session token is revoked, the cookie dropped."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    await context(request).store.revoke_api_token(
        session.principal.token_id, dt.datetime.now(dt.UTC).timestamp()
    )
    context(request).tokens.forget(session.principal.token_id)  # the API's token cache
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- the frame -------------------------------------------------------------------------------


@router.get("/", response_model=None)
async def home(request: Request) -> Response:
    """Where a login starts: its tenant's page, or the tenant list when it has several."""
    session = await signed_in(request)
    p = session.principal
    visible = p.visible_tenants(context(request).tenants())
    if p.role in (Role.OPERATOR, Role.RESELLER) or len(visible) != 1:
        return RedirectResponse("/tenants", status_code=303)
    tenant = visible[0]
    if p.role is Role.USER and p.extension:
        return RedirectResponse(f"/t/{tenant}/users/{p.extension}/history", status_code=303)
    if p.role is Role.SUPERVISOR:
        return RedirectResponse(f"/t/{tenant}/calls", status_code=303)
    return RedirectResponse(f"/t/{tenant}", status_code=303)


@router.get("/tenants", response_class=HTMLResponse)
async def tenants(request: Request) -> HTMLResponse:
    session = await signed_in(request)
    names = sorted(session.principal.visible_tenants(context(request).tenants()))
    return render(request, session, "tenants.html", None, tenants=names)


# -- live calls ------------------------------------------------------------------------------


def _call_row(call: routes_live.LiveCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "state": call.state,
        "caller": call.caller_number,
        "caller_name": call.caller_name,
        "dialled": call.dialled,
        "callee": call.callee,
        "duration": int(call.duration),
    }


async def _live_rows(request: Request, session: PortalSession, tenant: str) -> list[dict[str, Any]]:
    scope = await tenant_scope(request, session, tenant, Area.CALLS, "r")
    found = await routes_live.live_calls(
        scope, state=None, extension=None, cursor=None, limit=LIST_LIMIT
    )
    return [_call_row(c) for c in found.items]


@router.get("/t/{tenant}/calls", response_class=HTMLResponse)
async def callsrender(request: Request, tenant: str) -> HTMLResponse:
    """Calls in progress; ``portal.js`` refreshes the table from ``calls.json``."""
    session = await signed_in(request)
    rows = await _live_rows(request, session, tenant)
    may_hang_up = session.principal.may(Area.CALLS, "d")
    return render(request, session, "calls.html", tenant, calls=rows, may_hang_up=may_hang_up)


@router.get("/t/{tenant}/calls.json")
async def calls_data(request: Request, tenant: str) -> JSONResponse:
    session = await signed_in(request)
    return JSONResponse({"calls": await _live_rows(request, session, tenant)})


@router.post("/t/{tenant}/calls/{call_id}/hangup", response_model=None)
async def hang_up(request: Request, tenant: str, call_id: str, csrf: str = Form("")) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    await routes_live.hang_up(
        call_id, await tenant_scope(request, session, tenant, Area.CALLS, "d")
    )
    if request.headers.get("x-csrf-token"):  # portal.js: no page to go back to
        return Response(status_code=202)
    return RedirectResponse(f"/t/{tenant}/calls", status_code=303)
