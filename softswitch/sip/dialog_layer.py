"""The sans-I/O dialog (UA) layer: INVITE sessions over the transaction layer.

Modelled on pjsip-ua's invite sessions, shaped like the transaction layer below it (and
driven the same way, by a socket, a test with a fake clock, or a fuzzer)::

    layer.receive_message(msg, source, now)     # fed to the transaction layer, then matched
    for data, dest in layer.datagrams_to_send(now): transport.send(data, dest)
    deadline = layer.get_timer(); ... layer.handle_timer(now)
    while (event := layer.next_event()) is not None: ...

and the TU acts through ``answer``, ``send_invite``, ``cancel``, ``request``, ``ack`` and
``bye``.

It keeps the dialog table (sessions by Call-ID and tags), answers what needs no TU: 481 to
requests in no known dialog (unless the TU takes those, ``answer_no_dialog``), 500 to a
CSeq out of order (RFC 3261 12.2.2), 491/500 to re-INVITE glare (14.1, 14.2), 200 to BYE
and to in-dialog OPTIONS, 422 to a session interval below Min-SE (RFC 4028); it retransmits
a 2xx it sent until the ACK (13.3.1.4) and ends the dialog with BYE when none comes in
64*T1; it matches ACKs to 2xx, ACKs the peer's 2xx and resends that ACK when the 2xx is
retransmitted (13.2.2.4); it refreshes the remote target on re-INVITE/UPDATE (12.2); and it
runs RFC 4028 session timers: refreshing with UPDATE when we are the refresher, ending the
dialog with BYE when the peer's refresh does not come. The events it hands up are in
:mod:`softswitch.sip.session`; transaction events that belong to no dialog (REGISTER,
out-of-dialog OPTIONS, CANCEL, responses to transactions other owners started) are passed
up unchanged.

Over 600 lines because it is one state machine over one table. The UAS and UAC
halves share the session table, the timer heap and the event queue, and each answers for
the other (a BYE we send ends what a 2xx we received started); split apart, each half would
reach into the other's internals. What is pure (sessions, events, RFC 4028 arithmetic)
already lives in softswitch.sip.session and softswitch.sip.session_timer.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from softswitch.sip.address import Address
from softswitch.sip.dialog import Dialog, DialogState, uri_address
from softswitch.sip.layer import SipLayer
from softswitch.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    make_cancel,
    make_response,
    new_tag,
    via_value,
)
from softswitch.sip.session import (
    AckReceived,
    DialogEnded,
    DialogEvent,
    InDialogRequest,
    InDialogResponse,
    InviteReceived,
    InviteSession,
    LegAnswered,
    LegFailed,
    LegProgress,
    OutgoingInvite,
)
from softswitch.sip.session_timer import (
    MIN_SE,
    add_session_timer,
    expiry_delay,
    keep_session_timer,
    session_expires,
    too_short,
)
from softswitch.sip.timers import TimerEntry, TimerHeap
from softswitch.sip.transaction import (
    ClientTransaction,
    Event,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    Transaction,
    TransactionLayer,
    TransactionTimeout,
    TransportFailed,
    TxState,
)

__all__ = ["DialogLayer"]

_TERMINATED = DialogState.TERMINATED
_CONFIRMED = DialogState.CONFIRMED
# Timer kinds of the layer's own heap.
_RTX_2XX, _REFRESH, _EXPIRY = "2xx", "refresh", "expiry"


class _InDialog:
    """``app_data`` of a client transaction the layer sent in a session."""

    __slots__ = ("answered", "app_data", "auto_ack", "purpose", "session")

    def __init__(
        self, session: InviteSession, purpose: str, auto_ack: bool, app_data: Any = None
    ) -> None:
        self.session = session
        self.purpose = purpose  # "tu" (reported), "refresh" (session timer) or "bye"
        self.auto_ack = auto_ack
        self.app_data = app_data  # the TU's, handed back in InDialogResponse
        self.answered = False


class DialogLayer(SipLayer):
    """The dialog table over a :class:`TransactionLayer`; see the module docstring.

    ``local`` gives our host and port towards a destination (for Via); ``allow`` is the
    Allow value of our 200 to in-dialog OPTIONS; ``server_header`` goes into the layer's
    own answers; ``min_se`` is the smallest session interval accepted (RFC 4028). With
    ``answer_no_dialog`` off, a request with a To tag that matches no session is handed up
    as the transaction layer's ``RequestReceived`` instead of answered 481 here, for a TU
    that answers such requests by its own rules (a switch: 501 to an unknown method, 200 to
    OPTIONS, 405 to the rest, whatever the tag says).
    """

    def __init__(
        self,
        transactions: TransactionLayer,
        *,
        local: Callable[[Address], tuple[str, int]],
        allow: str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, REFER",
        server_header: str | None = None,
        min_se: int = MIN_SE,
        answer_no_dialog: bool = True,
    ) -> None:
        self.transactions = transactions
        self.answer_no_dialog = answer_no_dialog
        self.timers = transactions.timers
        self.local = local
        self.allow = allow
        self.server_header = server_header
        self.min_se = min_se
        self._sessions: dict[tuple[str, str, str], InviteSession] = {}
        self._heap = TimerHeap()
        self._events: deque[DialogEvent | Event] = deque()
        self._now = 0.0

    # ----------------------------------------------------------------- introspection
    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def timer_count(self) -> int:
        """Live timers of the layer itself (the transaction layer counts its own)."""
        return len(self._heap)

    def find(self, call_id: str, local_tag: str, remote_tag: str | None) -> InviteSession | None:
        """The live session with these identifiers, if any."""
        return self._sessions.get((call_id, local_tag, remote_tag or ""))

    # ----------------------------------------------------------------- verbs
    def receive_message(
        self, message: SipRequest | SipResponse, source: Address, now: float
    ) -> None:
        """Feed a parsed message (it goes through the transaction layer first)."""
        self.transactions.receive_message(message, source, now)
        self._pull(now)

    def transport_error(self, dest: Address, now: float) -> None:
        """The transport could not reach ``dest``."""
        self.transactions.transport_error(dest, now)
        self._pull(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Drain what the layers want sent, as ``(bytes, destination)``."""
        return self.transactions.datagrams_to_send(now)

    def get_timer(self) -> float | None:
        """Earliest deadline of this layer or the one below."""
        ours = self._heap.next_deadline()
        theirs = self.transactions.get_timer()
        if ours is None:
            return theirs
        return ours if theirs is None or ours < theirs else theirs

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``, the transaction layer's included."""
        self.transactions.handle_timer(now)
        self._pull(now)
        self._now = now
        heap = self._heap
        while True:
            payload = heap.pop_due(now)
            if payload is None:
                return
            session, kind = payload
            self._fire(session, kind, now)

    def next_event(self) -> DialogEvent | Event | None:
        """Pop the next event for the TU, or None."""
        events = self._events
        return events.popleft() if events else None

    # ----------------------------------------------------------------- TU: UAS side
    def answer(
        self, tx: ServerTransaction, response: SipResponse, now: float, app_data: Any = None
    ) -> InviteSession | None:
        """Send ``response`` through ``tx``, the server transaction of an INVITE, UPDATE or
        any request in a session. A 2xx to an initial INVITE creates the session (returned;
        ``app_data`` is kept on it); a 2xx to an INVITE is retransmitted until its ACK; a
        2xx to INVITE/UPDATE (re)starts the session timer, with Session-Expires and
        Require: timer added when the request asked for a timer and the TU did not answer
        one. Returns the session the request belongs to, if any."""
        request = tx.request
        status = response.status
        method = request.method
        to = request.to
        initial = method == "INVITE" and (to is None or not to.tag)
        refresh = 200 <= status < 300 and method in ("INVITE", "UPDATE")
        if refresh:
            add_session_timer(request, response)
        session: InviteSession | None
        if not initial:
            session = self._session_of(request)
            if refresh and session is not None and session.session_interval is not None:
                # RFC 4028 9: a refresh that names no interval keeps the dialog's, with the
                # same refresher (named by role in this transaction, where we are the UAS).
                keep_session_timer(response, session.session_interval, session.refresher)
        else:
            session = None
            if 200 <= status < 300:
                local_tag = response.to_tag
                if not local_tag:
                    raise ValueError("a 2xx that creates a dialog needs a To tag")
                dialog = Dialog.from_uas(request, local_tag, response.get("Contact") or "")
                session = InviteSession(dialog, tx.source, True, app_data)
                self._sessions[session.key] = session
        self.transactions.send_response(tx, response, now)
        if session is None:
            return None
        if method == "INVITE" and status >= 200:
            session._uas_invite = None
        if refresh:
            self._start_session_timer(session, response, True, now)
        if method == "INVITE" and 200 <= status < 300:
            cseq = request.cseq
            self._start_2xx(session, tx, response, cseq[0] if cseq else 0, now)
        return session

    # ----------------------------------------------------------------- TU: UAC side
    def send_invite(
        self,
        request: SipRequest,
        dest: Address,
        now: float,
        app_data: Any = None,
        *,
        auto_ack: bool = True,
    ) -> OutgoingInvite:
        """Send an initial INVITE; its provisional, 2xx and failure come back as
        :class:`LegProgress`, :class:`LegAnswered` and :class:`LegFailed`. With
        ``auto_ack`` the layer ACKs each 2xx at once; without, the TU calls :meth:`ack`
        (a 2xx carrying an offer is ACKed with the answer)."""
        tx = self.transactions.send_request(request, dest, now, owner=self)
        invite = OutgoingInvite(request, dest, tx, app_data, auto_ack)
        tx.app_data = invite
        return invite

    def request(
        self,
        session: InviteSession,
        method: str,
        now: float,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        max_forwards: int = 70,
        auto_ack: bool = True,
        app_data: Any = None,
    ) -> ClientTransaction:
        """Send a request in ``session`` (re-INVITE, UPDATE, INFO, REFER, NOTIFY...); its
        final outcome comes back as :class:`InDialogResponse` carrying ``app_data``. A 2xx
        to a re-INVITE is ACKed at once with ``auto_ack``, else by the TU (:meth:`ack`).
        Use :meth:`bye` for BYE."""
        return self._send_in_dialog(
            session,
            method,
            now,
            "tu",
            auto_ack,
            body,
            content_type,
            headers,
            max_forwards,
            app_data,
        )

    def cancel(
        self, invite: OutgoingInvite, now: float, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Give up on an outgoing INVITE: CANCEL it now, or once a provisional response
        shows the callee has it (RFC 3261 9.1). It then ends with :class:`LegFailed` (487,
        or 408 when nothing ever answers); a 2xx that crosses the CANCEL still gives
        :class:`LegAnswered`, which the TU ends with :meth:`bye`."""
        if invite.done or invite.cancel_headers is not None:
            return
        invite.cancel_headers = tuple(headers)
        tx = invite.transaction
        if tx is not None and tx.state is TxState.PROCEEDING:
            self._send_cancel(invite, now)

    def _send_cancel(self, invite: OutgoingInvite, now: float) -> None:
        if invite.cancel_sent or invite.cancel_headers is None:
            return
        invite.cancel_sent = True
        cancel = make_cancel(invite.request, invite.cancel_headers)
        tx = self.transactions.send_request(cancel, invite.dest, now, owner=self)
        tx.app_data = invite  # its 200 (or its timeout) needs nothing: see on_response

    def ack(
        self,
        session: InviteSession,
        now: float,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        """ACK the last 2xx to an INVITE of ours in ``session`` (kept, and resent when
        that 2xx is retransmitted)."""
        dest = self.destination(session)
        ack = session.dialog.build_ack(session._ack_cseq, self._via(dest), body, content_type)
        session._ack = ack
        self.transactions.send_stateless(ack, dest)

    def bye(
        self, session: InviteSession, now: float, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """End ``session`` with a BYE; requests arriving in it afterwards get 481. A 2xx of
        ours still waiting for its ACK holds the BYE back until the ACK (or its timeout)
        comes (RFC 3261 15)."""
        if session.state is _TERMINATED or session._bye_headers is not None:
            return
        if session._ack_wait is not None:
            session._bye_headers = tuple(headers)
            return
        self._bye_now(session, now, headers)

    def _bye_now(
        self, session: InviteSession, now: float, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        self._send_in_dialog(session, "BYE", now, "bye", False, b"", None, headers, 70)
        self._end(session)

    def destination(self, session: InviteSession) -> Address:
        """Where requests of ``session`` go: its first route, else the peer address."""
        dialog = session.dialog
        if dialog.route_set:
            try:
                return uri_address(dialog.next_hop_uri())
            except SipParseError:
                pass
        return session.peer

    # ----------------------------------------------------------------- owner of our txs
    def on_response(self, response: SipResponse, transaction: ClientTransaction) -> None:
        """A response to a transaction the layer sent (see ``TransactionOwner``)."""
        app = transaction.app_data
        if isinstance(app, OutgoingInvite):
            if transaction.method == "INVITE":
                self._invite_response(app, response, self._now)
        elif isinstance(app, _InDialog):
            self._in_dialog_response(app, response, transaction, self._now)

    def on_transaction_failed(self, transaction: Transaction, timeout: bool) -> None:
        """Timer B/F or a transport failure on a transaction the layer sent."""
        app = transaction.app_data
        status = 408 if timeout else 503
        now = self._now
        if isinstance(app, OutgoingInvite):
            if transaction.method == "INVITE" and not app.done:
                app.done = True
                app.transaction = None  # see OutgoingInvite
                self._drop_early(app, None)
                reason = "Request Timeout" if timeout else "Service Unavailable"
                self._events.append(LegFailed(app, status, reason, None))
        elif isinstance(app, _InDialog) and isinstance(transaction, ClientTransaction):
            session = app.session
            if transaction.is_invite and session._uac_invite is transaction:
                session._uac_invite = None
            if app.purpose == "tu":
                self._events.append(
                    InDialogResponse(session, transaction, None, status, app.app_data)
                )
            if timeout and app.purpose != "bye" and session.state is not _TERMINATED:
                self._end_by_us(session, "terminated", 408, now, send_bye=True)

    # ----------------------------------------------------------------- transaction events
    def _pull(self, now: float) -> None:
        self._now = now
        transactions = self.transactions
        event = transactions.next_event()
        while event is not None:
            self._on_event(event, now)
            event = transactions.next_event()

    def _on_event(self, event: Event, now: float) -> None:
        if isinstance(event, RequestReceived):
            request = event.request
            tx = event.transaction
            if tx is None:
                self._on_ack(request)
                return
            to = request.to
            if to is not None and to.tag and request.method != "REGISTER":
                if self._on_in_dialog(request, tx, now):
                    return
            elif request.method == "INVITE":
                if self._session_too_short(request, tx, now):
                    return
                self._events.append(InviteReceived(request, event.source, tx))
                return
        # Our own transactions' outcomes, called directly rather than through ``deliver``
        # (a native call when compiled).
        elif isinstance(event, ResponseReceived) and event.transaction.owner is self:
            self.on_response(event.response, event.transaction)
            return
        elif (
            isinstance(event, (TransactionTimeout, TransportFailed))
            and event.transaction.owner is self
        ):
            self.on_transaction_failed(event.transaction, isinstance(event, TransactionTimeout))
            return
        self._events.append(event)

    def _on_ack(self, request: SipRequest) -> None:
        session = self._session_of(request)
        if session is None or session._ack_wait is None:
            return  # a retransmitted ACK, or one for nothing we know: absorbed
        cseq = request.cseq
        if cseq is None or cseq[0] != session._ack_wait[0]:
            return
        session._ack_wait = None
        self._cancel(session._rtx_entry)
        session._rtx_entry = None
        if session._bye_headers is not None:  # the TU hung up meanwhile: now the BYE
            self._bye_now(session, self._now, session._bye_headers)
            return
        self._events.append(AckReceived(session, request))

    def _on_in_dialog(self, request: SipRequest, tx: ServerTransaction, now: float) -> bool:
        """Handle a request with a To tag; False: it is in no session and goes up as is."""
        session = self._session_of(request)
        if session is None and not self.answer_no_dialog:
            return False
        if session is None or session.state is _TERMINATED or session._bye_headers is not None:
            self._respond(tx, 481, "Call/Transaction Does Not Exist", now)
            return True
        dialog = session.dialog
        if not dialog.accept_cseq(request):
            self._respond(tx, 500, "CSeq Out of Order", now)
            return True
        method = request.method
        if method == "BYE":
            self._respond(tx, 200, "OK", now)
            self._end(session)
            self._events.append(DialogEnded(session, "bye", 200, request))
            return True
        if method == "OPTIONS":
            self._respond(tx, 200, "OK", now, (("Allow", self.allow),))
            return True
        if method == "INVITE":
            # Read from the transactions' states, so an INVITE that ended without the TU
            # (timed out, or answered straight through the transaction layer) never blocks.
            ours = session._uac_invite
            if ours is not None and ours.state in (TxState.CALLING, TxState.PROCEEDING):
                self._respond(tx, 491, "Request Pending", now)  # RFC 3261 14.1
                return True
            theirs = session._uas_invite
            if theirs is not None and theirs.state is TxState.PROCEEDING:
                # 14.2: an INVITE still unanswered; try again in 0-10 s.
                retry = (("Retry-After", str(random.randint(0, 10))),)
                self._respond(tx, 500, "Server Internal Error", now, retry)
                return True
        if method in ("INVITE", "UPDATE"):
            if self._session_too_short(request, tx, now):
                return True
            dialog.refresh_target(request)
            if method == "INVITE":
                session._uas_invite = tx
        self._events.append(InDialogRequest(session, request, tx))
        return True

    def _invite_response(self, invite: OutgoingInvite, response: SipResponse, now: float) -> None:
        status = response.status
        try:
            tag = response.to_tag
        except SipParseError:
            tag = None
        if status < 200:
            if invite.done:
                return
            session = None
            if tag:
                session = invite.sessions.get(tag)
                if session is None:
                    session = self._uac_session(invite, response, tag)
            if invite.cancel_headers is not None:
                self._send_cancel(invite, now)  # the TU gave up before this provisional
                return
            self._events.append(LegProgress(invite, response, session))
        elif status < 300:
            tag = tag or ""
            if tag in invite.ended:  # the 2xx again, its session since ended: ACK only
                resend = invite.ended[tag]
                if resend is not None:
                    self.transactions.send_stateless(*resend)
                return
            session = invite.sessions.get(tag)
            if session is not None and session.state is _CONFIRMED:
                if session._ack is not None:  # the 2xx again: our ACK was lost
                    self.transactions.send_stateless(session._ack, self.destination(session))
                return
            if session is not None:
                session.dialog.confirm(response)  # the early dialog, same tags
            else:
                session = self._uac_session(invite, response, tag)
            if not invite.done:
                invite.done = True
                invite.transaction = None  # see OutgoingInvite
                self._drop_early(invite, tag)
            cseq = invite.request.cseq
            session._ack_cseq = cseq[0] if cseq else 1
            self._start_session_timer(session, response, False, now)
            if invite.auto_ack:
                self.ack(session, now)
            self._events.append(LegAnswered(invite, session, response))
        elif not invite.done:
            invite.done = True
            invite.transaction = None  # see OutgoingInvite
            self._drop_early(invite, None)
            self._events.append(LegFailed(invite, status, response.reason, response))

    def _in_dialog_response(
        self, app: _InDialog, response: SipResponse, tx: ClientTransaction, now: float
    ) -> None:
        status = response.status
        if status < 200:
            return
        session = app.session
        method = tx.method
        if method == "INVITE":
            if app.answered:
                if 200 <= status < 300 and session._ack is not None:
                    self.transactions.send_stateless(session._ack, self.destination(session))
                return
            if session._uac_invite is tx:
                session._uac_invite = None
        app.answered = True
        if 200 <= status < 300 and method in ("INVITE", "UPDATE"):
            session.dialog.refresh_target(response)
            self._start_session_timer(session, response, False, now)
            if method == "INVITE":
                cseq = tx.request.cseq
                session._ack_cseq = cseq[0] if cseq else 0
                session._ack = None
                if app.auto_ack:
                    self.ack(session, now)
        if app.purpose == "tu":
            self._events.append(InDialogResponse(session, tx, response, status, app.app_data))
        if status in (408, 481) and app.purpose != "bye" and session.state is not _TERMINATED:
            # RFC 3261 12.2.1.2: the dialog is gone on the other side (481) or unreachable.
            self._end_by_us(session, "terminated", status, now, send_bye=status == 408)

    # ----------------------------------------------------------------- sessions
    def _session_of(self, message: SipRequest | SipResponse) -> InviteSession | None:
        try:
            to = message.to
            from_ = message.from_
        except SipParseError:
            return None
        if to is None or from_ is None:
            return None
        return self._sessions.get((message.call_id or "", to.tag or "", from_.tag or ""))

    def _uac_session(
        self, invite: OutgoingInvite, response: SipResponse, tag: str
    ) -> InviteSession:
        dialog = Dialog.from_uac(invite.request, response, invite.request.get("Contact") or "")
        session = InviteSession(dialog, invite.dest, False, invite.app_data)
        session.invite = invite
        invite.sessions[tag] = session
        self._sessions[session.key] = session
        return session

    def _drop_early(self, invite: OutgoingInvite, keep: str | None) -> None:
        """Forget the early dialogs of ``invite`` (all but the To tag ``keep``)."""
        for tag, session in list(invite.sessions.items()):
            if tag != keep and session.state is DialogState.EARLY:
                self._end(session)

    def _end(self, session: InviteSession) -> None:
        session.dialog.state = _TERMINATED
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
        invite = session.invite
        if invite is not None:
            for tag, value in list(invite.sessions.items()):
                if value is session:
                    del invite.sessions[tag]
                    if session._ack_cseq:  # it was confirmed
                        ack = session._ack
                        resend = None if ack is None else (ack, self.destination(session))
                        invite.ended[tag] = resend
        session._ack_wait = None
        for entry in (session._rtx_entry, session._refresh_entry, session._session_entry):
            self._cancel(entry)
        session._rtx_entry = session._refresh_entry = session._session_entry = None

    def _end_by_us(
        self, session: InviteSession, reason: str, status: int, now: float, *, send_bye: bool
    ) -> None:
        if send_bye and session.state is _CONFIRMED:
            self._bye_now(session, now, session._bye_headers or ())
        self._end(session)
        self._events.append(DialogEnded(session, reason, status))

    def _send_in_dialog(
        self,
        session: InviteSession,
        method: str,
        now: float,
        purpose: str,
        auto_ack: bool,
        body: bytes,
        content_type: str | None,
        headers: Iterable[tuple[str, str]],
        max_forwards: int,
        app_data: Any = None,
    ) -> ClientTransaction:
        if session.state is _TERMINATED:
            raise ValueError(f"{session!r} has ended")
        dest = self.destination(session)
        request = session.dialog.build_request(
            method,
            self._via(dest),
            body=body,
            content_type=content_type,
            headers=headers,
            max_forwards=max_forwards,
        )
        tx = self.transactions.send_request(request, dest, now, owner=self)
        tx.app_data = _InDialog(session, purpose, auto_ack, app_data)
        if method == "INVITE":
            session._uac_invite = tx
        return tx

    def _via(self, dest: Address) -> str:
        host, port = self.local(dest)
        return via_value(dest.transport, host, port)

    def _respond(
        self,
        tx: ServerTransaction,
        status: int,
        reason: str,
        now: float,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        response = make_response(tx.request, status, reason, to_tag=new_tag(), headers=headers)
        if self.server_header is not None:
            response.add("Server", self.server_header)
        self.transactions.send_response(tx, response, now)

    # ----------------------------------------------------------------- 2xx until ACK
    def _start_2xx(
        self,
        session: InviteSession,
        tx: ServerTransaction,
        response: SipResponse,
        cseq: int,
        now: float,
    ) -> None:
        timers = self.timers
        self._cancel(session._rtx_entry)
        session._ack_wait = (cseq, tx, response)
        session._ack_deadline = now + timers.timeout
        # On a reliable transport the 2xx arrives; only the wait for the ACK is bounded.
        if tx.reliable:
            session._ack_interval = timers.timeout
            session._rtx_entry = self._heap.push(session._ack_deadline, (session, _RTX_2XX))
        else:
            session._ack_interval = timers.t1
            session._rtx_entry = self._heap.push(now + timers.t1, (session, _RTX_2XX))

    def _fire(self, session: InviteSession, kind: str, now: float) -> None:
        if kind == _RTX_2XX:
            session._rtx_entry = None
            wait = session._ack_wait
            if wait is None or session.state is _TERMINATED:
                return
            if now >= session._ack_deadline:
                # 13.3.1.4: the dialog is confirmed, but the session should end with a BYE.
                session._ack_wait = None
                if session._bye_headers is not None:  # the TU ended it already
                    self._bye_now(session, now, session._bye_headers)
                else:
                    self._end_by_us(session, "ack_timeout", 408, now, send_bye=True)
                return
            _, tx, response = wait
            self.transactions.send_response(tx, response, now)
            interval = min(2 * session._ack_interval, self.timers.t2)
            session._ack_interval = interval
            deadline = min(now + interval, session._ack_deadline)
            session._rtx_entry = self._heap.push(deadline, (session, _RTX_2XX))
        elif kind == _REFRESH:
            session._refresh_entry = None
            current = session.session_interval
            if current is None or session.state is not _CONFIRMED:
                return
            headers = (
                ("Session-Expires", f"{current};refresher=uac"),
                ("Supported", "timer"),
            )
            self._send_in_dialog(session, "UPDATE", now, "refresh", False, b"", None, headers, 70)
        elif kind == _EXPIRY:
            session._session_entry = None
            if session.state is not _TERMINATED:
                self._end_by_us(session, "session_expired", 408, now, send_bye=True)

    # ----------------------------------------------------------------- RFC 4028
    def _session_too_short(self, request: SipRequest, tx: ServerTransaction, now: float) -> bool:
        if not too_short(request, self.min_se):
            return False
        self._respond(tx, 422, "Session Interval Too Small", now, (("Min-SE", str(self.min_se)),))
        return True

    def _start_session_timer(
        self, session: InviteSession, response: SipResponse, answered: bool, now: float
    ) -> None:
        """(Re)start the session timer from a 2xx we sent (``answered``) or received."""
        self._cancel(session._refresh_entry)
        self._cancel(session._session_entry)
        session._refresh_entry = session._session_entry = None
        expires = session_expires(response)
        if expires is None:
            session.session_interval = None
            session.refresher = False
            return
        interval = expires.interval
        session.session_interval = interval
        # The refresher is named by role in this transaction: we are the UAS of what we
        # answered and the UAC of what we sent.
        session.refresher = expires.refresher == ("uas" if answered else "uac")
        heap = self._heap
        if session.refresher:
            session._refresh_entry = heap.push(now + interval / 2, (session, _REFRESH))
        session._session_entry = heap.push(now + expiry_delay(interval), (session, _EXPIRY))

    def _cancel(self, entry: TimerEntry | None) -> None:
        if entry is not None:
            self._heap.cancel(entry)
