"""Listen, whisper and barge from the live-calls page (guides 002 and 004): the API's
monitor operation rings the supervisor's phone; once answered they listen, whisper to the
agent or barge in (keys 1/2/3 switch on the phone, # ends). The list itself, its live
refresh and hang-up are the frame's (pages.py)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from softswitch.api import routes_live
from softswitch.api.errors import ApiError
from softswitch.api.roles import Area
from softswitch.portal.frame import check_csrf, signed_in, tenant_scope

__all__ = ["MODES", "router"]

router = APIRouter(include_in_schema=False)

Mode = Literal["listen", "whisper", "barge"]
MODES: tuple[Mode, ...] = ("listen", "whisper", "barge")


@router.post("/t/{tenant}/calls/{call_id}/monitor", response_model=None)
async def monitor(
    request: Request,
    tenant: str,
    call_id: str,
    supervisor: str = Form(""),
    mode: str = Form("listen"),
    csrf: str = Form(""),
) -> Response:
    """Ring ``supervisor``'s phone to listen to, whisper on or barge into the call. From
    portal.js the answer is 202 or the refusal as JSON; from a plain form, back to the page
    with the outcome in its query (the page says it where the buttons are)."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scripted = bool(request.headers.get("x-csrf-token"))
    scope = await tenant_scope(request, session, tenant, Area.MONITORING, "c")
    outcome: dict[str, str] = {"supervisor": supervisor}
    try:
        body = routes_live.MonitorIn(supervisor=supervisor.strip(), mode=mode)  # type: ignore[arg-type]
        if not body.supervisor:
            raise ApiError(422, "validation_error", "give the extension of your phone")
        await routes_live.monitor(call_id, body, scope)
    except ValidationError:
        message = "choose listen, whisper or barge, and your phone's extension"
        outcome["error"] = message
    except ApiError as exc:
        if exc.status in (401, 403, 404) and not scripted:
            raise
        outcome["error"] = exc.message.removeprefix("body.supervisor: ")
    else:
        outcome["ringing"] = f"{mode}: your phone ({supervisor}) rings; answer it to {mode}"
    if scripted:
        status = 202 if "ringing" in outcome else 409
        return JSONResponse(outcome, status_code=status)
    return RedirectResponse(f"/t/{tenant}/calls?{urlencode(outcome)}", status_code=303)
