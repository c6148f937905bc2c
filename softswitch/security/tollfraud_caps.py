"""Toll-fraud caps: what each tenant and user has used, checked against its caps (sans-I/O).

Three caps, per scope (a tenant, or a user of a tenant): outside calls in progress at
once, international calls started in the last hour (a sliding window of start times), and
minutes of answered outside calls in the current UTC day (the ended calls' seconds plus
the answered time so far of the calls in progress). Time comes from the clock passed in;
``restore`` feeds the calls of the day already in the CDRs after a restart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

__all__ = ["CAP_RULES", "CapTable", "Caps", "Running", "Usage", "UsageFigures"]

HOUR = 3600.0
DAY = 86400.0

#: The configuration key of each cap (config/calling.py), as refusals name them.
CAP_RULES = ("max_outbound_calls", "max_international_per_hour", "max_minutes_per_day")


class Caps(Protocol):
    """A scope's caps (config.calling's models); None: no cap."""

    @property
    def max_outbound_calls(self) -> int | None: ...
    @property
    def max_international_per_hour(self) -> int | None: ...
    @property
    def max_minutes_per_day(self) -> int | None: ...


class Running(Protocol):
    """A call in progress, as far as the minutes count: when it was answered."""

    @property
    def answered_at(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class UsageFigures:
    """A scope's use at one moment."""

    outbound_calls: int
    international_last_hour: int
    minutes_today: float


class Usage:
    """One scope's use: its calls in progress, international starts, the day's seconds."""

    __slots__ = ("calls", "day", "seconds", "starts")

    def __init__(self, day: int) -> None:
        self.calls: dict[str, Running] = {}
        self.starts: deque[float] = deque()
        self.day = day
        self.seconds = 0.0  # answered seconds of the day's ended calls

    def figures(self, now: float) -> UsageFigures:
        self._roll(now)
        return UsageFigures(len(self.calls), len(self.starts), self._seconds(now) / 60.0)

    def over(self, caps: Caps, international: bool, now: float) -> str | None:
        """The first cap one more (``international``) call would break, else None."""
        self._roll(now)
        cap = caps.max_outbound_calls
        if cap is not None and len(self.calls) >= cap:
            return CAP_RULES[0]
        cap = caps.max_international_per_hour
        if international and cap is not None and len(self.starts) >= cap:
            return CAP_RULES[1]
        cap = caps.max_minutes_per_day
        if cap is not None and self._seconds(now) >= cap * 60.0:
            return CAP_RULES[2]
        return None

    def _seconds(self, now: float) -> float:
        day_start = self.day * DAY
        total = self.seconds
        for call in self.calls.values():
            answered = call.answered_at
            if answered is not None:
                total += max(0.0, now - max(answered, day_start))
        return total

    def _roll(self, now: float) -> None:
        starts = self.starts
        horizon = now - HOUR
        while starts and starts[0] <= horizon:
            starts.popleft()
        day = int(now // DAY)
        if day != self.day:
            self.day = day
            self.seconds = 0.0

    @property
    def idle(self) -> bool:
        return not self.calls and not self.starts and not self.seconds


class CapTable:
    """Use per scope key, and the checks against caps; see the module docstring."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._usage: dict[tuple[str, ...], Usage] = {}

    def _get(self, key: tuple[str, ...]) -> Usage:
        usage = self._usage.get(key)
        if usage is None:
            usage = self._usage[key] = Usage(int(self._clock() // DAY))
        return usage

    def over(self, key: tuple[str, ...], caps: Caps, international: bool) -> str | None:
        """The cap of ``key`` one more call would break (its rule name), else None."""
        if (
            caps.max_outbound_calls is None
            and caps.max_international_per_hour is None
            and caps.max_minutes_per_day is None
        ):
            return None
        return self._get(key).over(caps, international, self._clock())

    def start(self, key: tuple[str, ...], call_id: str, call: Running, international: bool) -> None:
        """An outside call of ``key`` started (counted once per call)."""
        usage = self._get(key)
        if call_id in usage.calls:
            return
        usage.calls[call_id] = call
        if international:
            usage.starts.append(self._clock())

    def end(self, key: tuple[str, ...], call_id: str, answered_seconds: float) -> None:
        """An outside call of ``key`` ended after ``answered_seconds`` (its bill) of talk."""
        usage = self._usage.get(key)
        if usage is None or usage.calls.pop(call_id, None) is None:
            return
        now = self._clock()
        usage._roll(now)
        # Only the part of the call inside today counts towards today's minutes.
        usage.seconds += min(max(0.0, answered_seconds), now - usage.day * DAY)
        if usage.idle:
            del self._usage[key]

    def restore(
        self,
        key: tuple[str, ...],
        start: float,
        answered: float | None,
        end: float,
        international: bool,
    ) -> None:
        """An ended call of ``key`` from the CDRs (after a restart)."""
        now = self._clock()
        usage = self._get(key)
        usage._roll(now)
        if international and start > now - HOUR:
            usage.starts.append(start)
            if len(usage.starts) > 1 and usage.starts[-2] > start:
                usage.starts = deque(sorted(usage.starts))
        if answered is not None:
            usage.seconds += max(0.0, min(end, now) - max(answered, usage.day * DAY))
        if usage.idle:
            del self._usage[key]

    def figures(self, key: tuple[str, ...]) -> UsageFigures:
        usage = self._usage.get(key)
        if usage is None:
            return UsageFigures(0, 0, 0.0)
        return usage.figures(self._clock())

    def keys(self) -> Iterator[tuple[str, ...]]:
        return iter(list(self._usage))
