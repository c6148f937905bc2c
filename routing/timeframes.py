"""Time frame evaluation: is a frame active at a moment, and why.

Frames are compiled once per configuration into matchers over a ``LocalTime`` (the moment as
wall-clock time in the frame's zone). Wall-clock semantics make DST come out as people
expect: 09:00-17:00 is 09:00-17:00 local on the day clocks change; a time skipped by
spring-forward never happens; a repeated fall-back hour matches twice.

Each matcher returns a short reason (what matched) or None, so ``route explain`` can say why.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from config.timeframes import (
    AlwaysSpec,
    CustomSpec,
    DatePeriod,
    DaysOfWeekSpec,
    HolidaysSpec,
    Recurrence,
    SpecificDatesSpec,
    TimeFrame,
    TimeRange,
    Weekday,
    holiday_calendar,
)

_ONE_DAY = dt.timedelta(days=1)
_from_timestamp = dt.datetime.fromtimestamp
_tuple_new = tuple.__new__
_DAY_NAMES = tuple(d.value for d in Weekday)


class LocalTime(NamedTuple):
    """A moment as wall-clock time in one zone."""

    year: int
    ordinal: int  # proleptic Gregorian ordinal of the local date
    weekday: int  # 0 = Monday
    second: int  # seconds since local midnight
    wall: int  # wall-clock seconds since 0001-01-01: ordinal * 86400 + second

    @classmethod
    def at(cls, timestamp: float, zone: ZoneInfo) -> LocalTime:
        t = _from_timestamp(timestamp, zone)
        ordinal = t.toordinal()
        second = t.hour * 3600 + t.minute * 60 + t.second
        # tuple.__new__ skips the generated __new__ (a Python call); weekday from the
        # ordinal (0001-01-01 was a Monday) saves a method call. Both run per zone per call.
        return _tuple_new(
            cls, (t.year, ordinal, (ordinal + 6) % 7, second, ordinal * 86400 + second)
        )

    @property
    def date(self) -> dt.date:
        return dt.date.fromordinal(self.ordinal)


def to_timestamp(at: object) -> float:
    """Epoch seconds of an aware datetime or an epoch number; naive datetimes and anything
    else are refused (ValueError). Typed ``object``: compiled, a narrower annotation would
    turn a hostile value into a TypeError before the check could name it."""
    if isinstance(at, float):  # the call path's common case, checked before the others
        if at != at or not -62135596800 < at < 253402300799:  # NaN or outside year 1..9999
            raise ValueError(f"call time {at!r} out of range")
        return at
    if isinstance(at, dt.datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("call time must be timezone-aware (or epoch seconds)")
        return at.timestamp()
    if isinstance(at, bool) or not isinstance(at, int):
        raise ValueError(f"call time must be a datetime or epoch seconds, not {type(at).__name__}")
    if not -62135596800 < at < 253402300799:  # outside year 1..9999
        raise ValueError(f"call time {at!r} out of range")
    return float(at)


class LocalClock:
    """Per-call cache of the moment in each zone (frames share a handful of zones)."""

    __slots__ = ("timestamp", "zones")

    def __init__(self, timestamp: float) -> None:
        self.timestamp = timestamp
        #: zone -> the moment there, filled on first use; hot loops read it directly.
        self.zones: dict[ZoneInfo, LocalTime] = {}

    def local(self, zone: ZoneInfo) -> LocalTime:
        local = self.zones.get(zone)
        if local is None:
            local = self.zones[zone] = LocalTime.at(self.timestamp, zone)
        return local


Matcher = Callable[[LocalTime], str | None]


def _seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _range_text(r: TimeRange) -> str:
    end = "24:00" if r.end_minute == 1440 and r.end == dt.time(0) else f"{r.end:%H:%M}"
    return f"{r.start:%H:%M}-{end}"


def _span(r: TimeRange) -> tuple[int, int, bool]:
    """(start, end, overnight) in seconds of day; end 86400 for end-of-day."""
    start = _seconds(r.start)
    end = _seconds(r.end) or 86400
    return start, end, end <= start


# -- days of the week -------------------------------------------------------------------------


def _compile_days(spec: DaysOfWeekSpec) -> Matcher:
    # Overnight ranges are split: the part after midnight belongs to the next weekday.
    week: list[list[tuple[int, int, str]]] = [[] for _ in range(7)]
    for day, ranges in spec.days.items():
        i = day.number
        for r in ranges:
            start, end, overnight = _span(r)
            why = f"{_DAY_NAMES[i]} {_range_text(r)}"
            if overnight:
                week[i].append((start, 86400, why))
                week[(i + 1) % 7].append((0, end, why))
            else:
                week[i].append((start, end, why))
    table = tuple(tuple(sorted(day)) for day in week)

    def match(local: LocalTime) -> str | None:
        s = local.second
        for start, end, why in table[local.weekday]:
            if start <= s < end:
                return why
        return None

    return match


# -- specific dates ---------------------------------------------------------------------------


def _occurrence_starts_in_year(period: DatePeriod, year: int) -> list[dt.datetime]:
    """Every monthly/yearly occurrence start in ``year`` (skipping impossible dates)."""
    start = period.start
    clock = start.time()
    months = range(1, 13) if period.recurrence is Recurrence.MONTHLY else (start.month,)
    out = []
    for month in months:
        try:
            out.append(dt.datetime.combine(dt.date(year, month, start.day), clock))
        except ValueError:  # no 31st this month / 29 February outside a leap year
            continue
    return out


def _wall(t: dt.datetime) -> int:
    return t.toordinal() * 86400 + t.hour * 3600 + t.minute * 60 + t.second


_FIXED_STEP = {Recurrence.DAILY: 86400, Recurrence.WEEKLY: 7 * 86400}


def _compile_period(period: DatePeriod) -> Matcher:
    duration = period.end - period.start
    first = period.start
    ends = period.ends
    why = f"{period.start:%Y-%m-%d %H:%M} to {period.end:%Y-%m-%d %H:%M}"
    if period.recurrence is not Recurrence.NONE:
        why += f", {period.recurrence.value}"
        if ends is not None:
            why += f" until {ends:%Y-%m-%d}"
    first_wall = _wall(first)
    span = int(duration.total_seconds())
    step = _FIXED_STEP.get(period.recurrence)

    if period.recurrence is Recurrence.NONE:
        last_wall = _wall(period.end)

        def match_once(local: LocalTime) -> str | None:
            return why if first_wall <= local.wall < last_wall else None

        return match_once

    if step is not None:
        # Daily and weekly occurrences are a fixed number of wall-clock seconds apart, so
        # the occurrence holding t (at most one: a period never outlasts its step) is found
        # by arithmetic.
        last_start = None if ends is None else (ends.toordinal() + 1) * 86400

        def match_fixed(local: LocalTime) -> str | None:
            offset = local.wall - first_wall
            if offset < 0:
                return None
            occ = local.wall - offset % step
            if offset % step >= span or (last_start is not None and occ >= last_start):
                return None
            return why

        return match_fixed

    # Monthly and yearly: the wall-clock starts of each year's occurrences, computed once per
    # year and cached (a handful of integers).
    starts_by_year: dict[int, tuple[int, ...]] = {}

    def starts(year: int) -> tuple[int, ...]:
        got = starts_by_year.get(year)
        if got is None:
            walls = []
            for occ in _occurrence_starts_in_year(period, year):
                if occ >= first and (ends is None or occ.date() <= ends):
                    walls.append(_wall(occ))
            got = starts_by_year[year] = tuple(sorted(walls))
            if len(starts_by_year) > 512:  # bound memory for far-apart lookups
                starts_by_year.clear()
        return got

    cached = starts_by_year.get  # bound once: clear() empties the same dict

    def match(local: LocalTime) -> str | None:
        t = local.wall
        if t < first_wall:
            return None
        year = local.year
        # This year's occurrences, then last year's (one may run into this year).
        walls = cached(year) or starts(year)
        i = bisect_right(walls, t)
        if i and t < walls[i - 1] + span:
            return why
        # Every start of last year precedes t, so only its latest can still be running.
        walls = cached(year - 1) or starts(year - 1)
        if walls and t < walls[-1] + span:
            return why
        return None

    return match


def _compile_specific(spec: SpecificDatesSpec) -> Matcher:
    return _any_of([_compile_period(p) for p in spec.periods])


# -- holidays ---------------------------------------------------------------------------------


def _base_name(name: str) -> str:
    return name.replace("(observed)", "").strip().casefold()


@lru_cache(maxsize=4096)
def holiday_dates(
    country: str, subdiv: str | None, observed: bool, names: frozenset[str] | None, year: int
) -> dict[dt.date, str]:
    """Holiday date -> name for one calendar and year, filtered by (case-folded) names."""
    out: dict[dt.date, str] = {}
    for day, label in holiday_calendar(country, subdiv, year, observed).items():
        parts = [p for p in label.split("; ") if names is None or _base_name(p) in names]
        if parts:
            out[day] = "; ".join(parts)
    return out


def _compile_holidays(spec: HolidaysSpec) -> Matcher:
    names = frozenset(_base_name(n) for n in spec.names) if spec.names else None
    spans = [(*_span(r), _range_text(r)) for r in spec.ranges]
    first_year = spec.year
    only_year = spec.year if spec.recurrence == "none" else None
    last_ordinal = spec.ends.toordinal() if spec.ends is not None else None
    where = spec.country + (f"-{spec.subdiv}" if spec.subdiv else "")
    # ordinal -> holiday name, filled a year at a time on first use.
    days: dict[int, str] = {}
    loaded: set[int] = set()

    def load(year: int) -> None:
        if len(loaded) > 256:  # bound memory for far-apart lookups
            days.clear()
            loaded.clear()
        loaded.add(year)
        if (only_year is not None and year != only_year) or (
            first_year is not None and year < first_year
        ):
            return
        for day, name in holiday_dates(
            spec.country, spec.subdiv, spec.observed, names, year
        ).items():
            days[day.toordinal()] = name

    def holiday(ordinal: int, year: int) -> str | None:
        if year not in loaded:
            load(year)
        if last_ordinal is not None and ordinal > last_ordinal:
            return None
        return days.get(ordinal)

    def match(local: LocalTime) -> str | None:
        s = local.second
        for start, end, overnight, text in spans:
            if s >= start and (overnight or s < end):
                # ``holiday`` inlined: this branch runs for most calls inside the range.
                year = local.year
                if year not in loaded:
                    load(year)
                ordinal = local.ordinal
                if last_ordinal is not None and ordinal > last_ordinal:
                    continue
                name = days.get(ordinal)
                if name:
                    return f"{where} holiday {name} {text}"
            elif overnight and s < end:
                prev = local.ordinal - 1
                name = holiday(prev, dt.date.fromordinal(prev).year)
                if name:
                    return f"{where} holiday {name} {text}"
        return None

    return match


# -- frames -----------------------------------------------------------------------------------


def _always(local: LocalTime) -> str | None:
    return "always"


def _any_of(matchers: Sequence[Matcher]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]
    parts = tuple(matchers)

    def match(local: LocalTime) -> str | None:
        for part in parts:
            why = part(local)
            if why is not None:
                return why
        return None

    return match


def compile_spec(spec: object) -> Matcher:
    """A matcher for any ``when`` spec."""
    if isinstance(spec, AlwaysSpec):
        return _always
    if isinstance(spec, DaysOfWeekSpec):
        return _compile_days(spec)
    if isinstance(spec, SpecificDatesSpec):
        return _compile_specific(spec)
    if isinstance(spec, HolidaysSpec):
        return _compile_holidays(spec)
    if isinstance(spec, CustomSpec):
        return _any_of([compile_spec(p) for p in spec.parts])
    raise TypeError(f"unknown time frame kind {type(spec).__name__}")


class CompiledFrame:
    """A time frame ready to evaluate; ``match`` gives the reason it is active, or None."""

    __slots__ = ("enabled", "label", "matcher", "name", "owner", "zone")

    def __init__(self, frame: TimeFrame) -> None:
        self.name = frame.name
        self.owner = frame.owner
        self.enabled = frame.enabled
        self.zone = ZoneInfo(frame.timezone)
        self.label = f"{frame.name!r} ({frame.timezone})"
        self.matcher = compile_spec(frame.when)

    def match(self, clock: LocalClock) -> str | None:
        if not self.enabled:
            return None
        return self.matcher(clock.local(self.zone))

    def active(self, at: dt.datetime | float) -> bool:
        """Convenience for one-off checks; the engine uses ``match`` with a shared clock."""
        return self.match(LocalClock(to_timestamp(at))) is not None


def is_active(frame: TimeFrame, at: dt.datetime | float) -> bool:
    """Whether ``frame`` is active at ``at`` (aware datetime or epoch seconds)."""
    return CompiledFrame(frame).active(at)
