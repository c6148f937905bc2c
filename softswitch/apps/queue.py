"""The call queue application: a caller waits with music (or ringback) while the tenant's
queue owner offers them to agents, and is bridged to the agent who answers.

Each offer (one agent, or a ring-all / cascade round) rings the agents' registered phones
through ``AppCall.connect``; the answer bridges the caller and the application's part of
the call ends, while the owner learns the conversation's end from its CDR (wrap-up
follows). Feature codes let agents log in (``*71``), log out (``*72``) and take a break
(``*73``) from their own phones. ``QueueService`` registers the ``queue`` application
kind and keeps one owner per tenant.

Callback: the caller presses the queue's ``callback_key``, hears that they will be called
back and is hung up; the owner keeps their place. When the engine asks (`Callback`), the
service places a call to the caller's number from the queue's extension; answered, the
same application runs on it under the caller's old queue call id, so they are offered to
the next free agent. A call back that neither answers nor fails within its ring time is
given up on and counts as a failed try.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

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
from softswitch.queues.engine import Callback, Exit, Offer
from softswitch.queues.owner import CallerInbox, QueueOwner
from storage import Store
from storage.cdr import Cdr

__all__ = ["QueueService", "queue_app"]

log = structlog.get_logger(__name__)


#: Seconds past a call back's ring time before the service stops waiting for its outcome.
_CALLBACK_GRACE = 5.0
_CALLBACK_POLL = 0.25


def _offer_node(offers: list[Offer], queue: CallQueue) -> Node:
    """One ring node for the offers made together (cascade: each after its delay), with
    each agent's settings: main device only, press 1 to accept, auto answer."""
    timeout = max(1, round(offers[0].timeout))
    targets = []
    for offer in offers:
        agent = queue.agent(offer.agent)
        targets.append(
            Target(
                TargetKind.USER_DEVICES,
                offer.agent,
                delay=round(offer.delay),
                all_devices=agent is None or not agent.single_device,
                answer_confirmation=agent is not None and agent.request_confirmation,
                auto_answer=agent is not None and agent.auto_answer,
            )
        )
    return Ring(tuple(targets), timeout)


class CallPlacer(Protocol):
    """What the service needs of the call layer to place call backs (the CallManager)."""

    def schedule(self, delay: float, callback: Callable[..., None], *args: Any) -> Any: ...
    def originate(
        self,
        tenant_name: str,
        dialled: str,
        app: Any,
        *,
        caller_number: str,
        caller_name: str = "",
    ) -> Any: ...


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


async def _say(session: AppCall, voice: TenantVoice | None, text: str) -> None:
    """Speak `text` (a short beep without a voice)."""
    if voice is not None:
        try:
            await play(session, await voice.text(text), limit=15)
            return
        except PromptError as error:
            log.warning("queue_prompt_failed", call=session.call_id, error=str(error))
    playback = session.engine.play(session.endpoint, prompts.JOIN)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(playback.wait(), 3.0)


async def queue_app(
    session: AppCall,
    queue: CallQueue,
    owner: QueueOwner,
    music: HoldSource,
    voice: TenantVoice | None = None,
    *,
    returning: str | None = None,
) -> None:
    """Hold the caller in `queue` until an agent answers, they hang up, press an exit key
    or are sent elsewhere; announce their position every ``announce_every`` seconds.
    `returning`: the queue call id of a caller called back (they rejoin in their place)."""
    me = returning or session.call_id
    if returning is not None:
        inbox = owner.rejoin(me, session.sip_call_id)
    else:
        inbox = owner.join(me, session.sip_call_id, queue.name)
    loop = asyncio.get_running_loop()
    session.engine.play(session.endpoint, music, loop=True)
    every = queue.announce_every if voice is not None else None
    next_announcement = loop.time() + every if every is not None else None
    keys = bool(queue.exit_keys) or (queue.callback_key is not None and returning is None)
    try:
        while True:
            wait = None if next_announcement is None else next_announcement - loop.time()
            kind, value = await _next(session, inbox, keys, wait)
            if kind == "hangup":
                owner.left(me)
                return
            if kind == "key":
                target = queue.exit_keys.get(value)
                if target is not None:
                    owner.exited(me, "exit_key", target)  # the Exit follows
                elif value == queue.callback_key and returning is None and session.caller_number:
                    owner.callback(me, session.caller_number)  # keeps the place
                    await _say(session, voice, "We will call you back. Goodbye.")
                    await session.hangup()
                    return
                continue
            if kind == "announce":
                assert every is not None and voice is not None
                next_announcement = loop.time() + every
                place = owner.position(me)
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
                _offer_node(offers, queue), timeout=offers[0].timeout + 1, ringback=music
            )
            if result.answered:
                agent = result.answered_by or offers[0].agent
                owner.answered(me, agent, session.call_id)
                return
            if session.ended.is_set() or session.endpoint.released:
                owner.left(me)
                return
            reason = _failure(result)
            for offer in offers:
                owner.failed(me, offer.agent, reason)
            session.engine.play(session.endpoint, music, loop=True)
    finally:
        owner.forget(me)


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
        calls: CallPlacer | None = None,
    ) -> None:
        self.tenants = tenants  # the call layer's, changed in place by provisioning
        self.store = store
        self.calls = calls  # places call backs (None: callers asking for one are kept waiting)
        self._watches: set[asyncio.Task[None]] = set()
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
        for task in list(self._watches):
            task.cancel()
        for task in list(self._watches):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for owner in self.owners.values():
            await owner.stop()
        self.owners.clear()

    async def _owner(self, tenant: Tenant) -> QueueOwner | None:
        owner = self.owners.get(tenant.name)
        if owner is None and tenant.queues:
            owner = self._new_owner(tenant)
            await owner.start()
        return owner

    def _new_owner(self, tenant: Tenant) -> QueueOwner:
        owner = self.owners[tenant.name] = QueueOwner(tenant.name, tenant.queues, self.store)
        self._configs[tenant.name] = tuple(tenant.queues)
        name = tenant.name
        owner.dialer = lambda action: self._call_back(name, action)
        return owner

    def _live_owner(self, tenant: Tenant) -> QueueOwner | None:
        """The tenant's owner, told of changed queue settings (provisioning applies them
        to the call layer's tenants in place)."""
        owner = self.owners.get(tenant.name)
        if owner is None:
            if not tenant.queues:
                return None
            owner = self._new_owner(tenant)
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

    def _call_back(self, tenant_name: str, action: Callback) -> None:
        """Place the call back the engine asked for (the owner's dialer)."""
        owner = self.owners.get(tenant_name)
        tenant = self.tenants.get(tenant_name)
        queue = next((q for q in tenant.queues if q.name == action.queue), None) if tenant else None
        if owner is None:
            return
        if self.calls is None or tenant is None or queue is None:
            owner.callback_failed(action.call_id, "unavailable")
            return
        music = self._music(tenant, queue)
        voice = TenantVoice(self.library, tenant.name, None) if self.library else None
        started = asyncio.Event()

        async def run(session: AppCall) -> None:
            started.set()
            await queue_app(session, queue, owner, music, voice, returning=action.call_id)

        task = asyncio.get_running_loop().create_task(
            self._watch(owner, queue, action, run, started), name=f"callback-{action.call_id}"
        )
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)

    async def _watch(
        self,
        owner: QueueOwner,
        queue: CallQueue,
        action: Callback,
        run: Application,
        started: asyncio.Event,
    ) -> None:
        """Place the call back and tell the owner when it was not answered."""
        assert self.calls is not None
        placed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def place() -> None:
            assert self.calls is not None
            call = self.calls.originate(
                owner.tenant, action.number, run,
                caller_number=queue.extension, caller_name=queue.name,
            )  # fmt: skip
            if not placed.done():
                placed.set_result(call)

        self.calls.schedule(0, place)
        call = await placed
        if call is None:
            owner.callback_failed(action.call_id, "refused")
            return
        log.info("queue_callback", queue=queue.name, call=action.call_id, number=action.number)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + action.timeout + _CALLBACK_GRACE
        while not started.is_set():
            state = call.state.value  # routing (ringing), answered or ended
            if state == "ended" or (state == "answered" and loop.time() >= deadline):
                break
            if state == "routing" and loop.time() >= deadline:
                self.calls.schedule(0, call.fail, 408, "Request Timeout")
                break
            await asyncio.sleep(_CALLBACK_POLL)
        if not started.is_set():
            owner.callback_failed(action.call_id, "no_answer")

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
