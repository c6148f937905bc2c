"""Overload control: when the switch cannot keep up, new calls are refused at once with
503 and Retry-After (RFC 3261 21.5.4) instead of being left to time out, so callers and
upstream proxies retry elsewhere or later, and the calls already admitted finish.

Signs of overload, each with a configured bound (``config.models.OverloadSettings``):
calls still being set up, live transactions, and the queueing delay of new requests. The
last is measured by a probe: a datagram sent every ``probe_interval`` through the loopback
to our own UDP listener waits in the same kernel receive queue as every INVITE, so the time
it takes to reach the switch is how late the switch sees new calls (an event-loop lag timer
cannot see that queue: the loop keeps turning while the backlog grows). The delay is
smoothed and has hysteresis, so shedding does not flap. Only new INVITEs are shed;
in-dialog requests, CANCEL, ACK and REGISTER are always served.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable

import structlog

from config.models import OverloadSettings
from softswitch.sip.address import Address

__all__ = ["PROBE_PREFIX", "OverloadGuard", "QueueProbe"]

log = structlog.get_logger(__name__)

#: Weight of a new delay sample in the smoothed delay.
_DELAY_WEIGHT = 0.3
#: Start of a probe datagram (never a valid request: the switch takes it before parsing).
PROBE_PREFIX = b"OPTIONS sip:overload-probe "
#: Seconds between log lines while shedding goes on.
_LOG_EVERY = 10.0
#: Seconds without shedding that end an overload episode.
_QUIET = 1.0


class OverloadGuard:
    """Decides whether a new INVITE is admitted; counts what it sheds, by reason."""

    __slots__ = ("counters", "delay", "delayed", "last_shed", "logged_at", "settings")

    def __init__(self, settings: OverloadSettings) -> None:
        self.settings = settings
        self.delay = 0.0  # smoothed queueing delay of new requests, seconds
        self.delayed = False
        self.last_shed = self.logged_at = float("-inf")
        self.counters: dict[str, int] = {"shed": 0, "episodes": 0}

    def observe_delay(self, delay: float) -> None:
        """One sample of how long a new request waited before the switch saw it."""
        self.delay += _DELAY_WEIGHT * (max(0.0, delay) - self.delay)
        bound = self.settings.max_queue_delay
        if not bound:
            return
        if self.delay > bound:
            self.delayed = True
        elif self.delay < bound / 2:
            self.delayed = False

    def overloaded(self, calls_in_setup: int, transactions: int) -> str | None:
        """Why the switch is overloaded now ("calls_in_setup", "transactions",
        "queue_delay"), or None."""
        settings = self.settings
        if settings.max_calls_in_setup and calls_in_setup >= settings.max_calls_in_setup:
            return "calls_in_setup"
        if settings.max_transactions and transactions >= settings.max_transactions:
            return "transactions"
        if self.delayed:
            return "queue_delay"
        return None

    def admit(self, calls_in_setup: int, transactions: int, now: float) -> bool:
        """True to take a new call; False (counted) to answer it 503 with Retry-After."""
        reason = self.overloaded(calls_in_setup, transactions)
        if reason is None:
            return True
        counters = self.counters
        counters["shed"] += 1
        counters[reason] = counters.get(reason, 0) + 1
        # An episode starts after a quiet spell; one log line per _LOG_EVERY seconds while
        # it lasts, never one per call.
        started = now - self.last_shed >= _QUIET
        self.last_shed = now
        if started:
            counters["episodes"] += 1
        if started or now - self.logged_at >= _LOG_EVERY:
            self.logged_at = now
            log.warning(
                "overload_shedding",
                reason=reason,
                calls_in_setup=calls_in_setup,
                transactions=transactions,
                queue_delay=round(self.delay, 4),
                shed=counters["shed"],
            )
        return False


class QueueProbe:
    """Sends probe datagrams to our UDP listener at ``target`` and times their arrival."""

    __slots__ = (
        "_clock",
        "_guard",
        "_interval",
        "_outstanding",
        "_seq",
        "_sock",
        "_token",
        "address",
    )

    def __init__(self, guard: OverloadGuard, target: Address, clock: Callable[[], float]) -> None:
        host = target.host
        if host in ("0.0.0.0", "::"):
            host = "::1" if ":" in host else "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.bind((host, 0))
        self._sock.connect((host, target.port))
        bound = self._sock.getsockname()
        self.address = (bound[0], bound[1])
        self._guard = guard
        self._clock = clock
        self._interval = guard.settings.probe_interval
        self._token = secrets.token_hex(8).encode()
        self._seq = 0
        self._outstanding: tuple[int, float] | None = None  # (sequence, sent at)

    def tick(self) -> None:
        """Send the next probe, or count the wait of one that has not arrived yet."""
        now = self._clock()
        if self._outstanding is not None:
            waited = now - self._outstanding[1]
            bound = self._guard.settings.max_queue_delay
            if waited <= bound and waited < 10 * self._interval:
                return
            # Late (or dropped by a full queue): that wait is itself a sample.
            self._guard.observe_delay(waited)
            if waited < 5.0:
                return
        self._seq += 1
        self._outstanding = (self._seq, now)
        try:
            self._sock.send(PROBE_PREFIX + self._token + b" %d" % self._seq)
        except OSError:
            self._outstanding = None  # the send buffer is full: try again next tick

    def received(self, data: bytes, source: Address) -> bool:
        """Take ``data`` if it is one of our probes (True); the arrival is a sample."""
        if (source.host, source.port) != self.address:
            return False
        token, _, seq = data[len(PROBE_PREFIX) :].partition(b" ")
        if token != self._token:
            return False
        if self._outstanding is not None and seq == b"%d" % self._outstanding[0]:
            self._guard.observe_delay(self._clock() - self._outstanding[1])
            self._outstanding = None
        return True

    def close(self) -> None:
        self._sock.close()

    async def run(self) -> None:
        """Probe every ``probe_interval`` seconds until cancelled."""
        try:
            while True:
                self.tick()
                await asyncio.sleep(self._interval)
        finally:
            self.close()
