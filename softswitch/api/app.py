"""The FastAPI application: the frame (errors, auth) and every router.

The docs pages (/docs: Swagger UI, /redoc: ReDoc) load their scripts and styles from the
switch itself, under ``DOCS_ASSETS``: an admin's browser may have no way to the Internet,
and no page of the switch loads anything from it. FastAPI's own pages fetch them from a CDN;
``fastapi_offline`` builds the same pages over the copies it ships (Swagger UI 5, which
renders OpenAPI 3.1, and ReDoc; see the README's "Admin API" for the licences).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from softswitch import __version__, portal
from softswitch.api import (
    metrics,
    routes_audit,
    routes_events,
    routes_history,
    routes_live,
    routes_logins,
    routes_provisioning,
    routes_provisioning_customers,
    routes_provisioning_ops,
    routes_provisioning_whatif,
    routes_routing,
    routes_voicemail,
)
from softswitch.api.context import ApiContext
from softswitch.api.errors import install_error_handlers

__all__ = ["DOCS_ASSETS", "create_app"]

DOCS_ASSETS = "/docs-assets"  # where the docs pages' scripts, styles and icon are served

ROUTERS = (
    routes_logins.router,
    routes_routing.router,
    routes_provisioning_customers.router,
    routes_provisioning_ops.router,
    routes_provisioning.router,
    routes_provisioning_whatif.router,
    routes_audit.router,
    routes_live.router,
    routes_history.router,
    routes_voicemail.router,
    routes_events.router,
    metrics.router,
)


def create_app(ctx: ApiContext) -> FastAPI:
    """The admin API over one running switch (OpenAPI 3.1 at /openapi.json, docs at /docs)."""
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        # No "valid" badge fetched from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
        title="softswitch admin API",
        version=__version__,
        description=(
            "Operations of a running softswitch: logins and tokens, registrations, live "
            "calls and monitoring, conferences, call history and dashboards, route "
            "explain, disaster plans, events (WebSocket /v1/events) and /metrics. "
            "Authenticate with `Authorization: Bearer <token>` (POST /v1/login, or a "
            "machine token from `softswitch token create`)."
        ),
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    portal.mount(app)  # the web portal's pages at /, over the same operations
    return app
