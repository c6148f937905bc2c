"""The portal's routes: login and logout, the navigation frame and its pages.

A page asks the API for what it shows: the tenant scope comes from the API's ``scoped``
dependency and the data from the API's route functions, so roles, scopes and refusals
(404 for a tenant not seen, 403 for an area not allowed) are the API's own. A new page is a
route here (or in a module of its own) plus a template that extends ``base.html``.
"""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from softswitch.api import routes_history, routes_live, routes_logins
from softswitch.api.deps import TenantScope, context, scoped
from softswitch.api.errors import ApiError
from softswitch.api.roles import Area, Role
from softswitch.portal.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    PortalSession,
    csrf_matches,
    login_csrf,
    session_of,
    set_cookie,
)

__all__ = ["ASSETS", "mount", "router"]

ASSETS = "/portal-assets"  # the portal's own script and style, served by the switch
_HERE = Path(__file__).parent
_TEMPLATES = Jinja2Templates(directory=_HERE / "templates")
_TEMPLATES.env.filters["utc"] = lambda when: dt.datetime.fromtimestamp(when, dt.UTC).strftime(
    "%Y-%m-%d %H:%M:%S"
)
_LIST_LIMIT = 500  # the API's page limit: a dashboard counts up to this many, then says "+"

router = APIRouter(include_in_schema=False)


class _SignIn(Exception):
    """The request has no valid session: send the browser to the login page."""


def _nav(session: PortalSession, tenant: str | None) -> list[tuple[str, str]]:
    """The navigation links this login's role and permissions allow."""
    p = session.principal
    links: list[tuple[str, str]] = []
    if p.role in (Role.OPERATOR, Role.RESELLER):
        links.append(("Tenants", "/tenants"))
    if tenant is None:
        return links
    base = f"/t/{tenant}"
    if p.role is not Role.USER and p.may(Area.REGISTRATIONS, "r"):
        links.append(("Dashboard", base))
    if p.may(Area.CALLS, "r") and p.role is not Role.USER:
        links.append(("Live calls", f"{base}/calls"))
    if p.role is Role.USER and p.extension:
        links.append(("My call history", f"{base}/users/{p.extension}/history"))
    elif p.may(Area.CALL_HISTORY, "r"):
        links.append(("Call history", f"{base}/history"))
    return links


def _page(
    request: Request,
    session: PortalSession,
    template: str,
    tenant: str | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    return _TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "login": session.principal.login,
            "role": session.principal.role.value.replace("_", " "),
            "tenant": tenant,
            "nav": _nav(session, tenant),
            "csrf": session.csrf,
            "assets": ASSETS,
            **values,
        },
        status_code=status,
    )


async def _session(request: Request) -> PortalSession:
    found = await session_of(context(request), request)
    if found is None:
        raise _SignIn()
    return found


async def _scope(
    request: Request, session: PortalSession, tenant: str, area: Area, action: str
) -> TenantScope:
    return await scoped(area, action)(request, tenant, session.principal)


def _check_csrf(session: PortalSession, request: Request, form_token: str | None) -> None:
    given = form_token or request.headers.get("x-csrf-token")
    if not csrf_matches(session.csrf, given):
        raise ApiError(403, "csrf", "the form has expired: reload the page and try again")


# -- login and logout ------------------------------------------------------------------------


def _login_form(
    request: Request, error: str | None = None, status: int = 200, name: str = ""
) -> HTMLResponse:
    token = login_csrf(request)
    response = _TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"csrf": token, "error": error, "name": name, "assets": ASSETS, "nav": [], "session": None},
        status_code=status,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, 3600)
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
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
    session = await _session(request)
    _check_csrf(session, request, csrf)
    await context(request).store.revoke_api_token(
        session.principal.token_id, dt.datetime.now(dt.UTC).timestamp()
    )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- the frame -------------------------------------------------------------------------------


@router.get("/", response_model=None)
async def home(request: Request) -> Response:
    """Where a login starts: its tenant's page, or the tenant list when it has several."""
    session = await _session(request)
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
    session = await _session(request)
    names = sorted(session.principal.visible_tenants(context(request).tenants()))
    return _page(request, session, "tenants.html", None, tenants=names)


@router.get("/t/{tenant}", response_class=HTMLResponse)
async def dashboard(request: Request, tenant: str) -> HTMLResponse:
    """A tenant's home: registered devices, live calls, calls today."""
    session = await _session(request)
    regs = await routes_live.registrations(
        await _scope(request, session, tenant, Area.REGISTRATIONS, "r"),
        extension=None,
        reachable=None,
        cursor=None,
        limit=_LIST_LIMIT,
    )
    calls = await routes_live.live_calls(
        await _scope(request, session, tenant, Area.CALLS, "r"),
        state=None,
        extension=None,
        cursor=None,
        limit=_LIST_LIMIT,
    )
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    history = await routes_history.call_history(
        await _scope(request, session, tenant, Area.CALL_HISTORY, "r"),
        routes_history.Filters(from_=today),
        cursor=None,
        limit=_LIST_LIMIT,
    )
    return _page(
        request,
        session,
        "dashboard.html",
        tenant,
        devices=_count(len(regs.items), regs.next_cursor),
        live=_count(len(calls.items), calls.next_cursor),
        today=_count(len(history.items), history.next_cursor),
        registrations=regs.items,
    )


def _count(shown: int, more: str | None) -> str:
    return f"{shown}+" if more else str(shown)


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
    scope = await _scope(request, session, tenant, Area.CALLS, "r")
    found = await routes_live.live_calls(
        scope, state=None, extension=None, cursor=None, limit=_LIST_LIMIT
    )
    return [_call_row(c) for c in found.items]


@router.get("/t/{tenant}/calls", response_class=HTMLResponse)
async def calls_page(request: Request, tenant: str) -> HTMLResponse:
    """Calls in progress; ``portal.js`` refreshes the table from ``calls.json``."""
    session = await _session(request)
    rows = await _live_rows(request, session, tenant)
    may_hang_up = session.principal.may(Area.CALLS, "d")
    return _page(request, session, "calls.html", tenant, calls=rows, may_hang_up=may_hang_up)


@router.get("/t/{tenant}/calls.json")
async def calls_data(request: Request, tenant: str) -> JSONResponse:
    session = await _session(request)
    return JSONResponse({"calls": await _live_rows(request, session, tenant)})


@router.post("/t/{tenant}/calls/{call_id}/hangup", response_model=None)
async def hang_up(request: Request, tenant: str, call_id: str, csrf: str = Form("")) -> Response:
    session = await _session(request)
    _check_csrf(session, request, csrf)
    await routes_live.hang_up(call_id, await _scope(request, session, tenant, Area.CALLS, "d"))
    if request.headers.get("x-csrf-token"):  # portal.js: no page to go back to
        return Response(status_code=202)
    return RedirectResponse(f"/t/{tenant}/calls", status_code=303)


# -- call history ----------------------------------------------------------------------------


async def _history(
    request: Request, session: PortalSession, tenant: str, extension: str | None
) -> HTMLResponse:
    scope = await _scope(request, session, tenant, Area.CALL_HISTORY, "r")
    if extension is not None and not scope.sees_extension(extension):
        # The API answers an empty list for another user's history; a page says no.
        raise ApiError(403, "forbidden", f"not permitted: call history of {extension}")
    if extension is None and scope.extensions is not None:
        raise ApiError(403, "forbidden", "not permitted: the whole tenant's call history")
    found = await routes_history.call_history(
        scope, routes_history.Filters(user=extension), cursor=None, limit=100
    )
    return _page(request, session, "history.html", tenant, records=found.items, extension=extension)


@router.get("/t/{tenant}/history", response_class=HTMLResponse)
async def tenant_history(request: Request, tenant: str) -> HTMLResponse:
    return await _history(request, await _session(request), tenant, None)


@router.get("/t/{tenant}/users/{extension}/history", response_class=HTMLResponse)
async def user_history(request: Request, tenant: str, extension: str) -> HTMLResponse:
    return await _history(request, await _session(request), tenant, extension)


# -- mounting --------------------------------------------------------------------------------


def mount(app: FastAPI) -> None:
    """Add the portal's pages at ``/`` and its assets at ``ASSETS`` to the API's app."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=_HERE / "static"), name="portal-assets")

    api_errors = app.exception_handlers[ApiError]

    async def sign_in(request: Request, exc: Exception) -> Response:
        return RedirectResponse("/login", status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        """An API refusal on a page is a page saying why; ``/v1`` keeps its JSON body."""
        if not isinstance(exc, ApiError) or not _is_page(request):
            answer = api_errors(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        session = await session_of(context(request), request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        tenant = request.path_params.get("tenant") if exc.status != 404 else None
        return _page(request, session, "error.html", tenant, exc.status, error=exc.message)

    app.add_exception_handler(_SignIn, sign_in)
    app.add_exception_handler(ApiError, refused)


def _is_page(request: Request) -> bool:
    path = request.url.path
    if path.endswith(".json"):
        return False
    return path in ("/", "/tenants", "/login", "/logout") or path.startswith("/t/")
