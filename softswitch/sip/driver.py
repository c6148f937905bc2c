"""The asyncio driver of the sans-I/O SIP layers: bytes in, events up, bytes out, timers.

Every message a transport delivers is parsed, checked (``check_request``) and fed to the
layer (the transaction layer, or the dialog layer stacked on it: both have the same verbs);
then the layer is drained: each event goes to ``handle_event``, what it queued goes to the
transports and its next deadline is armed on the loop. Garbage gets a stateless 400-class
answer or silence. Nothing here knows what a REGISTER or a call is, so a fuzzer or a test
can drive the same layers with the same code.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from softswitch.sip.address import Address
from softswitch.sip.layer import SipLayer
from softswitch.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    check_request,
    make_response,
    new_tag,
    parse_message,
)
from softswitch.sip.transaction import Via, response_destination

__all__ = ["TIMER_TICK", "SignallingCounters", "SipDriver", "SipLayer"]

log = structlog.get_logger(__name__)

TIMER_TICK = 0.005  # layer timers are served on this grid (seconds), see _arm_timer


@dataclass
class SignallingCounters:
    """Counters an operator (and the tests) read to see what the switch did."""

    received: int = 0
    malformed: int = 0
    rejected: int = 0
    responses_by_status: dict[int, int] = field(default_factory=dict)
    # What arrived, for the admin API's /metrics (read at scrape time): requests by method
    # (the standard ones; the rest as OTHER, so a peer inventing methods cannot grow it)
    # and responses by class.
    requests_by_method: dict[str, int] = field(default_factory=dict)
    responses_by_class: dict[int, int] = field(default_factory=dict)


# The SIP methods known by name (RFC 3261 and its extensions): the dispatcher answers
# the others 501, and the counters count them as OTHER.
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "REGISTER",
        "OPTIONS",
        "INFO",
        "PRACK",
        "UPDATE",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "MESSAGE",
        "PUBLISH",
    }
)


class SipDriver:
    """Runs ``layer`` on the running asyncio loop.

    ``handle_event(event, now)`` gets every event; ``send(data, dest)`` puts bytes on the
    wire. Datagrams starting with ``intercept_prefix`` are first offered to ``intercept``
    (True: consumed; the switch's queue-delay probe). ``answer_stateless(request, source)``
    may take a request before the layer sees it (True: it answered, e.g. a REGISTER
    without credentials) and queues what it sends with :meth:`send_stateless_response`.
    """

    def __init__(
        self,
        layer: SipLayer,
        *,
        handle_event: Callable[[object, float], None],
        send: Callable[[bytes, Address], None],
        counters: SignallingCounters | None = None,
        intercept_prefix: bytes = b"",
        intercept: Callable[[bytes, Address], bool] | None = None,
        screen: Callable[[bytes, Address], bool] | None = None,
        answer_stateless: Callable[[SipRequest, Address], bool] | None = None,
    ) -> None:
        self.layer = layer
        self.handle_event = handle_event
        self.send = send
        self.counters = counters if counters is not None else SignallingCounters()
        self.intercept_prefix = intercept_prefix
        self.intercept = intercept
        # Asked once per message before it is parsed: False drops it (the switch's security
        # guard: bans, scanners, floods).
        self.screen = screen
        self.answer_stateless = answer_stateless
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        self._outbox: list[tuple[bytes, Address]] = []

    # ----------------------------------------------------------------- life cycle
    def start(self) -> None:
        """Bind to the running loop (call from a coroutine before the first message)."""
        self._loop = asyncio.get_running_loop()

    def stop(self) -> None:
        """Send what is queued and disarm the timer (before the transports close)."""
        self.send_outbox()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_deadline = None

    def now(self) -> float:
        """The loop's clock, the one every layer deadline is on."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.time()

    # ----------------------------------------------------------------- inbound
    def on_message(self, data: bytes, source: Address) -> None:
        """One message from a transport: parse, check, feed the layer, drain."""
        prefix = self.intercept_prefix
        intercept = self.intercept
        if prefix and intercept is not None and data.startswith(prefix) and intercept(data, source):
            return
        screen = self.screen
        if screen is not None and not screen(data, source):
            return
        counters = self.counters
        counters.received += 1
        try:
            message = parse_message(data)
        except SipParseError as error:
            counters.malformed += 1
            partial = error.message
            if isinstance(partial, SipRequest) and partial.method != "ACK":
                self.reject(partial, source, error.status, error.reason)
            return
        if isinstance(message, SipRequest):
            method = message.method if message.method in KNOWN_METHODS else "OTHER"
            by_method = counters.requests_by_method
            by_method[method] = by_method.get(method, 0) + 1
            problem = check_request(message)
            if problem is not None:
                counters.malformed += 1
                if message.method != "ACK":
                    self.reject(message, source, *problem)
                return
            stateless = self.answer_stateless
            if stateless is not None and stateless(message, source):
                return
        else:
            by_class = counters.responses_by_class
            status_class = message.status // 100
            by_class[status_class] = by_class.get(status_class, 0) + 1
        now = self.now()
        try:
            self.layer.receive_message(message, source, now)
        except SipParseError as error:
            # A header the layer needed turned out to be unparseable.
            counters.malformed += 1
            if isinstance(message, SipRequest) and message.method != "ACK":
                self.reject(message, source, error.status, error.reason)
            return
        self.drain(now)

    def on_transport_error(self, dest: Address) -> None:
        """The transport could not reach ``dest``."""
        now = self.now()
        self.layer.transport_error(dest, now)
        self.drain(now)

    def reject(self, request: SipRequest, source: Address, status: int, reason: str) -> None:
        try:
            response = make_response(request, status, reason, to_tag=new_tag())
            self.send_stateless_response(response, source)
        except (SipParseError, ValueError):
            return  # not even enough to address an answer: silence

    def send_stateless_response(
        self, response: SipResponse, source: Address, via: Via | None = None
    ) -> None:
        """Answer outside any transaction, routed per RFC 3261 18.2.2 from ``source``
        (straight back to it when the Via cannot be read)."""
        if via is None:
            try:
                via = response.top_via
            except SipParseError:
                via = None
        self._queue([(response.to_bytes(), response_destination(via, source))])

    # ----------------------------------------------------------------- the drain
    def drain(self, now: float) -> None:
        """Handle the layer's events, send what it queued and arm its next timer."""
        layer = self.layer
        event = layer.next_event()
        while event is not None:
            try:
                self.handle_event(event, now)
            except Exception:
                log.exception("event_failed", event=type(event).__name__)
            event = layer.next_event()
        self.flush()
        self._arm_timer()

    def flush(self) -> None:
        """Queue what the layer wants sent; it leaves in :meth:`send_outbox`, once the
        loop has handed up every message that arrived together."""
        out = self.layer.datagrams_to_send(0.0)
        if out:
            self._queue(out)

    def _queue(self, out: list[tuple[bytes, Address]]) -> None:
        if not self._outbox:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self.send_outbox)
        self._outbox += out

    def send_outbox(self) -> None:
        """Send the answers of one loop iteration back to back. A peer asleep between
        datagrams is then woken once per burst instead of once per message: on loopback or
        a LAN the wake-up is most of what a sendto costs (measured ~10 of ~13 us)."""
        outbox, self._outbox = self._outbox, []
        send = self.send
        for data, dest in outbox:
            send(data, dest)

    # ----------------------------------------------------------------- timers
    def _arm_timer(self) -> None:
        deadline = self.layer.get_timer()
        if deadline is not None:
            # Up to the next tick: at line rate some transaction's Timer J or K falls due
            # every few hundred microseconds, and one wake-up per tick fires them together.
            # A few milliseconds late is nothing to timers of T1 (500 ms) and longer.
            deadline = math.ceil(deadline / TIMER_TICK) * TIMER_TICK
        if deadline == self._timer_deadline:
            return
        if self._timer is not None:
            if (
                deadline is not None
                and self._timer_deadline is not None
                and self._timer_deadline <= deadline
            ):
                return  # the armed timer fires first and re-arms
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is not None:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            self._timer = loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        now = self.now()
        self.layer.handle_timer(now)
        self.drain(now)

    def schedule(
        self, delay: float, callback: Callable[..., None], *args: object
    ) -> asyncio.TimerHandle:
        """A timer for the layers above (calls, trunk registration): runs ``callback``,
        then drains the layer, as a message would."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.call_later(delay, self._run_timer, callback, args)

    def _run_timer(self, callback: Callable[..., None], args: tuple[object, ...]) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("call_timer_failed")
        self.drain(self.now())
