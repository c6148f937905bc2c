"""Tenants visible to the caller, ``route explain`` and disaster plans (list and status,
execute, revert, history)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from config.models import Tenant
from routing.disaster import DisasterError
from routing.explain import explain
from routing.facts import CallFacts
from routing.numbers import clean
from softswitch.api.deps import TenantScope, allowed, context, scoped
from softswitch.api.errors import COMMON_ERRORS, ApiError, ErrorBody, not_found
from softswitch.api.etag import check_if_match, etag_of, with_etag
from softswitch.api.events import config_changed
from softswitch.api.paging import DEFAULT_LIMIT, Cursor, Limit, Page, page_of
from softswitch.api.principal import Principal
from softswitch.api.roles import Area
from softswitch.routing_state import current_routing, set_disaster_plan

__all__ = ["router"]

router = APIRouter(responses=COMMON_ERRORS)


class TenantOut(BaseModel):
    name: str
    domain: str
    users: int
    max_calls: int | None
    max_calls_per_second: float | None


def _tenant_out(t: Tenant) -> TenantOut:
    return TenantOut(
        name=t.name,
        domain=t.domain,
        users=len(t.users),
        max_calls=t.max_calls,
        max_calls_per_second=t.max_calls_per_second,
    )


@router.get("/v1/tenants", response_model=Page[TenantOut], tags=["tenants"])
async def tenants(
    request: Request,
    principal: Annotated[Principal, Depends(allowed(Area.TENANTS, "r"))],
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[TenantOut]:
    """The tenants the caller reaches, by name."""
    found = context(request).tenants()
    items = [_tenant_out(found[n]) for n in sorted(principal.visible_tenants(found))]
    return page_of(items, cursor, limit)


@router.get("/v1/tenants/{tenant}", response_model=TenantOut, tags=["tenants"])
async def tenant(
    response: Response, scope: Annotated[TenantScope, Depends(scoped(Area.TENANTS, "r"))]
) -> TenantOut:
    out = _tenant_out(scope.tenant)
    with_etag(response, etag_of(out))
    return out


# -- route explain ----------------------------------------------------------------------------


class ExplainIn(BaseModel):
    to: str = Field(min_length=1, max_length=64, description="the number or extension dialled")
    caller: str = Field(default="", max_length=64, alias="from", description="who calls")
    at: dt.datetime | None = Field(default=None, description="when (default: now)")
    registered: list[str] | None = Field(
        default=None,
        max_length=1000,
        description="extensions with a registered device (default: as registered now)",
    )
    busy: list[str] = Field(default_factory=list, max_length=1000)
    spam: bool = False

    model_config = {"populate_by_name": True}


class Explanation(BaseModel):
    internal: bool = Field(description="the caller is an extension of the tenant")
    enabled_disaster_plans: list[str]
    warnings: list[str]
    decisions: list[str] = Field(description="the decision path, then the plan")


@router.post("/v1/tenants/{tenant}/route-explain", response_model=Explanation, tags=["routing"])
async def route_explain(
    body: ExplainIn, scope: Annotated[TenantScope, Depends(scoped(Area.ROUTING, "r"))]
) -> Explanation:
    """Why a call would ring where it rings ("why did my phone not ring?")."""
    tenant = scope.tenant
    if not scope.sees_extension(clean(body.to)):
        # a basic user or site manager explains calls to its own extensions only
        raise ApiError(403, "forbidden", "not permitted: explain calls to other extensions")
    routing, problems = await current_routing(scope.ctx.store, tenant)
    if body.registered is None:
        registered = await scope.ctx.live.registered(tenant.name)
    else:
        registered = dict.fromkeys(body.registered, 1)
    at = body.at or dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    caller = body.caller.strip()
    internal = clean(caller) in tenant.routing.users if caller else False
    facts = CallFacts(
        caller=caller or None,
        dialled=body.to,
        at=at,
        tenant=tenant.name,
        registered=registered,
        busy=frozenset(body.busy),
        spam=body.spam,
        from_trunk=not internal,
    )
    return Explanation(
        internal=internal,
        enabled_disaster_plans=[p.name for p in routing.disaster_plans if p.enabled],
        warnings=list(problems),
        decisions=explain(routing, facts),
    )


# -- disaster plans ---------------------------------------------------------------------------


class DisasterNumberOut(BaseModel):
    number: str
    forward_to: str


class DisasterEventOut(BaseModel):
    action: str
    by: str
    at: dt.datetime


class DisasterPlanOut(BaseModel):
    name: str
    region: str
    number_type: str
    status: str = Field(description="saved, enabled or disabled")
    numbers: list[DisasterNumberOut]
    last_event: DisasterEventOut | None


async def _plans(scope: TenantScope) -> list[DisasterPlanOut]:
    routing, _ = await current_routing(scope.ctx.store, scope.tenant)
    return [
        DisasterPlanOut(
            name=p.name,
            region=p.region,
            number_type=p.number_type.value,
            status=p.status.value,
            numbers=[
                DisasterNumberOut(number=n.number, forward_to=n.forward_to) for n in p.numbers
            ],
            last_event=(
                DisasterEventOut(
                    action=p.history[-1].action, by=p.history[-1].by, at=p.history[-1].at
                )
                if p.history
                else None
            ),
        )
        for p in routing.disaster_plans
    ]


async def _plan(scope: TenantScope, name: str) -> DisasterPlanOut:
    for plan in await _plans(scope):
        if plan.name == name:
            return plan
    raise not_found(f"disaster plan {name!r}")


PlanName = Annotated[str, Path(max_length=80)]


@router.get(
    "/v1/tenants/{tenant}/disaster-plans",
    response_model=Page[DisasterPlanOut],
    tags=["disaster plans"],
)
async def disaster_plans(
    scope: Annotated[TenantScope, Depends(scoped(Area.DISASTER_PLANS, "r"))],
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[DisasterPlanOut]:
    """The tenant's disaster plans with their status."""
    return page_of(await _plans(scope), cursor, limit)


@router.get(
    "/v1/tenants/{tenant}/disaster-plans/{name}",
    response_model=DisasterPlanOut,
    tags=["disaster plans"],
)
async def disaster_plan(
    name: PlanName,
    response: Response,
    scope: Annotated[TenantScope, Depends(scoped(Area.DISASTER_PLANS, "r"))],
) -> DisasterPlanOut:
    plan = await _plan(scope, name)
    with_etag(response, etag_of(plan))
    return plan


async def _change(
    request: Request, response: Response, scope: TenantScope, name: str, enable: bool
) -> DisasterPlanOut:
    check_if_match(request, etag_of(await _plan(scope, name)))
    try:
        await set_disaster_plan(
            scope.ctx.store, scope.tenant, name, enable, f"api:{scope.principal.login}"
        )
    except DisasterError as exc:
        raise ApiError(409, "refused", str(exc)) from None
    # the switch applies it within its refresh interval; this node at once
    await scope.ctx.live.refresh_disaster_plans()
    scope.ctx.events.publish(
        config_changed(scope.tenant.name, "disaster_plan", name, enabled=enable)
    )
    plan = await _plan(scope, name)
    with_etag(response, etag_of(plan))
    return plan


_CHANGE: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "refused (already so, no numbers, conflict)"},
    412: {"model": ErrorBody, "description": "If-Match does not match"},
}


@router.post(
    "/v1/tenants/{tenant}/disaster-plans/{name}/execute",
    response_model=DisasterPlanOut,
    tags=["disaster plans"],
    responses=_CHANGE,
)
async def execute(
    name: PlanName,
    request: Request,
    response: Response,
    scope: Annotated[TenantScope, Depends(scoped(Area.DISASTER_PLANS, "u"))],
) -> DisasterPlanOut:
    """Enable the plan: its numbers forward to their outside numbers (within 1 s)."""
    return await _change(request, response, scope, name, True)


@router.post(
    "/v1/tenants/{tenant}/disaster-plans/{name}/revert",
    response_model=DisasterPlanOut,
    tags=["disaster plans"],
    responses=_CHANGE,
)
async def revert(
    name: PlanName,
    request: Request,
    response: Response,
    scope: Annotated[TenantScope, Depends(scoped(Area.DISASTER_PLANS, "u"))],
) -> DisasterPlanOut:
    """Disable the plan: its numbers ring as usual again."""
    return await _change(request, response, scope, name, False)


class DisasterHistoryItem(BaseModel):
    id: int
    plan: str
    action: str
    by: str
    at: float


@router.get(
    "/v1/tenants/{tenant}/disaster-events",
    response_model=Page[DisasterHistoryItem],
    tags=["disaster plans"],
)
async def disaster_history(
    scope: Annotated[TenantScope, Depends(scoped(Area.DISASTER_PLANS, "r"))],
    plan: Annotated[str | None, Query(max_length=80)] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[DisasterHistoryItem]:
    """Executes and reverts, newest first (the last 10,000)."""
    events = await scope.ctx.store.load_disaster_events(scope.tenant.name, plan, limit=10_000)
    items = [
        DisasterHistoryItem(id=e.id, plan=e.plan, action=e.action, by=e.changed_by, at=e.changed_at)
        for e in reversed(events)
    ]
    return page_of(items, cursor, limit)
