"""Disaster plans: the list with each plan's status, execute and revert after a
confirmation page (the guides' "are you sure?": a plan forwards live numbers)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from softswitch.api import routes_routing
from softswitch.api.roles import Area
from softswitch.portal.frame import LIST_LIMIT, check_csrf, render, signed_in, tenant_scope

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Action = Literal["execute", "revert"]


@router.get("/t/{tenant}/disaster-plans", response_class=HTMLResponse)
async def plans(request: Request, tenant: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "r")
    found = await routes_routing.disaster_plans(scope, cursor=None, limit=LIST_LIMIT)
    may_change = session.principal.may(Area.DISASTER_PLANS, "u")
    return render(
        request, session, "disaster_plans.html", tenant, plans=found.items, may_change=may_change
    )


@router.get("/t/{tenant}/disaster-plans/{name}/{action}", response_class=HTMLResponse)
async def confirm(request: Request, tenant: str, name: str, action: Action) -> HTMLResponse:
    """The confirmation page: what the plan will do, and the button that does it."""
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "u")
    plan = await routes_routing.disaster_plan(name, Response(), scope)
    return render(request, session, "disaster_confirm.html", tenant, plan=plan, action=action)


@router.post("/t/{tenant}/disaster-plans/{name}/{action}", response_model=None)
async def change(
    request: Request, tenant: str, name: str, action: Action, csrf: str = Form("")
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "u")
    operation = routes_routing.execute if action == "execute" else routes_routing.revert
    await operation(name, request, Response(), scope)
    return RedirectResponse(f"/t/{tenant}/disaster-plans", status_code=303)
