"""The portal's frame: templates, the signed-in session, navigation, scopes and CSRF.

A page (a route in one of the portal's modules) asks the API for what it shows: the
tenant scope comes from the API's ``scoped`` dependency and the data from the API's route
functions, so roles, scopes and refusals (404 for a tenant not seen, 403 for an area not
allowed) are the API's own. A new page is a route in a module of its own plus a template
that extends ``base.html``, its router added to ``softswitch.portal.ROUTERS`` and its link
to ``_nav``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from softswitch.api.deps import TenantScope, context, scoped
from softswitch.api.errors import ApiError
from softswitch.api.roles import Area, Role
from softswitch.portal.session import (
    PortalSession,
    csrf_matches,
    session_of,
)

__all__ = [
    "ASSETS",
    "HERE",
    "LIST_LIMIT",
    "TEMPLATES",
    "SignIn",
    "check_csrf",
    "render",
    "signed_in",
    "tenant_scope",
]

ASSETS = "/portal-assets"  # the portal's own script and style, served by the switch
HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
TEMPLATES.env.filters["utc"] = lambda when: dt.datetime.fromtimestamp(when, dt.UTC).strftime(
    "%Y-%m-%d %H:%M:%S"
)
LIST_LIMIT = 500  # the API's page limit: a dashboard counts up to this many, then says "+"


class SignIn(Exception):
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
    if p.role is not Role.USER and p.may(Area.USERS, "r"):
        links.append(("Users", f"{base}/users"))
    if p.role is not Role.USER and p.may(Area.ROUTING, "r"):
        links.append(("Time frames", f"{base}/time-frames"))
    if p.role is not Role.USER and p.may(Area.NUMBERS, "r"):
        links.append(("Numbers", f"{base}/numbers"))
    if p.role is not Role.USER and p.may(Area.DISASTER_PLANS, "r"):
        links.append(("Disaster plans", f"{base}/disaster-plans"))
    if p.role is not Role.USER and p.may(Area.QUEUES, "r"):
        links.append(("Queue board", f"{base}/queues"))
    if p.role is not Role.USER and p.may(Area.CONFERENCES, "r"):
        links.append(("Conferences", f"{base}/conferences"))
    if p.role is not Role.USER and p.may(Area.ROUTING, "r"):
        links.append(("Block lists", f"{base}/lists"))
    if p.role is not Role.USER and p.may(Area.TENANTS, "r"):
        links.append(("Music on hold", f"{base}/music-on-hold"))
    if p.may(Area.ROUTING, "r"):
        links.append(("Why no ring?", f"{base}/explain"))
    if p.role is Role.USER and p.extension:
        links.append(("My call history", f"{base}/users/{p.extension}/history"))
    elif p.may(Area.CALL_HISTORY, "r"):
        links.append(("Call history", f"{base}/history"))
    if p.role is Role.USER and p.extension:
        links.append(("My settings", f"{base}/me"))
        links.append(("My voicemail", f"{base}/users/{p.extension}/voicemail"))
    if p.role is not Role.USER and p.may(Area.ADMINS, "r"):
        links.append(("Admins", f"{base}/admins"))
    if p.may(Area.AUDIT, "r"):
        links.append(("Audit log", f"{base}/audit"))
    links.append(("My account", f"{base}/admins/{p.login}"))
    return links


def render(
    request: Request,
    session: PortalSession,
    template: str,
    tenant: str | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
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


async def signed_in(request: Request) -> PortalSession:
    found = await session_of(context(request), request)
    if found is None:
        raise SignIn()
    return found


async def tenant_scope(
    request: Request, session: PortalSession, tenant: str, area: Area, action: str
) -> TenantScope:
    return await scoped(area, action)(request, tenant, session.principal)


def check_csrf(session: PortalSession, request: Request, form_token: str | None) -> None:
    given = form_token or request.headers.get("x-csrf-token")
    if not csrf_matches(session.csrf, given):
        raise ApiError(403, "csrf", "the form has expired: reload the page and try again")
