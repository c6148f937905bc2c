"""The call queue application: a caller waits with music (or ringback) while the tenant's
queue owner offers them to agents, and is bridged to the agent who answers.

Each offer (one agent, or a ring-all / cascade round) rings the agents' registered phones
through ``AppCall.connect``; the answer bridges the caller and the application's part of
the call ends, while the owner learns the conversation's end from its CDR (wrap-up
follows). Feature codes let agents log in (``*71``), log out (``*72``) and take a break
(``*73``) from their own phones. ``QueueService`` registers the ``queue`` application
kind and keeps one owner per tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import structlog

from config.models import Tenant
from config.queues import AGENT_FEATURE_CODES, CallQueue, QueueAudio
from media.control import HoldSource
from media.moh import load_hold_music
from routing.plan import Node, Ring, Target, TargetKind
from softswitch.apps import prompts
from softswitch.apps.attendant import TenantVoice
from softswitch.apps.session import play
from softswitch.calls.apps import AppCall, Application, Connected, ConnectOutcome
from softswitch.calls.registry import ApplicationRegistry
from softswitch.prompts import PromptError, PromptLibrary
from softswitch.queues.engine import Exit, Offer
from softswitch.queues.owner import CallerInbox, QueueOwner
from storage import Store
from storage.cdr import Cdr

__all__ = ["QueueService", "queue_app"]

log = structlog.get_logger(__name__)


def _offer_node(offers: list[Offer]) -> Node:
    """One ring node for the offers made together (cascade: each after its delay)."""
    timeout = max(1, round(offers[0].timeout))
    targets = tuple(Target(TargetKind.USER_DEVICES, o.agent, delay=round(o.delay)) for o in offers)
    return Ring(targets, timeout)


def _failure(result: Connected) -> str:
    if result.outcome is ConnectOutcome.BUSY:
        return "busy"
    if result.outcome is ConnectOutcome.NO_ANSWER:
        return "no_answer"
    return "unreachable" if result.status in (404, 480) else "rejected"


async def _next(
    session: AppCall, inbox: CallerInbox, keys: bool, announce_in: float | None
) -> tuple[str, Any]:
    """What happens next for the waiting caller: ("actions", batch), ("key", digit),
    ("announce", None) or ("hangup", None)."""
    waiters: dict[asyncio.Future[Any], str] = {
        asyncio.ensure_future(inbox.actions.get()): "actions",
        asyncio.ensure_future(session.ended.wait()): "hangup",
    }
    if keys:
        waiters[asyncio.ensure_future(session.endpoint.digits.get())] = "key"
    if announce_in is not None:
        waiters[asyncio.ensure_future(asyncio.sleep(max(0.0, announce_in)))] = "announce"
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
    # An action or a key already taken off its queue must not be lost.
    got = {kind: w.result() for w, kind in waiters.items() if w in done and not w.cancelled()}
    if "actions" in got:
        batch = [got["actions"]]
        while not inbox.actions.empty():
            batch.append(inbox.actions.get_nowait())
        if "key" in got:
            session.endpoint.digits.put_nowait(got["key"])  # seen on the next round
        return "actions", batch
    if "hangup" in got:
        return "hangup", None
    if "key" in got:
        return "key", got["key"].digit
    return "announce", None


def _announcement(place: int, wait: float | None) -> str:
    text = f"You are caller number {place} in the queue."
    if wait is not None:
        minutes = max(1, round(wait / 60))
        text += f" Your expected wait is about {minutes} minute{'s' if minutes > 1 else ''}."
    return text


async def _leave(session: AppCall, exit_: Exit, queue: CallQueue) -> None:
    if exit_.target is None:
        await session.hangup()
        return
    if exit_.reason == "voicemail":
        result = await session.connect(Target(TargetKind.VOICEMAIL, exit_.target))
    else:
        result = await session.connect(exit_.target)
    if not result.answered and not session.ended.is_set():
        log.info("queue_exit_failed", call=session.call_id, queue=queue.name, to=exit_.target)
        await session.hangup()


async def queue_app(
    session: AppCall,
    queue: CallQueue,
    owner: QueueOwner,
    music: HoldSource,
    voice: TenantVoice | None = None,
) -> None:
    """Hold the caller in `queue` until an agent answers, they hang up, press an exit key
    or are sent elsewhere; announce their position every ``announce_every`` seconds."""
    inbox = owner.join(session.call_id, session.sip_call_id, queue.name)
    loop = asyncio.get_running_loop()
    session.engine.play(session.endpoint, music, loop=True)
    every = queue.announce_every if voice is not None else None
    next_announcement = loop.time() + every if every is not None else None
    try:
        while True:
            wait = None if next_announcement is None else next_announcement - loop.time()
            kind, value = await _next(session, inbox, bool(queue.exit_keys), wait)
            if kind == "hangup":
                owner.left(session.call_id)
                return
            if kind == "key":
                target = queue.exit_keys.get(value)
                if target is not None:
                    owner.exited(session.call_id, "exit_key", target)  # the Exit follows
                continue
            if kind == "announce":
                assert every is not None and voice is not None
                next_announcement = loop.time() + every
                place = owner.position(session.call_id)
                if place is not None:
                    try:
                        speech = await voice.text(_announcement(*place))
                    except PromptError as error:
                        log.warning("queue_announcement_failed", queue=queue.name, error=str(error))
                        continue
                    await play(session, speech, limit=30)
                    if not session.ended.is_set():
                        session.engine.play(session.endpoint, music, loop=True)
                continue
            batch = value
            exits = [a for a in batch if isinstance(a, Exit)]
            if exits:
                await _leave(session, exits[0], queue)
                return
            offers = [a for a in batch if isinstance(a, Offer)]
            if not offers:
                continue  # Cancel / Connect: the ringing side has said so already
            result = await session.connect(
                _offer_node(offers), timeout=offers[0].timeout + 1, ringback=music
            )
            if result.answered:
                agent = result.answered_by or offers[0].agent
                owner.answered(session.call_id, agent, session.call_id)
                return
            if session.ended.is_set() or session.endpoint.released:
                owner.left(session.call_id)
                return
            reason = _failure(result)
            for offer in offers:
                owner.failed(session.call_id, offer.agent, reason)
            session.engine.play(session.endpoint, music, loop=True)
    finally:
        owner.forget(session.call_id)


async def _feature(session: AppCall, owner: QueueOwner, agent: str, status: str) -> None:
    owner.set_status(agent, status, "feature code" if status == "on_break" else "")
    playback = session.engine.play(
        session.endpoint, prompts.JOIN if status == "available" else prompts.LEAVE
    )
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(playback.wait(), 3.0)
    await session.hangup()


class QueueService:
    """The queues of every tenant: one owner each, the ``queue`` application, the agents'
    feature codes, and the CDRs that end agents' conversations."""

    def __init__(
        self,
        registry: ApplicationRegistry[Any],
        tenants: Mapping[str, Tenant],
        store: Store,
        library: PromptLibrary | None = None,
        default_music: HoldSource | None = None,
    ) -> None:
        self.tenants = tenants  # the call layer's, changed in place by provisioning
        self.store = store
        self.library = library
        self.default_music = default_music
        self.owners: dict[str, QueueOwner] = {}
        self._configs: dict[str, tuple[CallQueue, ...]] = {}
        registry.register(TargetKind.QUEUE, self.application)
        registry.register(TargetKind.QUEUE_AGENT, self.feature)

    async def start(self) -> None:
        for tenant in self.tenants.values():
            await self._owner(tenant)

    async def stop(self) -> None:
        for owner in self.owners.values():
            await owner.stop()
        self.owners.clear()

    async def _owner(self, tenant: Tenant) -> QueueOwner | None:
        owner = self.owners.get(tenant.name)
        if owner is None and tenant.queues:
            owner = self.owners[tenant.name] = QueueOwner(tenant.name, tenant.queues, self.store)
            self._configs[tenant.name] = tuple(tenant.queues)
            await owner.start()
        return owner

    def _live_owner(self, tenant: Tenant) -> QueueOwner | None:
        """The tenant's owner, told of changed queue settings (provisioning applies them
        to the call layer's tenants in place)."""
        owner = self.owners.get(tenant.name)
        if owner is None:
            if not tenant.queues:
                return None
            owner = self.owners[tenant.name] = QueueOwner(tenant.name, tenant.queues, self.store)
            self._configs[tenant.name] = tuple(tenant.queues)
            asyncio.get_running_loop().create_task(owner.start())
            return owner
        if self._configs.get(tenant.name) != tuple(tenant.queues):
            self._configs[tenant.name] = tuple(tenant.queues)
            owner.reconfigure(tenant.queues)
        return owner

    def _music(self, tenant: Tenant, queue: CallQueue) -> HoldSource:
        if queue.audio is QueueAudio.RINGBACK:
            return prompts.RINGBACK
        playlist = queue.moh or tenant.moh
        if playlist is not None:
            try:
                return load_hold_music(playlist)
            except (OSError, ValueError) as error:
                log.warning("queue_music_unavailable", queue=queue.name, error=str(error))
        return self.default_music if self.default_music is not None else prompts.HOLD_MUSIC

    def application(self, call: Any, target: Target) -> Application | None:
        """The queue of extension ``target.ref`` (None: no such queue, the caller hears 480)."""
        tenant = self.tenants.get(call.tenant)
        queue = (
            next((q for q in tenant.queues if q.extension == target.ref), None) if tenant else None
        )
        if tenant is None or queue is None:
            log.info("queue_unknown", call=call.id, extension=target.ref)
            return None
        owner = self._live_owner(tenant)
        if owner is None:
            return None
        music = self._music(tenant, queue)
        voice = TenantVoice(self.library, tenant.name, None) if self.library else None

        async def run(session: AppCall) -> None:
            await queue_app(session, queue, owner, music, voice)

        return run

    def feature(self, call: Any, target: Target) -> Application | None:
        """An agent dialling a queue feature code from their own phone (routing's
        QUEUE_AGENT node: ``target.ref`` is the status to set)."""
        status = target.ref
        tenant = self.tenants.get(call.tenant)
        if status not in AGENT_FEATURE_CODES.values() or tenant is None or call.from_trunk:
            return None
        if not any(q.agent(call.caller_number) for q in tenant.queues):
            return None
        owner = self._live_owner(tenant)
        if owner is None:
            return None
        agent = call.caller_number

        async def run(session: AppCall) -> None:
            await _feature(session, owner, agent, status)

        return run

    def on_cdr(self, cdr: Cdr) -> None:
        owner = self.owners.get(cdr.tenant)
        if owner is not None:
            owner.on_cdr(cdr)
