"""The SIP the call layer sends: responses, requests, ACK and BYE on a leg's dialog, and the
Via and Contact of the switch toward a given peer. Every module of the call layer sends
through one ``CallSignalling``; it holds the SIP stack's dialog layer (and the transaction
layer under it), the clock and the loop's scheduler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from softswitch.calls.call import Call, Leg
from softswitch.calls.leg import LegState
from softswitch.sip.address import Address
from softswitch.sip.dialog_layer import DialogLayer
from softswitch.sip.message import (
    SipRequest,
    SipResponse,
    contact_uri,
    make_response,
    new_tag,
    via_value,
)
from softswitch.sip.session import InviteSession
from softswitch.sip.transaction import ServerTransaction

__all__ = ["CallSignalling", "Scheduler"]


class Scheduler(Protocol):
    """The loop's ``call_later``: a handle whose ``cancel()`` stops the callback."""

    def __call__(self, delay: float, callback: Callable[..., None], *args: Any) -> Any: ...


class CallSignalling:
    """Sends SIP for calls: answers on server transactions, requests and ACKs on legs'
    dialogs through the SIP stack's dialog layer (which keeps the dialogs)."""

    def __init__(
        self,
        dialogs: DialogLayer,
        *,
        clock: Callable[[], float],
        schedule: Scheduler,
        local: Callable[[Address], tuple[str, int]],
        allow: str,
        server_header: str,
    ) -> None:
        self.dialogs = dialogs
        self.tx = dialogs.transactions
        self.clock = clock
        self.schedule_raw = schedule
        self.local = local
        self.allow = allow
        self.server_header = server_header

    def schedule(self, delay: float, callback: Callable[..., None], *args: Any) -> Any:
        """A loop timer handle (``cancel()``able); the host drains the SIP layers after
        each callback."""
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
        """A response outside any dialog's bookkeeping (provisional, error, 202...)."""
        self.tx.send_response(tx, response, self.clock())

    def answer(
        self, tx: ServerTransaction, response: SipResponse, leg: Leg | None = None
    ) -> InviteSession | None:
        """A final answer through the dialog layer: a 2xx to an INVITE is retransmitted
        until its ACK and carries the session timer; one to the initial INVITE creates the
        dialog, with ``leg`` as its owner."""
        return self.dialogs.answer(tx, response, self.clock(), app_data=leg)

    # ---------------------------------------------------------------- in a leg's dialog
    def request(
        self,
        leg: Leg,
        method: str,
        app_data: Any,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        max_forwards: int = 70,
    ) -> None:
        """A request in the leg's dialog; its outcome comes back as ``InDialogResponse``
        with ``app_data`` (a 2xx to a re-INVITE is ACKed by the call layer)."""
        assert leg.session is not None
        self.dialogs.request(
            leg.session,
            method,
            self.clock(),
            body=body,
            content_type=content_type,
            headers=headers,
            max_forwards=max_forwards,
            auto_ack=False,
            app_data=app_data,
        )

    def send_ack(self, leg: Leg, body: bytes = b"", content_type: str | None = None) -> None:
        """ACK the last 2xx to an INVITE of ours on the leg (the layer resends it when the
        2xx is retransmitted)."""
        if leg.session is not None:
            self.dialogs.ack(leg.session, self.clock(), body, content_type)

    def send_bye(self, leg: Leg) -> None:
        leg.state = LegState.ENDED
        if leg.ended_at is None:
            leg.ended_at = time.time()
        if leg.session is not None:
            self.dialogs.bye(leg.session, self.clock())

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
