"""Call applications: a call the switch answers itself and hands to a coroutine.

Conference bridges, monitoring and later voicemail, attendants and queues are
applications: the caller's leg is answered with its anchored endpoint, and the
application drives media (prompts, digits, mixing) through the media control interface
(:mod:`media.control`: the in-process engine or the media-worker pool) and an
:class:`AppCall` until either side ends the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

from media.control import MediaControl
from media.moh import HoldMusic
from media.negotiation import NegotiatedLeg
from media.players import AudioSource
from softswitch.calls.connect import Connected, ConnectOutcome, Destination

if TYPE_CHECKING:
    from softswitch.calls.call import Call, CallLayer

__all__ = [
    "AppCall",
    "Application",
    "CallRefused",
    "ConnectOutcome",
    "Connected",
    "run_application",
]

log = structlog.get_logger(__name__)


class CallRefused(Exception):
    """A service turns the call away: the caller gets ``status`` (403, 404, 480...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class AppCall:
    """The caller's side of a call answered by an application (the ``AppSession`` the
    applications are written against)."""

    def __init__(
        self,
        mgr: CallLayer,
        call: Call,
        engine: MediaControl,
        endpoint: NegotiatedLeg,
        user: str | None,
    ) -> None:
        self._mgr = mgr
        self._call = call
        self.call_id = call.id
        # The caller's SIP Call-ID: the CDR of whatever call the caller is handed on to
        # carries it too (how a queue learns its agent's conversation ended).
        self.sip_call_id = call.inbound.call_id if call.inbound is not None else ""
        self.tenant = call.tenant
        self.caller_number = call.caller_number
        self.caller_name = call.caller_name
        self.dialed = call.dialled
        self.user = user  # the caller's extension when it is one of the tenant's users
        self.engine = engine
        self.endpoint = endpoint
        self.ended = asyncio.Event()  # the call is over (either side hung up)
        self.task: asyncio.Task[None] | None = None

    async def hangup(self) -> None:
        """End the call from the switch's side (BYE to the caller)."""
        if not self.ended.is_set():
            # Through the switch's scheduler: SIP sent from a task must be flushed like any
            # timer callback's.
            self._mgr.schedule(0, self._mgr.hang_up_application, self._call)
            await self.ended.wait()

    async def connect(
        self,
        destination: Destination,
        *,
        timeout: float | None = None,
        ringback: AudioSource | HoldMusic | None = None,
        caller_voice: Any = None,
    ) -> Connected:
        """Hand the caller on to ``destination``: an extension or number dialled as the
        tenant's own (a user rings with their answering rules; a conference, mailbox or
        attendant extension runs its application; an outside number goes out through the
        trunks), or a callflow ``Target``/node.

        Answered (bridged to whoever answered, or taken by the destination's application),
        this application's part of the call is over: ``ended`` is set and it should return.
        Otherwise the caller is back with the outcome (busy, no answer, failed, with the
        SIP status) and the application goes on. ``timeout``: seconds before giving up on
        the destination (its own ring times apply as well); ``ringback`` loops to the
        caller while the destination rings; ``caller_voice`` (int16 samples of the
        caller's name) is what screened legs hear.
        """
        if self.ended.is_set() or self.endpoint.released:
            return Connected(ConnectOutcome.FAILED, 487, "Caller Hung Up")
        if ringback is not None:
            self.engine.play(self.endpoint, ringback, loop=True)
        else:
            self.engine.stop(self.endpoint)
        done: asyncio.Future[Connected] = asyncio.get_running_loop().create_future()
        self._mgr.schedule(
            0,
            self._mgr.hand_off,
            self._call,
            destination,
            done,
            self._silence,
            timeout,
            caller_voice,
        )
        result = await done
        if not result.answered and not self.endpoint.released:
            self.engine.stop(self.endpoint)  # the ringback
        return result

    def _silence(self) -> None:
        if not self.endpoint.released:
            self.engine.stop(self.endpoint)


#: An application: runs for the whole answered call.
Application = Callable[[AppCall], Awaitable[None]]


async def run_application(app: Application, session: AppCall) -> None:
    """Run ``app`` on an answered call; the call is hung up when the app returns."""
    try:
        await app(session)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("application_failed", call=session.call_id)
    if not session.ended.is_set():
        await session.hangup()
