"""What-if: the routing outcome of a proposed change, before it is applied.

``POST /v1/tenants/{tenant}/what-if`` takes objects to put or delete and numbers to dial,
builds the tenant as it would be (validated by the provisioning service, nothing stored)
and runs the routing engine on both tenants, now and at every time-frame boundary of the
coming days: for each number and instant, where the call goes before and after. Routing is
pure, so this is the engine and ``route explain`` on a tenant that does not run yet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from config.routing import TenantRouting
from routing.engine import CompiledRouting, compile_routing
from routing.explain import explain
from routing.facts import CallFacts
from routing.numbers import clean
from routing.timeframes import CompiledFrame, LocalClock
from softswitch.api.deps import TenantScope, scoped
from softswitch.api.errors import COMMON_ERRORS, ApiError
from softswitch.api.provisioning import refused, service
from softswitch.api.roles import Area
from softswitch.provisioning import KINDS, ObjectChange, ProvisioningError
from softswitch.routing_state import current_routing

__all__ = ["router"]

router = APIRouter(prefix="/v1/tenants/{tenant}", responses=COMMON_ERRORS, tags=["routing"])

STEP = 60  # seconds: time frames are wall-clock minutes (and days)
MAX_INSTANTS = 500


class ProposedObject(BaseModel):
    kind: str = Field(max_length=32, description="a provisioning kind: user, number, ...")
    key: str = Field(default="", max_length=160, description="needed to delete or replace")
    data: dict[str, Any] | None = Field(description="the object's fields; null deletes it")


class WhatIfIn(BaseModel):
    changes: list[ProposedObject] = Field(min_length=1, max_length=200)
    numbers: list[str] = Field(min_length=1, max_length=50, description="numbers dialled")
    caller: str = Field(default="", max_length=64, alias="from", description="who calls")
    start: dt.datetime | None = Field(default=None, description="from when (default: now)")
    days: int = Field(default=7, ge=1, le=14)
    registered: list[str] | None = Field(
        default=None,
        max_length=1000,
        description="extensions with a registered device (default: as registered now)",
    )

    model_config = {"populate_by_name": True}


class Outcome(BaseModel):
    at: dt.datetime
    active_time_frames: list[str]
    before: str = Field(description="where the call goes as configured now")
    after: str = Field(description="where it goes with the change")
    changed: bool


class NumberOutcomes(BaseModel):
    number: str
    changed: bool
    outcomes: list[Outcome]


class WhatIf(BaseModel):
    applied: bool = Field(default=False, description="always false: nothing is stored")
    numbers: list[NumberOutcomes]


@router.post("/what-if", response_model=WhatIf)
async def what_if(
    body: WhatIfIn, scope: Annotated[TenantScope, Depends(scoped(Area.ROUTING, "r"))]
) -> WhatIf:
    """Where each number's calls would go over the coming days (at each time-frame
    boundary) before and after the proposed change, which is not applied."""
    if scope.extensions is not None:
        raise ApiError(403, "forbidden", "not permitted: what-if on the whole tenant")
    changes = []
    for i, change in enumerate(body.changes):
        if change.kind not in KINDS or (change.kind == "tenant" and change.data is None):
            raise ApiError(
                422,
                "validation_error",
                f"body.changes.{i}.kind: one of {', '.join(k for k in KINDS)}",
                field=f"body.changes.{i}.kind",
            )
        changes.append(ObjectChange(scope.tenant.name, change.kind, change.data, change.key))
    try:
        proposed = await service(scope).proposed(changes)
    except ProvisioningError as exc:
        raise refused(exc) from None
    after_tenant = proposed[scope.tenant.name]
    before, _ = await current_routing(scope.ctx.store, scope.tenant)
    after, _ = await current_routing(scope.ctx.store, after_tenant)
    start = body.start or dt.datetime.now(dt.UTC)
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    registered = (
        dict.fromkeys(body.registered, 1)
        if body.registered is not None
        else await scope.ctx.live.registered(scope.tenant.name)
    )
    # CPU work (a minute-by-minute scan of the frames): off the switch's loop.
    return await asyncio.to_thread(
        _outcomes, before, after, body, start, registered, scope.tenant.name
    )


def boundaries(
    frames: Sequence[CompiledFrame], start: dt.datetime, days: int
) -> list[tuple[dt.datetime, list[str]]]:
    """``start`` and every minute within ``days`` at which the set of active time frames
    changes, with the frames active from then on."""
    first = int(start.timestamp()) // STEP * STEP
    found: list[tuple[dt.datetime, list[str]]] = []
    previous: tuple[bool, ...] | None = None
    for t in range(first, first + days * 86400, STEP):
        clock = LocalClock(float(t))
        state = tuple(f.match(clock) is not None for f in frames)
        if state != previous:
            at = start if previous is None else dt.datetime.fromtimestamp(t, dt.UTC)
            found.append((at, [_label(f) for f, on in zip(frames, state, strict=True) if on]))
            previous = state
            if len(found) >= MAX_INSTANTS:
                break
    return found


def _label(frame: CompiledFrame) -> str:
    return frame.name if frame.owner is None else f"{frame.owner}/{frame.name}"


def _path(routing: CompiledRouting, facts: CallFacts) -> str:
    lines = explain(routing, facts)
    last = lines[-1] if lines else ""
    return last.removeprefix("path: ")


def _outcomes(
    before: TenantRouting,
    after: TenantRouting,
    body: WhatIfIn,
    start: dt.datetime,
    registered: dict[str, int],
    tenant: str,
) -> WhatIf:
    old, new = compile_routing(before), compile_routing(after)
    frames: dict[str, CompiledFrame] = {}
    for frame in (*before.time_frames, *after.time_frames):
        compiled = CompiledFrame(frame)
        frames.setdefault(frame.model_dump_json(), compiled)  # the same frame once
    instants = boundaries(list(frames.values()), start, body.days)
    caller = body.caller.strip()
    internal = clean(caller) in after.users if caller else False
    out: list[NumberOutcomes] = []
    for number in body.numbers:
        outcomes = []
        for at, active in instants:
            facts = CallFacts(
                caller=caller or None,
                dialled=number,
                at=at,
                tenant=tenant,
                registered=registered,
                from_trunk=not internal,
            )
            was, will = _path(old, facts), _path(new, facts)
            outcomes.append(
                Outcome(
                    at=at,
                    active_time_frames=sorted(set(active)),
                    before=was,
                    after=will,
                    changed=was != will,
                )
            )
        out.append(
            NumberOutcomes(
                number=number, changed=any(o.changed for o in outcomes), outcomes=outcomes
            )
        )
    return WhatIf(numbers=out)
