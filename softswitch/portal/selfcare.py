"""A basic user's own settings: the name shown and the SIP password of their extension
(what the API lets a basic user change of their own user), with links to their answering
rules, time frames, call history and account (sign-in password, API tokens); and a
mailbox's voice messages, played in the page and deleted (moved to the deleted folder)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from softswitch.api import routes_voicemail
from softswitch.api.errors import ApiError
from softswitch.api.roles import Area
from softswitch.portal.forms import FormErrors, endpoint, errors_of, form_text
from softswitch.portal.frame import check_csrf, render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _extension(session: PortalSession) -> str:
    extension = session.principal.extension
    if not extension:
        raise ApiError(404, "not_found", "this login has no extension of its own")
    return extension


def _page(
    request: Request,
    session: PortalSession,
    tenant: str,
    values: dict[str, Any],
    errors: FormErrors,
    status: int = 200,
) -> HTMLResponse:
    return render(request, session, "selfcare.html", tenant, status, values=values, errors=errors)


@router.get("/t/{tenant}/me", response_class=HTMLResponse)
async def me(request: Request, tenant: str) -> HTMLResponse:
    session = await signed_in(request)
    extension = _extension(session)
    scope = await tenant_scope(request, session, tenant, Area.USERS, "r")
    item = await endpoint("get_user")(extension, Response(), scope)
    values = {"extension": extension, "display_name": item.data.get("display_name", "")}
    return _page(request, session, tenant, values, {})


@router.post("/t/{tenant}/me", response_model=None)
async def save(request: Request, tenant: str) -> Response:
    """Save the name and, when given twice alike, a new SIP password; nothing on an error."""
    session = await signed_in(request)
    form = await form_text(request)
    check_csrf(session, request, form.get("csrf"))
    extension = _extension(session)
    scope = await tenant_scope(request, session, tenant, Area.USERS, "u")
    values = {"extension": extension, "display_name": form.get("display_name", "")}
    password, again = form.get("password", ""), form.get("password_again", "")
    errors: FormErrors = {}
    if password != again:
        errors = {"password_again": "the two passwords differ"}
    elif password and len(password) < 8:
        errors = {"password": "at least 8 characters"}
    if not errors:
        patch: dict[str, Any] = {"display_name": values["display_name"].strip() or None}
        if password:
            patch["password"] = password
        try:
            await endpoint("patch_user")(extension, patch, request, Response(), scope)
        except ApiError as exc:
            errors = errors_of(exc, {"display_name": "display_name", "password": "password"})
    if errors:
        return _page(request, session, tenant, values, errors, 422)
    return RedirectResponse(f"/t/{tenant}/me?saved=1", status_code=303)


# -- voicemail --------------------------------------------------------------------------------


@router.get("/t/{tenant}/users/{extension}/voicemail", response_class=HTMLResponse)
async def voicemail(request: Request, tenant: str, extension: str) -> HTMLResponse:
    """A mailbox's messages, newest first, each playable in the page."""
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.VOICEMAIL, "r")
    found = await routes_voicemail.messages(extension, scope, folder=None)
    return render(
        request,
        session,
        "voicemail.html",
        tenant,
        extension=extension,
        messages=found,
        may_delete=session.principal.may(Area.VOICEMAIL, "u"),
    )


@router.get("/t/{tenant}/users/{extension}/voicemail/{message_id}.wav")
async def voicemail_audio(
    request: Request, tenant: str, extension: str, message_id: str
) -> FileResponse:
    """The recording, from the API's operation, for the page's audio element."""
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.VOICEMAIL, "r")
    return await routes_voicemail.message_audio(extension, message_id, scope)


@router.post("/t/{tenant}/users/{extension}/voicemail/{message_id}/delete", response_model=None)
async def delete_message(
    request: Request, tenant: str, extension: str, message_id: str, csrf: str = Form("")
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.VOICEMAIL, "u")
    body = routes_voicemail.MoveIn(folder="deleted")
    await routes_voicemail.move_message(extension, message_id, body, scope)
    return RedirectResponse(f"/t/{tenant}/users/{extension}/voicemail", status_code=303)
