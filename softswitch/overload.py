"""Overload control: when the switch cannot keep up, new calls are refused at once with
503 and Retry-After (RFC 3261 21.5.4) instead of being left to time out, so callers and
upstream proxies retry elsewhere or later, and the calls already admitted finish.

Signs of overload, each with a configured bound (``config.models.OverloadSettings``):
calls still being set up, live transactions, and the event loop running late (a periodic
timer's lag, smoothed, with hysteresis so shedding does not flap). Only new INVITEs are
shed; in-dialog requests, CANCEL, ACK and REGISTER are always served.
"""

from __future__ import annotations

import asyncio

import structlog

from config.models import OverloadSettings

__all__ = ["OverloadGuard"]

log = structlog.get_logger(__name__)

#: Weight of a new lag sample in the smoothed lag.
_LAG_WEIGHT = 0.3


class OverloadGuard:
    """Decides whether a new INVITE is admitted; counts what it sheds, by reason."""

    __slots__ = ("counters", "lag", "lagging", "settings", "shedding")

    def __init__(self, settings: OverloadSettings) -> None:
        self.settings = settings
        self.lag = 0.0  # smoothed event-loop lag, seconds
        self.lagging = False
        self.shedding: str | None = None  # the reason of the current overload episode
        self.counters: dict[str, int] = {"shed": 0, "episodes": 0}

    def observe_lag(self, lag: float) -> None:
        """One sample: how late a timer of the loop fired, in seconds."""
        self.lag += _LAG_WEIGHT * (max(0.0, lag) - self.lag)
        bound = self.settings.max_loop_lag
        if bound is None:
            return
        if self.lag > bound:
            self.lagging = True
        elif self.lag < bound / 2:
            self.lagging = False

    def overloaded(self, calls_in_setup: int, transactions: int) -> str | None:
        """Why the switch is overloaded now ("calls_in_setup", "transactions", "loop_lag"),
        or None."""
        settings = self.settings
        if settings.max_calls_in_setup is not None \
                and calls_in_setup >= settings.max_calls_in_setup:
            return "calls_in_setup"
        if settings.max_transactions is not None and transactions >= settings.max_transactions:
            return "transactions"
        if self.lagging:
            return "loop_lag"
        return None

    def admit(self, calls_in_setup: int, transactions: int) -> bool:
        """True to take a new call; False (counted) to answer it 503 with Retry-After."""
        reason = self.overloaded(calls_in_setup, transactions)
        if reason is None:
            if self.shedding is not None:
                log.info("overload_ended", reason=self.shedding, shed=self.counters["shed"])
                self.shedding = None
            return True
        counters = self.counters
        counters["shed"] += 1
        counters[reason] = counters.get(reason, 0) + 1
        if self.shedding != reason:
            counters["episodes"] += 1
            log.warning("overload_shedding", reason=reason, calls_in_setup=calls_in_setup,
                        transactions=transactions, loop_lag=round(self.lag, 4))
            self.shedding = reason
        return False

    async def watch_loop(self) -> None:
        """Sample the event loop's lag every ``lag_interval`` seconds, until cancelled."""
        loop = asyncio.get_running_loop()
        interval = self.settings.lag_interval
        while True:
            start = loop.time()
            await asyncio.sleep(interval)
            self.observe_lag(loop.time() - start - interval)
