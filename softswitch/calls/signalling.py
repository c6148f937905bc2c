"""The SIP the call layer sends: responses, ACK and BYE on a leg's dialog, and the Via and
Contact of the switch toward a given peer. Every module of the call layer sends through one
``CallSignalling``; it holds the transaction layer, the clock and the loop's scheduler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from softswitch.calls.call import Call, Leg
from softswitch.calls.leg import LegState
from softswitch.sip.address import Address
from softswitch.sip.dialog import uri_address
from softswitch.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    contact_uri,
    make_response,
    new_tag,
    via_value,
)
from softswitch.sip.timers import TimerSettings
from softswitch.sip.transaction import ClientTransaction, ServerTransaction, TransactionLayer

__all__ = ["CallSignalling", "Scheduler"]


class Scheduler(Protocol):
    """The loop's ``call_later``: a handle whose ``cancel()`` stops the callback."""

    def __call__(self, delay: float, callback: Callable[..., None], *args: Any) -> Any: ...


class CallSignalling:
    """Sends SIP for calls: answers on server transactions, requests on legs' dialogs."""

    def __init__(
        self,
        transactions: TransactionLayer,
        *,
        timers: TimerSettings,
        clock: Callable[[], float],
        schedule: Scheduler,
        local: Callable[[Address], tuple[str, int]],
        allow: str,
        server_header: str,
    ) -> None:
        self.tx = transactions
        self.timers = timers
        self.clock = clock
        self.schedule_raw = schedule
        self.local = local
        self.allow = allow
        self.server_header = server_header

    def schedule(self, delay: float, callback: Callable[..., None], *args: Any) -> Any:
        """A loop timer handle (``cancel()``able); the host drains the transaction layer
        after each callback."""
        return self.schedule_raw(delay, callback, *args)

    # ---------------------------------------------------------------- addressing
    def via(self, dest: Address) -> str:
        """Our Via (without branch) for a request sent to ``dest``."""
        host, port = self.local(dest)
        return via_value(dest.transport, host, port)

    def contact_for(self, dest: Address) -> str:
        """Our Contact for a leg reached at ``dest``."""
        host, port = self.local(dest)
        return f"<{contact_uri(host, port, dest.transport)}>"

    def dest(self, leg: Leg) -> Address:
        """Where the leg's in-dialog requests go: its route set's first hop, else its peer."""
        dialog = leg.dialog
        if dialog is not None and dialog.route_set:
            try:
                return uri_address(dialog.next_hop_uri())
            except SipParseError:
                pass
        return leg.peer

    # ---------------------------------------------------------------- responses
    def response(
        self,
        request: SipRequest,
        status: int,
        reason: str | None,
        to_tag: str | None = None,
        *,
        allow: bool = False,
        body: bytes = b"",
    ) -> SipResponse:
        response = make_response(request, status, reason, to_tag=to_tag or new_tag(), body=body)
        if allow:
            response.add("Allow", self.allow)
        response.add("Server", self.server_header)
        return response

    def respond(
        self, tx: ServerTransaction, status: int, reason: str | None, *, allow: bool = False
    ) -> None:
        self.send_response(tx, self.response(tx.request, status, reason, allow=allow))

    def send_response(self, tx: ServerTransaction, response: SipResponse) -> None:
        self.tx.send_response(tx, response, self.clock())

    def send_request(self, request: SipRequest, dest: Address) -> ClientTransaction:
        return self.tx.send_request(request, dest, self.clock())

    def send_stateless(self, request: SipRequest, dest: Address) -> None:
        self.tx.send_stateless(request, dest)

    # ---------------------------------------------------------------- ACK and BYE
    def send_ack(self, leg: Leg, body: bytes = b"", content_type: str | None = None) -> None:
        """ACK the 2xx of the leg's INVITE (kept for the 2xx's retransmissions)."""
        dialog = leg.dialog
        if dialog is None:
            return
        dest = self.dest(leg)
        cseq = leg.invite.cseq
        leg.ack = dialog.build_ack(cseq[0] if cseq else 1, self.via(dest), body, content_type)
        self.tx.send_stateless(leg.ack, dest)

    def resend_ack(self, leg: Leg) -> None:
        if leg.ack is not None:
            self.tx.send_stateless(leg.ack, self.dest(leg))

    def send_bye(self, leg: Leg) -> None:
        dialog = leg.dialog
        leg.state = LegState.ENDED
        if leg.ended_at is None:
            leg.ended_at = time.time()
        if dialog is None:
            return
        dest = self.dest(leg)
        self.send_request(dialog.build_request("BYE", self.via(dest)), dest)

    def ack_and_bye(self, leg: Leg) -> None:
        """A 2xx nobody wants (a losing branch, a cancelled call): ACK it, then BYE."""
        self.send_ack(leg)
        self.send_bye(leg)

    def hang_up(self, call: Call, disposition: str, status: int) -> None:
        """End a call from the switch's side: BYE to both parties, then the CDR."""
        for leg in (call.inbound, call.winner):
            if leg is not None and leg.state is not LegState.ENDED:
                self.send_bye(leg)
        call.end(disposition, status)
