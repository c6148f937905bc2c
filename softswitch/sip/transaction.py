"""Sans-I/O SIP transaction layer: RFC 3261 section 17 with the RFC 6026 Accepted states.

Driven like aioquic's connection object::

    layer.receive_message(msg, source, now)        # parsed message from the transport
    layer.send_request(request, dest, now, owner)  # TU starts a client transaction
    layer.send_response(tx, response, now)         # TU answers through a server transaction
    for data, dest in layer.datagrams_to_send(now): transport.send(data, dest)
    deadline = layer.get_timer(); ... layer.handle_timer(now)
    while (event := layer.next_event()) is not None: ...

A client transaction knows its owner (``TransactionOwner``: whoever sent the request); its
responses and failure are handed to it (``deliver``) rather than offered around the TU.

Besides the four state machines the layer does the per-request chores the RFC puts just
below the TU: Via ``received``/``rport`` stamping (18.2.1, RFC 3581), response routing
(18.2.2), 100 Trying for INVITE, ACK for non-2xx finals, 200/481 for CANCEL (9.2), 482 for
merged requests (8.2.2.2) and RFC 2543 matching (17.2.3). Every table entry always holds a
timer that ends it, so the table drains to zero once traffic stops.

Over 600 lines because it is the four transaction state machines of RFC 3261 17 over
one table, one timer heap and one event queue, as the sans-I/O layer the driver runs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from softswitch.sip.address import Address
from softswitch.sip.layer import SipLayer
from softswitch.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    Via,
    make_response,
    new_tag,
)
from softswitch.sip.timers import TimerEntry, TimerHeap, TimerSettings

__all__ = [
    "MAGIC_COOKIE",
    "CancelReceived",
    "ClientTransaction",
    "Event",
    "RequestReceived",
    "ResponseReceived",
    "ServerTransaction",
    "TimerSettings",
    "Transaction",
    "TransactionLayer",
    "TransactionOwner",
    "TransactionTimeout",
    "TransportFailed",
    "TxState",
    "deliver",
    "owner_of",
    "response_destination",
]

MAGIC_COOKIE = "z9hG4bK"


class TxState(StrEnum):
    """Transaction states (RFC 3261 figures 5-8, RFC 6026 Accepted)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


# Timer kinds. Retransmission timers live in Transaction._rtx, the one timer that ends (or
# moves on) the current state in Transaction._end; a transaction never needs more than two.
_A, _E, _G = "A", "E", "G"
_B, _D, _F, _H, _I, _J, _K, _L, _M = "B", "D", "F", "H", "I", "J", "K", "L", "M"
_GUARD = "guard"
_RTX_KINDS = frozenset({_A, _E, _G})

_CALLING = TxState.CALLING
_TRYING = TxState.TRYING
_PROCEEDING = TxState.PROCEEDING
_ACCEPTED = TxState.ACCEPTED
_COMPLETED = TxState.COMPLETED
_CONFIRMED = TxState.CONFIRMED
_TERMINATED = TxState.TERMINATED


class TransactionOwner(Protocol):
    """The part of the TU that started a client transaction (a call, the trunk registrar,
    the qualify pinger, the dialog layer): its responses and its failure are handed
    straight to it by whoever drains the layer's events (see :func:`owner_of`), instead
    of being offered to every part of the TU in turn. The return value is ignored."""

    def on_response(self, response: SipResponse, transaction: ClientTransaction) -> object: ...

    def on_transaction_failed(self, transaction: Transaction, timeout: bool) -> object: ...


class Transaction:
    """State shared by client and server transactions.

    ``owner`` receives the transaction's events (:class:`TransactionOwner`; None: the
    driver's default). ``app_data`` is free for the owner (e.g. the call leg).
    """

    __slots__ = (
        "_end",
        "_interval",
        "_quiet",
        "_rtx",
        "app_data",
        "branch",
        "is_invite",
        "key",
        "last_response",
        "method",
        "owner",
        "reliable",
        "state",
    )

    def __init__(
        self, request: SipRequest, key: tuple[Any, ...], branch: str, reliable: bool, state: TxState
    ) -> None:
        self.method: str = request.method
        self.is_invite = self.method == "INVITE"
        self.key = key
        self.branch = branch
        self.reliable = reliable
        self.state = state
        self.last_response: SipResponse | None = None
        self.app_data: Any = None
        self.owner: TransactionOwner | None = None
        self._rtx: TimerEntry | None = None
        self._end: TimerEntry | None = None
        self._interval = 0.0
        # Set once the TU was told the transaction is over (or never knew it): no more
        # TransactionTimeout/TransportFailed for it.
        self._quiet = False

    @property
    def terminated(self) -> bool:
        return self.state is _TERMINATED

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.branch} {self.state.value}>"


class ClientTransaction(Transaction):
    """A request the TU sent and the responses that came back (RFC 3261 17.1)."""

    __slots__ = ("_ack", "_cancel_sent", "_data", "dest", "request")

    def __init__(
        self,
        request: SipRequest,
        key: tuple[Any, ...],
        branch: str,
        dest: Address,
        state: TxState,
        data: bytes,
    ) -> None:
        super().__init__(request, key, branch, dest.reliable, state)
        # Kept for the whole life: the TU reads it when it handles a final response, which
        # it does after the transaction already moved on to Completed.
        self.request = request
        self.dest = dest
        self._data = data
        self._ack: bytes | None = None
        self._cancel_sent = False


class ServerTransaction(Transaction):
    """A request received and the responses the TU (or the layer) sent (RFC 3261 17.2).

    ``response_dest`` is where responses go (RFC 3261 18.2.2), fixed when the request
    arrives. ``internal`` transactions are the layer's own (481 to CANCEL, 482 to merged
    requests): the TU never sees them and they raise no events.

    A non-INVITE transaction that sent its final response only absorbs retransmissions
    until Timer J, from the response bytes it kept: it lets go of the request and response
    objects (``released`` turns True, ``last_response`` becomes None, ``request`` raises),
    so that tens of thousands of them waiting out Timer J are not walked by every garbage
    collection. INVITE transactions keep both (ACK and CANCEL matching read them).
    """

    __slots__ = ("_data", "_request", "internal", "merge_key", "response_dest", "source")

    def __init__(
        self,
        request: SipRequest,
        key: tuple[Any, ...],
        branch: str,
        source: Address,
        response_dest: Address,
        state: TxState,
        internal: bool = False,
    ) -> None:
        super().__init__(request, key, branch, source.reliable, state)
        self._request: SipRequest | None = request
        self.source = source
        self.response_dest = response_dest
        self.internal = internal
        self._quiet = internal
        self.merge_key: tuple[Any, ...] | None = None
        self._data: bytes | None = None

    @property
    def request(self) -> SipRequest:
        """The request this transaction answers.

        Raises :class:`RuntimeError` once a non-INVITE transaction was answered with a
        final response (``released``): nothing may be answered through it any more.
        """
        request = self._request
        if request is None:
            raise RuntimeError(f"{self!r}: request released after the final response")
        return request

    @property
    def released(self) -> bool:
        """True once the request and response objects were dropped (see the class)."""
        return self._request is None

    def _release(self) -> None:
        # Completed non-INVITE: retransmissions and Timer J need only the key, ``_data``,
        # ``response_dest``, ``merge_key`` and the state.
        self._request = None
        self.last_response = None


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU; ``transaction`` is None for an ACK to a 2xx."""

    request: SipRequest
    source: Address
    transaction: ServerTransaction | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response matched to a client transaction (retransmissions are absorbed, except
    2xx to INVITE, which the TU must ACK each time)."""

    response: SipResponse
    transaction: ClientTransaction


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched an INVITE still in Proceeding; the layer already answered it 200.

    The TU should now answer the INVITE with 487 Request Terminated.
    """

    cancel: SipRequest
    invite_transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B/F on a client, Timer H on a server, or the Proceeding guard (see
    :class:`TimerSettings`); the transaction is over unless noted in the layer docs."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The transport could not deliver a message of this transaction; it is terminated."""

    transaction: Transaction


Event = RequestReceived | ResponseReceived | CancelReceived | TransactionTimeout | TransportFailed


def owner_of(event: Event) -> TransactionOwner | None:
    """The owner a response or a failure goes to (None: no owner, or a request event)."""
    # Tuples, not unions: mypyc compiles a tuple of classes to native type checks.
    if isinstance(event, (ResponseReceived, TransactionTimeout, TransportFailed)):
        return event.transaction.owner
    return None


def deliver(event: Event, owner: TransactionOwner) -> None:
    """Hand a response, timeout or transport failure to ``owner``."""
    if isinstance(event, ResponseReceived):
        owner.on_response(event.response, event.transaction)
    elif isinstance(event, (TransactionTimeout, TransportFailed)):
        owner.on_transaction_failed(event.transaction, isinstance(event, TransactionTimeout))


def _strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _default_port(transport: str) -> int:
    return 5061 if transport.upper() in ("TLS", "WSS") else 5060


def response_destination(via: Via | None, source: Address) -> Address:
    """Where a response to a request with top Via ``via`` from ``source`` goes (18.2.2).

    Reliable transports: back on the connection the request came in on (``conn_id``); the
    host/port are the ones to reopen a connection to if it is gone (received + sent-by
    port). Unreliable: ``maddr``, else ``received`` (or the source host) with the ``rport``
    (RFC 3581) or sent-by port, else sent-by. A Via the layer never stamped is read as if
    it had been, so stateless answers to unparseable requests reach the sender too.
    """
    if via is None:
        return source
    params = via.params
    sent_by_port = via.port or _default_port(via.transport or source.transport)
    if source.reliable:
        return Address(source.transport, source.host, sent_by_port, source.conn_id)
    maddr = params.get("maddr")
    if maddr:
        return Address(source.transport, _strip_brackets(maddr), sent_by_port)
    received = via.received
    if "rport" in params:
        return Address(source.transport, received or source.host, via.rport or source.port)
    if received:
        return Address(source.transport, received, sent_by_port)
    if via.host != source.host:
        return Address(source.transport, source.host, sent_by_port)
    return Address(source.transport, via.host, sent_by_port)


def stamp_via(request: SipRequest, via: Via, source: Address) -> None:
    """Add ``received`` (and fill an empty ``rport``) to a request's top Via ``via`` as
    RFC 3261 18.2.1 and RFC 3581 section 4 ask (rport also forces received)."""
    params = via.params
    if "rport" in params and not params["rport"]:
        params["rport"] = str(source.port)
        params["received"] = source.host
    elif via.host != source.host:
        params["received"] = source.host
    else:
        return
    request.set_top_via(via)


class TransactionLayer(SipLayer):
    """The transaction table and its timers; see the module docstring for the verbs.

    ``detect_merged`` turns on the UAS check of RFC 3261 8.2.2.2 (482 Loop Detected); a
    stateful proxy built on this layer would turn it off.
    """

    def __init__(self, timers: TimerSettings | None = None, *, detect_merged: bool = True) -> None:
        self.timers = timers or TimerSettings()
        self.detect_merged = detect_merged
        self._clients: dict[tuple[Any, ...], ClientTransaction] = {}
        self._servers: dict[tuple[Any, ...], ServerTransaction] = {}
        self._merge_index: dict[tuple[Any, ...], ServerTransaction] = {}
        self._heap = TimerHeap()
        self._events: deque[Event] = deque()
        self._out: list[tuple[bytes, Address]] = []

    # ----------------------------------------------------------------- introspection
    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    def serves(self, request: SipRequest, source: Address) -> bool:
        """Whether a live server transaction already holds ``request`` (it is a
        retransmission); True too when that cannot be told cheaply (an RFC 2543 peer, a
        Via that does not parse), so the caller takes the stateful way."""
        try:
            via = request.top_via
        except (SipParseError, ValueError):
            return True
        if via is None or not (via.branch or "").startswith(MAGIC_COOKIE):
            return True
        port = via.port or _default_port(via.transport or source.transport)
        return (via.branch, via.host.lower(), port, request.method) in self._servers

    @property
    def transaction_count(self) -> int:
        """Live transactions, client and server (for leak checks)."""
        return len(self._clients) + len(self._servers)

    @property
    def timer_count(self) -> int:
        """Live timers (every live transaction has at least one)."""
        return len(self._heap)

    def find_client(self, branch: str, method: str) -> ClientTransaction | None:
        """The client transaction for a branch and method, if still alive."""
        return self._clients.get((branch, method))

    # ----------------------------------------------------------------- verbs
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Drain the messages to put on the wire, as ``(bytes, destination)``."""
        out = self._out
        self._out = []
        return out

    def next_event(self) -> Event | None:
        """Pop the next event for the TU, or None."""
        events = self._events
        return events.popleft() if events else None

    def get_timer(self) -> float | None:
        """Earliest deadline at which :meth:`handle_timer` must be called."""
        return self._heap.next_deadline()

    def send_stateless(self, message: SipRequest | SipResponse, dest: Address) -> None:
        """Send outside any transaction (ACK for 2xx, stateless forwarding)."""
        self._out.append((message.to_bytes(), dest))

    def send_stateless_response(
        self, response: SipResponse, source: Address, via: Via | None = None
    ) -> None:
        """Answer a request that has no transaction, routed per 18.2.2 from ``source``
        (straight back to ``source`` when the Via cannot be read, e.g. a 400 for it).

        ``via`` is the request's top Via as stamped (:func:`stamp_via`) when the caller
        has it at hand; it spares parsing the response's copy again."""
        if via is None:
            try:
                via = response.top_via
            except SipParseError:
                via = None
        self._out.append((response.to_bytes(), response_destination(via, source)))

    def send_request(
        self,
        request: SipRequest,
        dest: Address,
        now: float,
        owner: TransactionOwner | None = None,
    ) -> ClientTransaction:
        """Start a client transaction and send ``request``; the top Via must carry a
        unique RFC 3261 branch. ACK is not a transaction: use :meth:`send_stateless`.
        ``owner`` gets the transaction's responses and failure (see :func:`owner_of`)."""
        method = request.method
        if method == "ACK":
            raise ValueError("ACK is not a transaction; use send_stateless")
        via = request.top_via
        branch = via.branch if via is not None else None
        if not branch:
            raise ValueError("request needs a top Via with a branch parameter")
        key = (branch, method)
        if key in self._clients:
            raise ValueError(f"branch {branch!r} already in use for {method}")
        data = request.to_bytes()
        timers = self.timers
        if method == "INVITE":
            tx = ClientTransaction(request, key, branch, dest, _CALLING, data)
            if not dest.reliable:
                tx._interval = timers.t1
                tx._rtx = self._heap.push(now + timers.t1, (tx, _A))
            tx._end = self._heap.push(now + timers.timeout, (tx, _B))
        else:
            tx = ClientTransaction(request, key, branch, dest, _TRYING, data)
            if not dest.reliable:
                tx._interval = timers.t1
                tx._rtx = self._heap.push(now + timers.t1, (tx, _E))
            tx._end = self._heap.push(now + timers.timeout, (tx, _F))
            if method == "CANCEL":
                self._cancel_sent(branch, now)
        tx.owner = owner
        self._clients[key] = tx
        self._out.append((data, dest))
        return tx

    def send_response(self, tx: ServerTransaction, response: SipResponse, now: float) -> None:
        """Send ``response`` through ``tx``; what the state machine no longer accepts is
        dropped, except a 2xx to INVITE after the transaction ended, which is sent anyway
        (the TU retransmits 2xx itself)."""
        status = response.status
        state = tx.state
        if tx.is_invite:
            if state is _PROCEEDING:
                self._server_respond(tx, response)
                if status < 200:
                    self._set_end(tx, now + self.timers.proceeding_guard, _GUARD)
                elif status < 300:
                    tx.state = _ACCEPTED
                    self._set_end(tx, now + self.timers.timeout, _L)
                else:
                    self._invite_server_completed(tx, now)
            elif 200 <= status < 300 and state in (_ACCEPTED, _TERMINATED):
                self._out.append((response.to_bytes(), tx.response_dest))
        elif state is _TRYING or state is _PROCEEDING:
            self._server_respond(tx, response)
            if status < 200:
                tx.state = _PROCEEDING
            else:
                tx.state = _COMPLETED
                tx._release()
                if tx.reliable:
                    self._terminate(tx)
                else:
                    self._set_end(tx, now + self.timers.timeout, _J)

    def transport_error(self, dest: Address, now: float) -> None:
        """The transport failed to reach ``dest``: every transaction sending there fails."""
        failed: list[Transaction] = []
        for ctx in self._clients.values():
            if _same_peer(ctx.dest, dest):
                failed.append(ctx)
        for stx in self._servers.values():
            if _same_peer(stx.response_dest, dest) or _same_peer(stx.source, dest):
                failed.append(stx)
        for tx in failed:
            self._terminate(tx)
            self._report(tx, TransportFailed(tx))

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        heap = self._heap
        while True:
            payload = heap.pop_due(now)
            if payload is None:
                return
            tx, kind = payload
            if kind in _RTX_KINDS:
                tx._rtx = None
                self._fire_retransmit(tx, kind, now)
            else:
                tx._end = None
                self._fire_end(tx, kind, now)

    def receive_message(
        self, message: SipRequest | SipResponse, source: Address, now: float
    ) -> None:
        """Feed a parsed message that arrived from ``source``."""
        if isinstance(message, SipResponse):
            self._receive_response(message, now)
        else:
            self._receive_request(message, source, now)

    # ----------------------------------------------------------------- client side
    def _receive_response(self, response: SipResponse, now: float) -> None:
        try:
            via = response.top_via
            cseq = response.cseq
        except (SipParseError, ValueError):
            return
        if via is None or cseq is None or not via.branch:
            return
        tx = self._clients.get((via.branch, cseq[1]))
        if tx is None:
            return  # RFC 3261 18.1.2: stray responses are discarded
        status = response.status
        state = tx.state
        timers = self.timers
        if tx.is_invite:
            if state is _CALLING or state is _PROCEEDING:
                tx.last_response = response
                self._cancel_rtx(tx)
                if status < 200:
                    if state is _CALLING or not tx._cancel_sent:
                        tx.state = _PROCEEDING
                        deadline = now + timers.proceeding_guard
                        if tx._cancel_sent:
                            deadline = min(deadline, now + timers.timeout)
                        self._set_end(tx, deadline, _GUARD)
                elif status < 300:
                    tx.state = _ACCEPTED
                    self._set_end(tx, now + timers.timeout, _M)
                else:
                    tx.state = _COMPLETED
                    ack = self._build_ack(tx, response)
                    tx._ack = ack
                    self._out.append((ack, tx.dest))
                    if tx.reliable:
                        self._terminate(tx)
                    else:
                        self._set_end(tx, now + timers.timer_d, _D)
                self._events.append(ResponseReceived(response, tx))
            elif state is _ACCEPTED:
                if 200 <= status < 300:
                    self._events.append(ResponseReceived(response, tx))
            elif state is _COMPLETED and status >= 300 and tx._ack is not None:
                self._out.append((tx._ack, tx.dest))
        elif state is _TRYING or state is _PROCEEDING:
            tx.last_response = response
            if status < 200:
                tx.state = _PROCEEDING
            else:
                tx.state = _COMPLETED
                self._cancel_rtx(tx)
                if tx.reliable:
                    self._terminate(tx)
                else:
                    self._set_end(tx, now + timers.t4, _K)
            self._events.append(ResponseReceived(response, tx))

    def _cancel_sent(self, branch: str, now: float) -> None:
        # RFC 3261 9.1: with no final answer 64*T1 after the CANCEL, the INVITE client
        # transaction is considered cancelled and destroyed.
        invite = self._clients.get((branch, "INVITE"))
        if invite is None or invite._cancel_sent:
            return
        invite._cancel_sent = True
        if invite.state is _PROCEEDING:
            end = invite._end
            deadline = now + self.timers.timeout
            if end is None or end[0] > deadline:
                self._set_end(invite, deadline, _GUARD)

    @staticmethod
    def _build_ack(tx: ClientTransaction, response: SipResponse) -> bytes:
        # RFC 3261 17.1.1.3: same Request-URI, Call-ID, From, CSeq number and Route set as the
        # INVITE, the INVITE's top Via only, and the To of the response (it has the tag).
        req = tx.request
        cseq = req.cseq
        number = cseq[0] if cseq is not None else 0
        lines = [
            f"ACK {req.uri} SIP/2.0",
            f"Via: {req.get_all('Via')[0]}",
            f"From: {req.get('From')}",
            f"To: {response.get('To')}",
            f"Call-ID: {req.get('Call-ID')}",
            f"CSeq: {number} ACK",
        ]
        lines.extend(f"Route: {route}" for route in req.get_all("Route"))
        lines.append("Max-Forwards: 70")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")

    # ----------------------------------------------------------------- server side
    def _receive_request(self, request: SipRequest, source: Address, now: float) -> None:
        method = request.method
        try:
            via = request.top_via
        except (SipParseError, ValueError):
            self._reject(request, source, 400, "Bad Via")
            return
        if via is None:
            return  # nowhere to send an answer
        branch = via.branch or ""
        rfc2543 = not branch.startswith(MAGIC_COOKIE)
        # RFC 2543 peers are matched on the whole top Via as they sent it.
        via_text = str(via) if rfc2543 else ""
        # Stamp before reading From/To/CSeq: stamping rewrites the header list, which drops
        # the message's parsed views, and the TU would otherwise parse them all twice.
        stamp_via(request, via, source)
        try:
            call_id = request.call_id
            cseq = request.cseq
            from_ = request.from_
            to = request.to
        except (SipParseError, ValueError) as exc:
            self._reject(
                request,
                source,
                400,
                exc.reason if isinstance(exc, SipParseError) else "Bad Request",
            )
            return
        if call_id is None or cseq is None or from_ is None or to is None:
            missing = [
                name
                for name, value in (
                    ("Call-ID", call_id),
                    ("CSeq", cseq),
                    ("From", from_),
                    ("To", to),
                )
                if value is None
            ]
            self._reject(request, source, 400, f"Missing {', '.join(missing)}")
            return
        assert cseq is not None and from_ is not None and to is not None
        if cseq[1] != method:
            self._reject(request, source, 400, "CSeq Method Mismatch")
            return
        base: tuple[Any, ...]
        if rfc2543:
            # RFC 3261 17.2.3: Request-URI, From tag, Call-ID, CSeq number and top Via; the
            # To tag is part of the key, or for ACK compared with our response's.
            base = ("2543", request.uri, from_.tag, call_id, cseq[0], via_text)
        else:
            port = via.port or _default_port(via.transport or source.transport)
            base = (branch, via.host.lower(), port)
        if method == "ACK":
            self._receive_ack(request, source, via, base, rfc2543, to.tag, now)
        elif method == "CANCEL":
            self._receive_cancel(request, source, via, base, rfc2543, to.tag, now)
        else:
            key = (*base, to.tag, method) if rfc2543 else (*base, method)
            tx = self._servers.get(key)
            if tx is not None:
                self._absorb_retransmission(tx)
                return
            merge_key = None
            if to.tag is None:
                merge_key = (from_.tag, call_id, cseq[0], method)
                if self.detect_merged and merge_key in self._merge_index:
                    # RFC 3261 8.2.2.2: same request reached us by another path.
                    self._internal_answer(
                        request, via, source, key, branch, 482, "Loop Detected", now
                    )
                    return
            tx = self._new_server(request, via, source, key, branch)
            if merge_key is not None:
                tx.merge_key = merge_key
                self._merge_index[merge_key] = tx
            if tx.is_invite:
                # 8.2.6.1: a 100 Trying echoes the Timestamp header.
                timestamp = request.get("Timestamp")
                self._server_respond(
                    tx,
                    make_response(
                        request,
                        100,
                        "Trying",
                        headers=(("Timestamp", timestamp),) if timestamp is not None else (),
                    ),
                )
                self._set_end(tx, now + self.timers.proceeding_guard, _GUARD)
            else:
                # The client gives up after Timer F (64*T1): a TU that has not answered by
                # then never will usefully, so that bounds the Trying state.
                self._set_end(tx, now + self.timers.timeout, _GUARD)
            self._events.append(RequestReceived(request, source, tx))

    def _receive_ack(
        self,
        request: SipRequest,
        source: Address,
        via: Via,
        base: tuple[Any, ...],
        rfc2543: bool,
        to_tag: str | None,
        now: float,
    ) -> None:
        tx: ServerTransaction | None
        if rfc2543:
            # The INVITE carried no To tag (initial) or the dialog's (re-INVITE).
            tx = self._servers.get((*base, None, "INVITE"))
            if tx is None and to_tag is not None:
                tx = self._servers.get((*base, to_tag, "INVITE"))
            if tx is not None:
                last = tx.last_response
                last_tag = last.to.tag if last is not None and last.to is not None else None
                if last_tag != to_tag:
                    tx = None
        else:
            tx = self._servers.get((*base, "INVITE"))
        if tx is not None:
            state = tx.state
            if state is _COMPLETED:
                tx.state = _CONFIRMED
                self._cancel_rtx(tx)
                if tx.reliable:
                    self._terminate(tx)
                else:
                    self._set_end(tx, now + self.timers.t4, _I)
                return
            if state is not _ACCEPTED:
                return  # Confirmed: absorbed; Proceeding: an ACK before any final is bogus
        self._events.append(RequestReceived(request, source, None))

    def _receive_cancel(
        self,
        request: SipRequest,
        source: Address,
        via: Via,
        base: tuple[Any, ...],
        rfc2543: bool,
        to_tag: str | None,
        now: float,
    ) -> None:
        key = (*base, to_tag, "CANCEL") if rfc2543 else (*base, "CANCEL")
        own = self._servers.get(key)
        if own is not None:
            self._absorb_retransmission(own)
            return
        invite = self._servers.get((*base, to_tag, "INVITE") if rfc2543 else (*base, "INVITE"))
        if invite is None or invite.internal:
            self._internal_answer(
                request,
                via,
                source,
                key,
                via.branch or "",
                481,
                "Call/Transaction Does Not Exist",
                now,
            )
            return
        # RFC 3261 9.2: the To tag of the 200 should match the one the INVITE is answered with.
        last = invite.last_response
        tag = last.to.tag if last is not None and last.to is not None else None
        self._internal_answer(
            request, via, source, key, via.branch or "", 200, "OK", now, to_tag=tag
        )
        if invite.state is _PROCEEDING:
            self._events.append(CancelReceived(request, invite))

    def _internal_answer(
        self,
        request: SipRequest,
        via: Via,
        source: Address,
        key: tuple[Any, ...],
        branch: str,
        status: int,
        reason: str,
        now: float,
        to_tag: str | None = None,
    ) -> None:
        # A transaction of the layer's own, so retransmissions of the request are absorbed
        # and, for INVITE, the ACK to our final answer is too.
        tx = self._new_server(request, via, source, key, branch, internal=True)
        to = request.to
        if to_tag is None and (to is None or to.tag is None):
            to_tag = new_tag()
        response = make_response(request, status, reason, to_tag=to_tag)
        self._server_respond(tx, response)
        if tx.is_invite:
            self._invite_server_completed(tx, now)
        else:
            tx.state = _COMPLETED
            tx._release()
            if tx.reliable:
                self._terminate(tx)
            else:
                self._set_end(tx, now + self.timers.timeout, _J)

    def _new_server(
        self,
        request: SipRequest,
        via: Via | None,
        source: Address,
        key: tuple[Any, ...],
        branch: str,
        internal: bool = False,
    ) -> ServerTransaction:
        state = _PROCEEDING if request.method == "INVITE" else _TRYING
        dest = response_destination(via, source)
        tx = ServerTransaction(request, key, branch, source, dest, state, internal)
        self._servers[key] = tx
        return tx

    def _absorb_retransmission(self, tx: ServerTransaction) -> None:
        # 17.2.1/17.2.2: resend the last response, except where nothing was sent yet (Trying)
        # or the other side has what it needs (Confirmed; Accepted, where the TU resends 2xx).
        state = tx.state
        if tx._data is not None and state in (_PROCEEDING, _COMPLETED):
            self._out.append((tx._data, tx.response_dest))

    def _server_respond(self, tx: ServerTransaction, response: SipResponse) -> None:
        data = response.to_bytes()
        tx.last_response = response
        tx._data = data
        self._out.append((data, tx.response_dest))

    def _invite_server_completed(self, tx: ServerTransaction, now: float) -> None:
        tx.state = _COMPLETED
        timers = self.timers
        if not tx.reliable:
            tx._interval = timers.t1
            self._cancel_rtx(tx)
            tx._rtx = self._heap.push(now + timers.t1, (tx, _G))
        self._set_end(tx, now + timers.timeout, _H)

    def _reject(self, request: SipRequest, source: Address, status: int, reason: str) -> None:
        # Stateless: nothing about a malformed request can be trusted for matching.
        if request.method == "ACK":
            return
        try:
            response = make_response(request, status, reason, to_tag=new_tag())
            self.send_stateless_response(response, source)
        except (SipParseError, ValueError, TypeError, AttributeError):
            return

    # ----------------------------------------------------------------- timers
    def _set_end(self, tx: Transaction, deadline: float, kind: str) -> None:
        heap = self._heap
        if tx._end is not None:
            heap.cancel(tx._end)
        tx._end = heap.push(deadline, (tx, kind))

    def _cancel_rtx(self, tx: Transaction) -> None:
        if tx._rtx is not None:
            self._heap.cancel(tx._rtx)
            tx._rtx = None

    def _fire_retransmit(self, tx: Transaction, kind: str, now: float) -> None:
        timers = self.timers
        if kind == _A:
            assert isinstance(tx, ClientTransaction)
            if tx.state is not _CALLING:
                return
            self._out.append((tx._data, tx.dest))
            tx._interval *= 2  # Timer A is not capped by T2 (17.1.1.2)
        elif kind == _E:
            assert isinstance(tx, ClientTransaction)
            if tx.state is not _TRYING and tx.state is not _PROCEEDING:
                return
            self._out.append((tx._data, tx.dest))
            tx._interval = (
                timers.t2 if tx.state is _PROCEEDING else min(2 * tx._interval, timers.t2)
            )
        else:
            assert isinstance(tx, ServerTransaction)
            if tx.state is not _COMPLETED or tx._data is None:
                return
            self._out.append((tx._data, tx.response_dest))
            tx._interval = min(2 * tx._interval, timers.t2)
        tx._rtx = self._heap.push(now + tx._interval, (tx, kind))

    def _fire_end(self, tx: Transaction, kind: str, now: float) -> None:
        if kind in (_B, _F, _H):
            self._terminate(tx)
            self._report(tx, TransactionTimeout(tx))
        elif kind == _GUARD:
            if isinstance(tx, ServerTransaction) and tx.is_invite and tx.state is _PROCEEDING:
                # Nobody will ever answer: close the INVITE with 408 so the caller is freed,
                # and tell the TU; the transaction then ends like any non-2xx.
                self._server_respond(
                    tx, make_response(tx.request, 408, "Request Timeout", to_tag=new_tag())
                )
                self._invite_server_completed(tx, now)
            else:
                self._terminate(tx)
            self._report(tx, TransactionTimeout(tx))
        else:  # D, I, J, K, L, M: the wait for stray retransmissions is over
            self._terminate(tx)

    def _report(self, tx: Transaction, event: Event) -> None:
        if not tx._quiet:
            tx._quiet = True
            self._events.append(event)

    def _terminate(self, tx: Transaction) -> None:
        if tx.state is _TERMINATED:
            return
        tx.state = _TERMINATED
        heap = self._heap
        if tx._rtx is not None:
            heap.cancel(tx._rtx)
            tx._rtx = None
        if tx._end is not None:
            heap.cancel(tx._end)
            tx._end = None
        if isinstance(tx, ClientTransaction):
            if self._clients.get(tx.key) is tx:
                del self._clients[tx.key]
        elif isinstance(tx, ServerTransaction):
            if self._servers.get(tx.key) is tx:
                del self._servers[tx.key]
            mk = tx.merge_key
            if mk is not None and self._merge_index.get(mk) is tx:
                del self._merge_index[mk]


def _same_peer(a: Address, b: Address) -> bool:
    if a.transport != b.transport or a.port != b.port or a.host != b.host:
        return a.conn_id is not None and a.conn_id == b.conn_id
    return a.conn_id is None or b.conn_id is None or a.conn_id == b.conn_id
