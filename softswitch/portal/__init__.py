"""The web portal: server-rendered pages over the admin API's operations and roles.

Pages are Jinja2 templates served by FastAPI routes in the API process, mounted at ``/``;
a little of our own JavaScript (``static/portal.js``) refreshes live data in place. Every
page acts through the API's own dependencies and route functions, so the portal has no
permission system of its own: what a login may not do through ``/v1`` it may not do here.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from softswitch.api.deps import context
from softswitch.api.errors import ApiError
from softswitch.portal import (
    admins,
    calls,
    conferences,
    dashboard,
    disaster,
    explain,
    history,
    lists,
    moh,
    numbers,
    pages,
    queues,
    rules,
    selfcare,
    timeframes,
    users,
)
from softswitch.portal.frame import ASSETS, HERE, SignIn, render
from softswitch.portal.session import session_of

__all__ = ["ASSETS", "ROUTERS", "STORE_ROUTERS", "mount"]

# Pages that read or drive the live switch: the API runs their bodies on the switch's loop.
ROUTERS = (
    pages.router,
    disaster.router,
    dashboard.router,
    explain.router,
    calls.router,
    conferences.router,
    lists.router,
    queues.router,
    moh.router,
    users.router,
    rules.router,
    timeframes.router,
    numbers.router,
    admins.router,
    selfcare.router,
)


# Pages that need only the Store (call history over a million calls): on the API's loop,
# like the API's own history endpoints, so a long query never delays the switch.
STORE_ROUTERS = (history.router,)


def mount(app: FastAPI) -> None:
    """Add the portal's pages at ``/`` and its assets at ``ASSETS`` to the API's app."""
    for router in (*ROUTERS, *STORE_ROUTERS):
        app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=HERE / "static"), name="portal-assets")

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
        return render(request, session, "error.html", tenant, exc.status, error=exc.message)

    app.add_exception_handler(SignIn, sign_in)
    app.add_exception_handler(ApiError, refused)


def _is_page(request: Request) -> bool:
    path = request.url.path
    if path.endswith(".json"):
        return False
    return path in ("/", "/tenants", "/login", "/logout") or path.startswith("/t/")
