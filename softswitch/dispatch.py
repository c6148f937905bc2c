"""Request dispatch: what the switch does with each event of the SIP layers (the dialog
layer on top of the transaction layer).

New INVITEs go to the call layer (after the overload guard), and so does whatever the
dialog layer reports on the calls' dialogs; REGISTER goes to the registrar, OPTIONS and
requests in no dialog are answered here. Responses and transaction failures go to the
transaction's owner (``TransactionOwner``: the dialog layer keeps its own, the trunk
registrar, the qualify pinger), or to the call layer for a transaction nobody claimed (the
caller's INVITE timing out).
"""

from __future__ import annotations

from collections.abc import Callable

from softswitch import __version__
from softswitch.calls import CallManager
from softswitch.directory import Subscriber
from softswitch.notify.subscriptions import Notifier
from softswitch.overload import OverloadGuard
from softswitch.registrar import Registrar
from softswitch.sip.address import Address
from softswitch.sip.driver import KNOWN_METHODS, SignallingCounters, SipDriver
from softswitch.sip.message import SipParseError, SipRequest, SipResponse, make_response, new_tag
from softswitch.sip.session import (
    AckReceived,
    DialogEnded,
    InDialogRequest,
    InDialogResponse,
    InviteReceived,
    LegAnswered,
    LegFailed,
    LegProgress,
)
from softswitch.sip.transaction import (
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    TransactionLayer,
    TransactionOwner,
    TransactionTimeout,
    TransportFailed,
    deliver,
    stamp_via,
)

__all__ = [
    "ALLOWED_METHODS",
    "KNOWN_METHODS",
    "SERVER_HEADER",
    "SUPPORTED_EXTENSIONS",
    "RequestDispatcher",
]

SERVER_HEADER = f"softswitch/{__version__}"
# Methods the switch handles: registration, OPTIONS, and calls (the B2BUA relays UPDATE and
# INFO within a dialog, and carries out blind transfers asked by REFER), SUBSCRIBE (busy lamps
# and message waiting: softswitch.notify). PRACK and MESSAGE are not handled (yet).
ALLOWED_METHODS = (
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "UPDATE",
    "INFO",
    "REFER",
    "SUBSCRIBE",
)
SUPPORTED_EXTENSIONS = ("path", "timer")  # timer: RFC 4028, by the dialog layer


class RequestDispatcher:
    """Routes the SIP layers' events (see the module docstring).

    ``registrar``, ``calls`` and ``driver`` are set by the switch once it has built them
    (until then a REGISTER is answered 503 and requests for calls as if none existed).
    """

    def __init__(
        self,
        transactions: TransactionLayer,
        overload: OverloadGuard,
        counters: SignallingCounters,
        *,
        retry_after: int,
        server_header: str = SERVER_HEADER,
    ) -> None:
        self.transactions = transactions
        self.server_header = server_header  # [security] server_header
        self.overload = overload
        self.counters = counters
        self.retry_after = retry_after
        self.registrar: Registrar | None = None
        self.calls: CallManager | None = None
        self.driver: SipDriver | None = None  # for stateless answers (set by the switch)
        self.notifier: Notifier | None = None  # SUBSCRIBE (set by the switch)
        # Told of each accepted REGISTER (message-waiting state for a phone that just came)
        # A REGISTER added a contact (subscriber, domain): message waiting lights new phones.
        self.on_contact_added: Callable[[Subscriber, str], None] | None = None

    # ----------------------------------------------------------------- events
    def handle_event(self, event: object, now: float) -> None:
        """One event of the layers, dispatched as the module docstring says."""
        calls = self.calls
        if isinstance(event, RequestReceived):
            # Not for the dialog layer: REGISTER, OPTIONS, a request in no known dialog, or
            # an ACK that matched nothing (absorbed).
            request = event.request
            tx = event.transaction
            if tx is None:
                return
            notifier = self.notifier
            if (
                request.method == "SUBSCRIBE"
                and notifier is not None
                and self.precheck(request) is None
            ):
                notifier.on_subscribe(request, event.source, tx)
                return
            response = self.answer(request, event.source)
            self.count(response.status)
            self.transactions.send_response(tx, response, now)
            registrar = self.registrar
            if response.status == 200 and request.method == "REGISTER" and registrar is not None:
                added = registrar.contact_added
                if added is not None and self.on_contact_added is not None:
                    self.on_contact_added(added[0], added[1])
        elif isinstance(event, InviteReceived):
            request = event.request
            tx = event.transaction
            if calls is not None and self.precheck(request) is None:
                # An emergency call is never shed (softswitch.security.emergency).
                if calls.emergency(request, event.source) or self.overload.admit(
                    calls.calls_in_setup, len(self.transactions), now
                ):
                    calls.on_invite(request, event.source, tx)
                    return
                response = self.response(request, 503, "Service Unavailable")
                response.add("Retry-After", str(self.retry_after))
            else:
                response = self.answer(request, event.source)
            self.count(response.status)
            self.transactions.send_response(tx, response, now)
        elif isinstance(event, InDialogRequest):
            rejection = self.precheck(event.request)
            if rejection is not None or calls is None:
                if rejection is None:
                    rejection = self.response(event.request, 481, "Call/Transaction Does Not Exist")
                self.count(rejection.status)
                self.transactions.send_response(event.transaction, rejection, now)
                return
            calls.on_dialog_event(event)
        elif isinstance(
            # Tuples, not unions: mypyc compiles a tuple of classes to native type checks
            # but builds a union object per call.
            event,
            (AckReceived, InDialogResponse, LegProgress, LegAnswered, LegFailed, DialogEnded),
        ):
            if calls is not None:
                calls.on_dialog_event(event)
        elif isinstance(event, (ResponseReceived, TransactionTimeout, TransportFailed)):
            # Straight to whoever sent the request; the call layer has the rest (server
            # transactions: the caller's INVITE timing out).
            owner: TransactionOwner | None = event.transaction.owner
            if owner is None:
                owner = calls
            if owner is not None:
                deliver(event, owner)
        elif isinstance(event, CancelReceived):
            invite = event.invite_transaction
            if calls is None or not calls.on_cancel(invite):
                self.transactions.send_response(
                    invite,
                    make_response(invite.request, 487, "Request Terminated", to_tag=new_tag()),
                    now,
                )

    def answer_without_transaction(self, request: SipRequest, source: Address) -> bool:
        """Answer a REGISTER that carries no credentials statelessly, as Kamailio's
        registrar does: the answer is a challenge (or an error) that changes nothing, so a
        retransmission may simply be answered again (with a fresh nonce). This keeps half
        of all REGISTER traffic out of the transaction table (Timer J holds a UDP
        transaction for 64*T1 = 32 s). New INVITEs shed for overload are answered
        statelessly too (``_shed_statelessly``). False: the request is not one of those."""
        if request.method == "INVITE":
            return self._shed_statelessly(request, source)
        if request.method != "REGISTER" or request.get("Authorization"):
            return False
        driver = self.driver
        via = request.top_via
        if via is None or driver is None:
            return True
        try:
            stamp_via(request, via, source)
            response = self.answer(request, source)
        except SipParseError as error:
            response = make_response(request, error.status, error.reason, to_tag=new_tag())
        self.count(response.status)
        # The stamped request Via is what the response's top Via was copied from.
        driver.send_stateless_response(response, source, via)
        return True

    def _shed_statelessly(self, request: SipRequest, source: Address) -> bool:
        """Answer a new INVITE that overload control sheds with a stateless 503 and
        Retry-After, as Kamailio's sl_send_reply does. A server transaction would keep the
        INVITE, its 503 and their timers for Timer H (64*T1 = 32 s over UDP) per shed
        call: at thousands of INVITEs a second that is what filled memory during an
        overload (bench/memory_overload.py). A retransmission of an admitted INVITE, an
        emergency call and a request with a precheck answer take the stateful way."""
        calls = self.calls
        driver = self.driver
        if calls is None or driver is None:
            return False
        transactions = self.transactions
        overload = self.overload
        if overload.overloaded(calls.calls_in_setup, len(transactions)) is None:
            return False
        try:
            to = request.to
            via = request.top_via
        except (SipParseError, ValueError):
            return False
        if to is None or to.tag is not None or via is None:
            return False
        if transactions.serves(request, source) or self.precheck(request) is not None:
            return False
        try:
            if calls.emergency(request, source):  # never shed
                return False
        except (SipParseError, ValueError):
            return False
        overload.admit(calls.calls_in_setup, len(transactions), driver.now())  # counted
        stamp_via(request, via, source)
        response = self.response(request, 503, "Service Unavailable")
        response.add("Retry-After", str(self.retry_after))
        self.count(503)
        driver.send_stateless_response(response, source, via)
        return True

    # ----------------------------------------------------------------- answers
    def count(self, status: int) -> None:
        by_status = self.counters.responses_by_status
        by_status[status] = by_status.get(status, 0) + 1

    def precheck(self, request: SipRequest) -> SipResponse | None:
        """The answer to a request the core must not process (unknown method, unsupported
        Require such as 100rel -> 420, Max-Forwards exhausted), or None."""
        method = request.method
        if method not in KNOWN_METHODS:
            return self.response(request, 501, "Not Implemented", allow=True)
        # get_all splits the comma list already (Require is a list header); most requests
        # have none, which the cheaper get tells.
        unsupported = (
            [t for t in request.get_all("Require") if t.lower() not in SUPPORTED_EXTENSIONS]
            if request.get("Require") is not None
            else None
        )
        if unsupported and method != "CANCEL":
            response = self.response(request, 420, "Bad Extension")
            response.add("Unsupported", ", ".join(unsupported))
            return response
        if request.max_forwards == 0 and method != "OPTIONS":
            return self.response(request, 483, "Too Many Hops")
        return None

    def answer(self, request: SipRequest, source: Address) -> SipResponse:
        """The final response to a new request the call layer did not take."""
        method = request.method
        rejection = self.precheck(request)
        if rejection is not None:
            return rejection
        if method == "REGISTER":
            if self.registrar is None:
                return self.response(request, 503, "Service Unavailable")
            return self.registrar.handle(request, source)
        if method == "OPTIONS":
            response = self.response(request, 200, "OK", allow=True)
            response.add("Accept", "application/sdp")
            response.add("Accept-Encoding", "identity")
            response.add("Accept-Language", "en")
            return response
        if (
            method in ("INVITE", "BYE", "INFO", "PRACK", "UPDATE", "NOTIFY")
            and request.to is not None
            and request.to.tag
        ):
            return self.response(request, 481, "Call/Transaction Does Not Exist")
        return self.response(request, 405, "Method Not Allowed", allow=True)

    def response(
        self, request: SipRequest, status: int, reason: str, *, allow: bool = False
    ) -> SipResponse:
        response = make_response(request, status, reason, to_tag=new_tag())
        if allow:
            response.add("Allow", ", ".join(ALLOWED_METHODS))
            response.add("Supported", ", ".join(SUPPORTED_EXTENSIONS))
        response.add("Server", self.server_header)
        return response
