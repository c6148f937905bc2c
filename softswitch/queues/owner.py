"""The owner of one tenant's queues: a single task that feeds the sans-I/O engine, keeps
its clock, hands each caller's actions to that caller's application, and appends the
events to the store's queue log.

Everything reaches the engine through the owner's inbox, one input at a time, so no two
inputs ever interleave (the engine's reservations stay whole). Agents' statuses set
outside the switch (the CLI appends an ``agent_status`` event) are picked up from the
store every `sync_interval` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from config.queues import CallQueue
from softswitch.queues.engine import Action, Callback, Exit, QueueEngine
from storage import StorageError, Store
from storage.cdr import Cdr
from storage.queue_events import QueueEvent

__all__ = ["CallerInbox", "QueueOwner"]

log = structlog.get_logger(__name__)

#: Events kept for the store while it is unavailable (the oldest are dropped past this).
_MAX_PENDING = 100_000


@dataclass(slots=True, eq=False)
class CallerInbox:
    """What the engine decided for one caller, for its queue application to carry out."""

    call_id: str
    sip_call_id: str
    actions: asyncio.Queue[Action] = field(default_factory=asyncio.Queue)


class QueueOwner:
    """One tenant's queue engine behind one task (see the module docstring)."""

    def __init__(
        self,
        tenant: str,
        queues: Sequence[CallQueue],
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        sync_interval: float = 2.0,
    ) -> None:
        self.tenant = tenant
        self.engine = QueueEngine(tenant, queues)
        self.store = store
        self.clock = clock
        self.sync_interval = sync_interval
        self.inboxes: dict[str, CallerInbox] = {}
        self._talking: dict[str, tuple[str, str]] = {}  # sip call-id -> (call_id, app call)
        self._inbox: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue()
        self._pending: list[QueueEvent] = []
        self._flush = asyncio.Event()
        self._statuses: dict[str, float] = {}  # agent -> time of the status event applied
        self._tasks: list[asyncio.Task[None]] = []
        # Places the call backs the engine asks for (set by the queue service).
        self.dialer: Callable[[Callback], None] | None = None

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the agents' statuses from the log, then run."""
        try:
            for event in await self.store.last_agent_statuses(self.tenant, self.clock() + 1):
                self.engine.restore_status(event.agent, event.reason, event.at)
                self._statuses[event.agent] = event.at
        except StorageError as error:
            log.warning("queue_statuses_unavailable", tenant=self.tenant, error=str(error))
        self._tasks = [
            asyncio.create_task(self._run(), name=f"queues-{self.tenant}"),
            asyncio.create_task(self._write(), name=f"queue-log-{self.tenant}"),
            asyncio.create_task(self._sync(), name=f"queue-status-{self.tenant}"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._write_pending()

    # -- inputs (any task may call these; the owner task applies them in order) ----------

    def join(self, call_id: str, sip_call_id: str, queue: str) -> CallerInbox:
        """A caller enters `queue`: their inbox, which the engine's actions for them fill."""
        inbox = CallerInbox(call_id, sip_call_id)
        self.inboxes[call_id] = inbox
        self._post("caller_arrived", call_id, queue)
        return inbox

    def rejoin(self, call_id: str, sip_call_id: str) -> CallerInbox:
        """A caller called back answered: their inbox, back in their place."""
        inbox = CallerInbox(call_id, sip_call_id)
        self.inboxes[call_id] = inbox
        self._post("callback_answered", call_id)
        return inbox

    def callback(self, call_id: str, number: str) -> None:
        """The waiting caller asked to be called back at `number` (and hangs up)."""
        self._post("callback_requested", call_id, number)

    def callback_failed(self, call_id: str, reason: str) -> None:
        """The call back was not answered."""
        self._post("callback_failed", call_id, reason)

    def left(self, call_id: str) -> None:
        """The caller hung up while waiting."""
        self._post("caller_left", call_id)

    def exited(self, call_id: str, reason: str, target: str | None) -> None:
        """The caller left by an exit key or callback."""
        self._post("caller_exited", call_id, reason, target)

    def answered(self, call_id: str, agent: str, app_call: str) -> None:
        """`agent` answered and is bridged to the caller; their talk ends with the CDR of
        the call the caller was handed on to."""
        inbox = self.inboxes.get(call_id)
        if inbox is not None and inbox.sip_call_id:
            self._talking[inbox.sip_call_id] = (call_id, app_call)
        self._post("offer_answered", call_id, agent)

    def failed(self, call_id: str, agent: str, reason: str) -> None:
        self._post("offer_failed", call_id, agent, reason)

    def set_status(self, agent: str, status: str, reason: str = "") -> None:
        """A person set `agent`'s status (feature code): logged like the CLI's."""
        self._post("set_status", agent, status, reason)

    def reconfigure(self, queues: Sequence[CallQueue]) -> None:
        self._post("reconfigure", list(queues))

    def on_cdr(self, cdr: Cdr) -> None:
        """A call ended: if it was a queue caller's conversation, the agent's talk ended."""
        talking = self._talking.get(cdr.sip_call_id)
        if talking is None or cdr.call_id == talking[1]:
            return  # not a queue call, or the queue application's own part of the call
        del self._talking[cdr.sip_call_id]
        self._post("call_ended", talking[0])

    def _post(self, method: str, *args: Any) -> None:
        self._inbox.put_nowait((method, args))

    # -- the owner task ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            deadline = self.engine.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            try:
                method, args = await asyncio.wait_for(self._inbox.get(), timeout)
            except TimeoutError:
                self._apply(self.engine.tick(self.clock()))
                continue
            self._apply(self._call(method, args))
            if deadline is not None and deadline <= self.clock():
                self._apply(self.engine.tick(self.clock()))

    def _call(self, method: str, args: tuple[Any, ...]) -> list[Action]:
        now, engine = self.clock(), self.engine
        try:
            match method, args:
                case "caller_arrived", (call_id, queue):
                    return engine.caller_arrived(call_id, queue, now)
                case "caller_left", (call_id,):
                    return engine.caller_left(call_id, now)
                case "caller_exited", (call_id, reason, target):
                    return engine.caller_exited(call_id, now, reason, target)
                case "callback_requested", (call_id, number):
                    return engine.callback_requested(call_id, number, now)
                case "callback_answered", (call_id,):
                    return engine.callback_answered(call_id, now)
                case "callback_failed", (call_id, reason):
                    return engine.callback_failed(call_id, now, reason)
                case "offer_answered", (call_id, agent):
                    return engine.offer_answered(call_id, agent, now)
                case "offer_failed", (call_id, agent, reason):
                    return engine.offer_failed(call_id, agent, now, reason)
                case "call_ended", (call_id,):
                    return engine.call_ended(call_id, now)
                case "set_status", (agent, status, reason):
                    return engine.set_status(agent, status, now, reason)
                case "apply_status", (agent, status, reason):  # already in the log
                    return engine.set_status(agent, status, now, reason, log=False)
                case "reconfigure", (queues,):
                    return engine.reconfigure(queues)
        except ValueError as error:  # e.g. a queue removed while its caller dialled in
            log.warning("queue_input_refused", tenant=self.tenant, input=method, error=str(error))
            if method == "caller_arrived":
                return [Exit(args[0], args[1], "shutdown", None)]
        return []

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, QueueEvent):
                self._pending.append(action)
                if action.event == "agent_status":
                    self._statuses[action.agent] = action.at
                continue
            if isinstance(action, Callback):
                if self.dialer is not None:
                    self.dialer(action)
                else:  # no call layer to place it (tests of the owner alone)
                    self._post("callback_failed", action.call_id, "no_dialer")
                continue
            inbox = self.inboxes.get(action.call_id)
            if inbox is not None:
                inbox.actions.put_nowait(action)
        if len(self._pending) > _MAX_PENDING:
            del self._pending[: len(self._pending) - _MAX_PENDING]
        if self._pending:
            self._flush.set()

    def position(self, call_id: str) -> tuple[int, float | None] | None:
        """A waiting caller's place and estimated wait (see QueueEngine.position)."""
        return self.engine.position(call_id)

    def forget(self, call_id: str) -> None:
        """The caller's application is done with its inbox."""
        self.inboxes.pop(call_id, None)

    # -- the log writer and the status sync ---------------------------------------------

    async def _write(self) -> None:
        while True:
            await self._flush.wait()
            self._flush.clear()
            await self._write_pending()
            if self._pending:  # the store failed: try again a little later
                await asyncio.sleep(1.0)
                self._flush.set()

    async def _write_pending(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self.store.append_queue_events(batch)
        except StorageError as error:
            log.warning("queue_log_write_failed", tenant=self.tenant, error=str(error))
            self._pending[:0] = batch

    async def _sync(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                latest = await self.store.last_agent_statuses(self.tenant, self.clock() + 1)
            except StorageError as error:
                log.warning("queue_status_sync_failed", tenant=self.tenant, error=str(error))
                continue
            for event in latest:
                if event.at > self._statuses.get(event.agent, float("-inf")) and (
                    event.agent in self.engine.agents
                ):
                    self._statuses[event.agent] = event.at
                    self._post("apply_status", event.agent, event.status, event.status_reason)
