"""Live operations of one tenant: registrations, calls (hang up, monitor), conferences."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from softswitch.api.deps import TenantScope, scoped
from softswitch.api.errors import COMMON_ERRORS, ApiError, ErrorBody, not_found
from softswitch.api.etag import etag_of, with_etag
from softswitch.api.live import CallRow, LiveError
from softswitch.api.paging import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    bad_cursor,
    decode_cursor,
    encode_cursor,
    page_of,
)
from softswitch.api.roles import Area
from softswitch.apps.conference import ConferenceInfo

__all__ = ["router"]

router = APIRouter(prefix="/v1/tenants/{tenant}", responses=COMMON_ERRORS)
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "the object is not in a state for this"}
}


# -- registrations ----------------------------------------------------------------------------


class Registration(BaseModel):
    aor: str
    extension: str
    contact: str
    expires_in: int
    transport: str
    received: str | None = Field(description="where the REGISTER came from (NAT)")
    device: str | None = Field(description="the phone's User-Agent")
    reachable: bool | None = Field(description="answer to OPTIONS pings; null: not pinged")
    registered_at: float


@router.get("/registrations", response_model=Page[Registration], tags=["registrations"])
async def registrations(
    scope: Annotated[TenantScope, Depends(scoped(Area.REGISTRATIONS, "r"))],
    extension: Annotated[str | None, Query(max_length=32)] = None,
    reachable: bool | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[Registration]:
    """Registered devices of the tenant, by extension."""
    tenant = scope.tenant
    now = time.time()
    # The switch pages the tenant's AORs in extension order (softswitch.api.registrations)
    # and sends only the page; the response models are made here.
    found = await scope.ctx.live.registrations(
        tenant.name, now, scope.extensions, extension, reachable, _after(cursor), limit
    )
    return Page[Registration](
        total=found.total,
        next_cursor=encode_cursor(list(found.next_key)) if found.next_key else None,
        items=[
            Registration(
                aor=b.aor,
                extension=ext,
                contact=b.contact,
                expires_in=max(0, int(b.expires_at - now)),
                transport=b.transport,
                received=b.received,
                device=b.user_agent,
                reachable=b.reachable,
                registered_at=b.registered_at,
            )
            for ext, b in found.rows
        ],
    )


def _after(cursor: str | None) -> tuple[str, str] | None:
    """The key (extension, contact) a registrations cursor holds."""
    key = decode_cursor(cursor)
    if key is None:
        return None
    if isinstance(key, list) and len(key) == 2 and all(isinstance(v, str) for v in key):
        return (key[0], key[1])
    raise bad_cursor()


# -- live calls -------------------------------------------------------------------------------


class LiveLeg(BaseModel):
    target: str
    contact: str
    state: str
    status: int
    started: float
    answered: bool


class LiveCall(BaseModel):
    id: str
    state: Literal["routing", "answered", "ended"]
    direction: str
    caller_number: str
    caller_name: str
    dialled: str
    destination: str
    callee: str
    trunk: str
    started_at: float
    answered_at: float | None
    duration: float = Field(description="seconds since the call started")
    talk_time: float = Field(description="seconds since it was answered (0 before)")
    legs: list[LiveLeg]


def _live(call: CallRow, now: float) -> LiveCall:
    return LiveCall(
        id=call.id,
        state=call.state,  # type: ignore[arg-type]  # the switch's CallState values
        direction=call.direction,
        caller_number=call.caller_number,
        caller_name=call.caller_name,
        dialled=call.dialled,
        destination=call.destination,
        callee=call.callee,
        trunk=call.trunk,
        started_at=call.started_at,
        answered_at=call.answered_at,
        duration=round(max(0.0, now - call.started_at), 3),
        talk_time=round(max(0.0, now - call.answered_at), 3) if call.answered_at else 0.0,
        legs=[
            LiveLeg(
                target=leg.target,
                contact=leg.contact,
                state=leg.state,
                status=leg.status,
                started=leg.started,
                answered=leg.answered,
            )
            for leg in call.legs
        ],
    )


async def _calls(scope: TenantScope) -> list[CallRow]:
    """The tenant's calls the caller sees."""
    return await scope.ctx.live.calls(scope.tenant.name, scope.extensions)


async def _call(scope: TenantScope, call_id: str) -> CallRow:
    for call in await _calls(scope):
        if call.id == call_id:
            return call
    raise not_found(f"call {call_id!r}")


def refusal(exc: LiveError) -> ApiError:
    """A refusal of the switch as the API's answer."""
    if exc.code == "not_found":
        return ApiError(404, "not_found", exc.message)
    return ApiError(409, exc.code, exc.message)


CallId = Annotated[str, Path(max_length=128)]


@router.get("/calls", response_model=Page[LiveCall], tags=["calls"])
async def live_calls(
    scope: Annotated[TenantScope, Depends(scoped(Area.CALLS, "r"))],
    state: Literal["routing", "answered"] | None = None,
    extension: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[LiveCall]:
    """Calls in progress, oldest first, with their legs and duration."""
    now = time.time()
    calls = [
        _live(call, now)
        for call in sorted(await _calls(scope), key=lambda c: (c.started_at, c.id))
        if (state is None or call.state == state)
        and (extension is None or extension in (call.caller_number, call.dialled, call.callee))
    ]
    return page_of(calls, cursor, limit)


@router.get("/calls/{call_id}", response_model=LiveCall, tags=["calls"])
async def live_call(
    call_id: CallId,
    response: Response,
    scope: Annotated[TenantScope, Depends(scoped(Area.CALLS, "r"))],
) -> LiveCall:
    live = _live(await _call(scope, call_id), time.time())
    with_etag(response, etag_of({"id": live.id, "state": live.state}))
    return live


@router.delete("/calls/{call_id}", status_code=202, response_class=Response, tags=["calls"])
async def hang_up(
    call_id: CallId,
    scope: Annotated[TenantScope, Depends(scoped(Area.CALLS, "d"))],
) -> Response:
    """Hang up a call: an answered call gets BYE on both sides; a call still ringing is
    ended as if the caller had cancelled (487 to the caller, its legs cancelled)."""
    await _call(scope, call_id)  # 404 unless the caller sees it
    try:
        await scope.ctx.live.hang_up(call_id)
    except LiveError as exc:
        raise refusal(exc) from None
    return Response(status_code=202)


class MonitorIn(BaseModel):
    supervisor: str = Field(max_length=32, description="the extension whose phone rings")
    mode: Literal["listen", "whisper", "barge"] = "listen"


@router.post(
    "/calls/{call_id}/monitor",
    status_code=202,
    response_class=Response,
    tags=["calls"],
    responses=_CONFLICT,
)
async def monitor(
    call_id: CallId,
    body: MonitorIn,
    scope: Annotated[TenantScope, Depends(scoped(Area.MONITORING, "c"))],
) -> Response:
    """Ring the supervisor's phone; once answered they listen, whisper to the agent or
    barge in (keys 1/2/3 switch, # ends)."""
    await _call(scope, call_id)  # 404 unless the caller sees it
    if not scope.sees_extension(body.supervisor):
        raise ApiError(
            422,
            "validation_error",
            "body.supervisor: not an extension you manage",
            field="body.supervisor",
        )
    try:
        await scope.ctx.live.monitor(call_id, body.supervisor, body.mode)
    except LiveError as exc:
        raise refusal(exc) from None
    return Response(status_code=202)


# -- conferences ------------------------------------------------------------------------------


class Participant(BaseModel):
    id: str
    name: str
    number: str
    leader: bool
    muted: bool
    talking: bool
    joined_at: float


class Conference(BaseModel):
    name: str
    extension: str
    active: bool
    running: bool = Field(description="false while waiting for a leader or the minimum")
    started_at: float | None
    max_participants: int | None
    participants: list[Participant]


async def _conferences(scope: TenantScope) -> list[Conference]:
    infos = await scope.ctx.live.conferences(scope.tenant.name)
    active: dict[str, ConferenceInfo] = {c.name: c for c in infos or ()}
    out = []
    for bridge in scope.tenant.conferences:
        info = active.get(bridge.name)
        out.append(
            Conference(
                name=bridge.name,
                extension=bridge.extension,
                active=info is not None,
                running=info.running if info is not None else False,
                started_at=info.started_at if info is not None else None,
                max_participants=bridge.max_participants,
                participants=[
                    Participant(
                        id=p.id,
                        name=p.name,
                        number=p.number,
                        leader=p.leader,
                        muted=p.muted,
                        talking=p.talking,
                        joined_at=p.joined_at,
                    )
                    for p in (info.participants if info is not None else ())
                ],
            )
        )
    return out


async def _conference(scope: TenantScope, name: str) -> Conference:
    for conference in await _conferences(scope):
        if conference.name == name:
            return conference
    raise not_found(f"conference {name!r}")


ConferenceName = Annotated[str, Path(max_length=64)]
ParticipantId = Annotated[str, Path(max_length=128)]


@router.get("/conferences", response_model=Page[Conference], tags=["conferences"])
async def conferences(
    scope: Annotated[TenantScope, Depends(scoped(Area.CONFERENCES, "r"))],
    active: bool | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[Conference]:
    """The tenant's conference bridges and who is in them now."""
    items = [c for c in await _conferences(scope) if active is None or c.active is active]
    return page_of(items, cursor, limit)


@router.get("/conferences/{name}", response_model=Conference, tags=["conferences"])
async def conference(
    name: ConferenceName,
    response: Response,
    scope: Annotated[TenantScope, Depends(scoped(Area.CONFERENCES, "r"))],
) -> Conference:
    found = await _conference(scope, name)
    with_etag(response, etag_of(found))
    return found


class InviteIn(BaseModel):
    number: str = Field(min_length=1, max_length=32, pattern=r"^\+?[0-9*#]+$")


@router.post(
    "/conferences/{name}/participants",
    status_code=202,
    response_class=Response,
    tags=["conferences"],
    responses=_CONFLICT,
)
async def invite(
    name: ConferenceName,
    body: InviteIn,
    scope: Annotated[TenantScope, Depends(scoped(Area.CONFERENCES, "c"))],
) -> Response:
    """Dial a number and bring it into the conference once answered (no PIN asked)."""
    await _conference(scope, name)
    try:
        await scope.ctx.live.invite(scope.tenant.name, name, body.number)
    except LiveError as exc:
        raise refusal(exc) from None
    return Response(status_code=202)


class ParticipantPatch(BaseModel):
    muted: bool


async def _participant(scope: TenantScope, name: str, participant: str) -> None:
    conf = await _conference(scope, name)
    if not any(p.id == participant for p in conf.participants):
        raise not_found(f"participant {participant!r}")


@router.patch(
    "/conferences/{name}/participants/{participant}",
    response_model=Participant,
    tags=["conferences"],
    responses=_CONFLICT,
)
async def mute(
    name: ConferenceName,
    participant: ParticipantId,
    body: ParticipantPatch,
    scope: Annotated[TenantScope, Depends(scoped(Area.CONFERENCES, "u"))],
) -> Participant:
    """Mute or unmute a participant."""
    await _participant(scope, name, participant)
    try:
        await scope.ctx.live.mute(scope.tenant.name, name, participant, body.muted)
    except LiveError as exc:
        raise refusal(exc) from None
    conf = await _conference(scope, name)
    found = next(p for p in conf.participants if p.id == participant)
    return found


@router.delete(
    "/conferences/{name}/participants/{participant}",
    status_code=202,
    response_class=Response,
    tags=["conferences"],
    responses=_CONFLICT,
)
async def kick(
    name: ConferenceName,
    participant: ParticipantId,
    scope: Annotated[TenantScope, Depends(scoped(Area.CONFERENCES, "u"))],
) -> Response:
    """Remove a participant and hang up their call."""
    await _participant(scope, name, participant)
    try:
        await scope.ctx.live.kick(scope.tenant.name, name, participant)
    except LiveError as exc:
        raise refusal(exc) from None
    return Response(status_code=202)


class PastParticipant(BaseModel):
    id: str
    name: str
    number: str
    leader: bool
    joined_at: float
    left_at: float
    reason: str


class ConferenceReportOut(BaseModel):
    name: str
    extension: str
    started_at: float
    ended_at: float
    participants: list[PastParticipant]


@router.get("/conference-reports", response_model=Page[ConferenceReportOut], tags=["conferences"])
async def conference_reports(
    scope: Annotated[TenantScope, Depends(scoped(Area.CONFERENCES, "r"))],
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[ConferenceReportOut]:
    """Past conferences of the tenant (kept in memory since the switch started), newest
    first."""
    reports = await scope.ctx.live.conference_history(scope.tenant.name)
    items = [
        ConferenceReportOut(
            name=r.name,
            extension=r.extension,
            started_at=r.started_at,
            ended_at=r.ended_at,
            participants=[
                PastParticipant(
                    id=p.id,
                    name=p.name,
                    number=p.number,
                    leader=p.leader,
                    joined_at=p.joined_at,
                    left_at=p.left_at,
                    reason=p.reason,
                )
                for p in r.participants
            ],
        )
        for r in reversed(reports)
    ]
    return page_of(items, cursor, limit)
