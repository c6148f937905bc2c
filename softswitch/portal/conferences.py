"""Conference bridges with their live participants: mute and unmute, kick (after a
confirmation), invite a number (the switch dials it and brings it in once answered). The
participants' table refreshes in place (portal.js polls its fragment)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from softswitch.api import routes_live
from softswitch.api.errors import ApiError
from softswitch.api.roles import Area
from softswitch.portal.frame import (
    LIST_LIMIT,
    TEMPLATES,
    check_csrf,
    render,
    signed_in,
    tenant_scope,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _url(tenant: str, **outcome: str) -> str:
    query = urlencode({k: v for k, v in outcome.items() if v})
    return f"/t/{tenant}/conferences" + (f"?{query}" if query else "")


@router.get("/t/{tenant}/conferences", response_class=HTMLResponse)
async def bridges(request: Request, tenant: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.CONFERENCES, "r")
    found = await routes_live.conferences(scope, active=None, cursor=None, limit=LIST_LIMIT)
    p = session.principal
    values: dict[str, Any] = {
        "conferences": found.items,
        "may_change": p.may(Area.CONFERENCES, "u"),
        "may_invite": p.may(Area.CONFERENCES, "c"),
    }
    if request.query_params.get("fragment") == "1":  # portal.js: the live part only
        return TEMPLATES.TemplateResponse(
            request,
            "conference_rooms.html",
            {"tenant": tenant, "csrf": session.csrf, **values},
        )
    return render(request, session, "conferences.html", tenant, **values)


@router.post("/t/{tenant}/conferences/{name}/invite", response_model=None)
async def invite(
    request: Request, tenant: str, name: str, number: str = Form(""), csrf: str = Form("")
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.CONFERENCES, "c")
    try:
        body = routes_live.InviteIn(number=number.strip())
    except ValidationError:
        return RedirectResponse(
            _url(tenant, error=f"{name}: a number to dial (digits, * or #)", room=name),
            status_code=303,
        )
    try:
        await routes_live.invite(name, body, scope)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return RedirectResponse(_url(tenant, error=f"{name}: {exc.message}", room=name), 303)
    return RedirectResponse(_url(tenant, done=f"{name}: dialling {body.number}"), 303)


@router.post("/t/{tenant}/conferences/{name}/participants/{participant}", response_model=None)
async def mute(
    request: Request,
    tenant: str,
    name: str,
    participant: str,
    muted: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    """Mute (``muted=1``) or unmute a participant."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.CONFERENCES, "u")
    patch = routes_live.ParticipantPatch(muted=muted == "1")
    try:
        await routes_live.mute(name, participant, patch, scope)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return RedirectResponse(_url(tenant, error=f"{name}: {exc.message}"), 303)
    return RedirectResponse(_url(tenant), status_code=303)


@router.get("/t/{tenant}/conferences/{name}/participants/{participant}/kick")
async def kick_confirm(request: Request, tenant: str, name: str, participant: str) -> Response:
    """The confirmation before a participant is hung up."""
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.CONFERENCES, "u")
    room = await routes_live.conference(name, Response(), scope)
    who = next((p for p in room.participants if p.id == participant), None)
    if who is None:
        return RedirectResponse(_url(tenant, error=f"{name}: that participant has left"), 303)
    action = f"/t/{tenant}/conferences/{quote(name, safe='')}/participants/{quote(participant)}"
    return render(
        request, session, "conference_kick.html", tenant, room=room, who=who, action=action
    )


@router.post("/t/{tenant}/conferences/{name}/participants/{participant}/kick")
async def kick(
    request: Request, tenant: str, name: str, participant: str, csrf: str = Form("")
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.CONFERENCES, "u")
    try:
        await routes_live.kick(name, participant, scope)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return RedirectResponse(_url(tenant, error=f"{name}: {exc.message}"), 303)
    return RedirectResponse(_url(tenant), status_code=303)
