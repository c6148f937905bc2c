"""The FastAPI application: the frame (errors, auth) and every router."""

from __future__ import annotations

from fastapi import FastAPI

from softswitch import __version__
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
)
from softswitch.api.context import ApiContext
from softswitch.api.errors import install_error_handlers
from softswitch.api.metrics import SwitchMetrics

__all__ = ["create_app"]

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
    routes_events.router,
    metrics.router,
)


def create_app(ctx: ApiContext, switch_metrics: SwitchMetrics) -> FastAPI:
    """The admin API over one running switch (OpenAPI 3.1 at /openapi.json, docs at /docs)."""
    app = FastAPI(
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
    app.state.metrics = switch_metrics
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
