"""A reporting period: from/to, in a timezone, optionally only some weekdays and a day part.

Statistics count a call when it entered the queue inside the period, and clip durations
(an agent's time in a status) to it. "Mon-Fri 09:00-17:00 Europe/Berlin in March" is
one Period; a day part that ends before it starts (22:00-06:00) runs past midnight and
belongs to the weekday it starts on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["WEEKDAYS", "Period", "parse_day_part", "parse_weekdays"]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = dt.timedelta(days=1)


def parse_weekdays(text: str) -> frozenset[int]:
    """ "mon-fri", "sat,sun", "mon,wed-fri" -> weekday numbers (Monday 0); ValueError."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, sep, last = part.partition("-")
        try:
            a = WEEKDAYS.index(first[:3]) if first else -1
            b = WEEKDAYS.index(last[:3]) if sep else a
        except ValueError:
            raise ValueError(
                f"weekdays: {part!r} is not a day or range of {'/'.join(WEEKDAYS)}"
            ) from None
        if a < 0:
            raise ValueError(f"weekdays: empty entry in {text!r}")
        day = a
        days.add(day)
        while day != b:  # a range may wrap: sat-mon
            day = (day + 1) % 7
            days.add(day)
    return frozenset(days)


def parse_day_part(text: str) -> tuple[dt.time, dt.time]:
    """ "09:00-17:30" -> (start, end); ValueError naming what is wrong."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"day part: {text!r} is not HH:MM-HH:MM")
    try:
        first, last = dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())
    except ValueError:
        raise ValueError(f"day part: {text!r} is not HH:MM-HH:MM") from None
    if first == last:
        raise ValueError(f"day part: {text!r} is empty")
    return first, last


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in epoch seconds, narrowed to `weekdays` and `day_part` local to `tz`."""

    start: float
    end: float
    tz: ZoneInfo
    weekdays: frozenset[int] = frozenset(range(7))
    day_part: tuple[dt.time, dt.time] | None = None

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise ValueError("period: 'to' must be after 'from'")
        if not self.weekdays:
            raise ValueError("weekdays: at least one day")

    @classmethod
    def build(
        cls,
        start: str,
        end: str,
        timezone: str = "UTC",
        weekdays: str | None = None,
        day_part: str | None = None,
    ) -> Period:
        """From text as the CLI takes it: ISO dates or times local to `timezone`."""
        try:
            tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown zone {timezone!r}") from None
        return cls(
            _instant("from", start, tz),
            _instant("to", end, tz),
            tz,
            parse_weekdays(weekdays) if weekdays else frozenset(range(7)),
            parse_day_part(day_part) if day_part else None,
        )

    @property
    def duration(self) -> float:
        """Seconds of the period inside its weekdays and day part."""
        return self.overlap(self.start, self.end)

    def windows(self, start: float, end: float) -> Iterator[tuple[float, float]]:
        """The parts of [start, end) inside the period, in order."""
        lo, hi = max(start, self.start), min(end, self.end)
        if lo >= hi:
            return
        day = (
            dt.datetime.fromtimestamp(lo, self.tz).date() - _DAY
        )  # a part may start the day before
        last = dt.datetime.fromtimestamp(hi, self.tz).date()
        while day <= last:
            if day.weekday() in self.weekdays:
                a, b = self._window(day)
                a, b = max(a, lo), min(b, hi)
                if a < b:
                    yield a, b
            day += _DAY

    def overlap(self, start: float, end: float) -> float:
        """Seconds of [start, end) inside the period."""
        return sum(b - a for a, b in self.windows(start, end))

    def contains(self, at: float) -> bool:
        return any(True for _ in self.windows(at, at + 1e-6))

    def _window(self, day: dt.date) -> tuple[float, float]:
        if self.day_part is None:
            first, last = dt.time(0), dt.time(0)
        else:
            first, last = self.day_part
        start = dt.datetime.combine(day, first, self.tz)
        end_day = day if last > first else day + _DAY
        end = dt.datetime.combine(end_day, last, self.tz)
        return start.timestamp(), end.timestamp()


def _instant(name: str, text: str, tz: ZoneInfo) -> float:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not an ISO date or date and time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.timestamp()
