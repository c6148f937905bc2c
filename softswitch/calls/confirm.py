"""Legs that must be accepted before they win: answer confirmation and call screening.

Routing marks a ring target ``answer_confirmation`` (off-net sim-ring legs: a mobile's
voicemail must not take the call) or ``screening`` (the callee hears who calls, recorded by
the caller, and accepts or sends the call on). When such a leg answers, the switch ACKs it
but does not bridge it: a ``Confirmer`` (registered by ``softswitch.apps.screening``, which
knows the prompts) talks to the answerer on the leg's anchored endpoint. Pressed 1: the leg
wins as if it had just answered. Anything else (another key, silence, a hang-up, the ring
time running out, another leg winning): the leg is hung up and counts as not answered, so
the callflow goes on.

A call that is screened also needs the caller's name before anything rings: the ring node
hands the caller to the screener's application (``screening_application``), which records
the name and connects the caller to the same node (``AppCall.connect`` with
``caller_voice``), whose legs then play it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from media.control import MediaControl
from media.negotiation import NegotiatedLeg
from routing.plan import Ring
from softswitch.calls.call import Call, CallState, Leg
from softswitch.calls.connect import Handoff
from softswitch.calls.leg import LegState, response_sdp
from softswitch.sip.message import SipResponse

__all__ = ["Confirmation", "Confirmations", "Confirmer", "Screener"]

log = structlog.get_logger(__name__)

#: What a leg must do before it wins (``Leg.confirm``).
CONFIRM = "confirm"  # press 1 to accept
SCREEN = "screen"  # hear the caller's name, press 1 to accept


@dataclass(frozen=True, slots=True)
class Confirmation:
    """One answered leg waiting for its answerer's 1."""

    kind: str  # CONFIRM or SCREEN
    call_id: str
    tenant: str
    caller_number: str
    caller_name: str
    caller_voice: Any  # int16 8 kHz samples of the caller's name (screening), or None
    engine: MediaControl
    endpoint: NegotiatedLeg
    given_up: Callable[[], bool]  # cancelled, or the call moved on: stop asking


#: Asks the answerer; True when they accepted.
Confirmer = Callable[[Confirmation], Awaitable[bool]]
#: The application that records a screened caller's name and connects them to the node.
Screener = Callable[[Call, Ring], Any]


class Confirmations:
    """Holds answered legs until their answerer accepts (see the module docstring)."""

    def __init__(self, layer: Any, anchor: Any) -> None:
        self.layer = layer  # the call manager: scheduling, ACK, BYE
        self.anchor = anchor  # MediaAnchor or None (pass-through: nothing is confirmed)
        self.confirmer: Confirmer | None = None
        self.screener: Screener | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def hold(self, call: Call, leg: Leg, response: SipResponse) -> bool:
        """``leg`` answered and must be accepted first: True when it is being asked (the
        call goes on ringing the others), False to let it win at once (no confirmer, no
        anchored media)."""
        anchor = self.anchor
        if self.confirmer is None or anchor is None or leg.media is None or leg.session is None:
            log.info("confirmation_skipped", call=call.id, leg=leg.label)
            return False
        self.layer.send_ack(leg)
        anchor.remote_answer(leg, response_sdp(response))
        local = anchor.local_media(leg)
        if local is None:
            return False
        voice = call.transfer.caller_voice if isinstance(call.transfer, Handoff) else None

        def given_up() -> bool:
            return (
                leg.cancel_pending
                or leg.state is LegState.ENDED
                or call.state is not CallState.ROUTING
            )

        request = Confirmation(
            leg.confirm,
            call.id,
            call.tenant,
            call.caller_number,
            call.caller_name,
            voice,
            local[0],
            local[1],
            given_up,
        )
        log.info("confirmation_asked", call=call.id, leg=leg.label, kind=leg.confirm)
        task = asyncio.get_running_loop().create_task(self._ask(call, leg, response, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _ask(
        self, call: Call, leg: Leg, response: SipResponse, request: Confirmation
    ) -> None:
        assert self.confirmer is not None
        try:
            accepted = await self.confirmer(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("confirmation_failed", call=call.id)
            accepted = False
        self.layer.schedule(0, self._answered, call, leg, response, accepted)

    def _answered(self, call: Call, leg: Leg, response: SipResponse, accepted: bool) -> None:
        if leg.state is LegState.ENDED:
            # The answerer hung up while asked: the leg was not answered.
            if call.state is CallState.ROUTING and not leg.cancel_pending:
                call.leg_failed(leg, 480, "Not Accepted")
            return
        log.info("confirmation_answered", call=call.id, leg=leg.label, accepted=accepted)
        if accepted and call.state is CallState.ROUTING and not leg.cancel_pending:
            leg.confirm = ""
            call.leg_answered(leg, response)  # wins now, as if it had just answered
            return
        self.layer.sig.send_bye(leg)
        call.leg_failed(leg, 480, "Not Accepted")

    def screen(self, call: Call, node: Ring) -> bool:
        """A ring node with screened legs: the caller records a name first (True: the
        screener's application now has the call)."""
        if (
            self.screener is None
            or self.anchor is None
            or call.transfer is not None
            or call.originated is not None
            or call.state is not CallState.ROUTING
        ):
            return False
        app = self.screener(call, node)
        if app is None:
            return False
        self.layer.originator.start_application(call, app, "screening")
        return True
