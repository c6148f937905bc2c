"""Time frame models: when an answering rule applies.

A time frame says *when* (always, days of the week, specific dates with recurrence, public
holidays, or a union of these) in its own IANA timezone. Times are wall-clock times in that
zone, so "09:00-17:00" stays 09:00-17:00 across DST changes. Evaluation lives in
``routing.timeframes``; these models only validate shape.
"""

from __future__ import annotations

import datetime as dt
import itertools
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Weekday(StrEnum):
    """Day of the week; the order matches ``date.weekday()``."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """0 for Monday .. 6 for Sunday."""
        return _WEEKDAY_INDEX[self]


_WEEKDAY_INDEX = {d: i for i, d in enumerate(Weekday)}


class Recurrence(StrEnum):
    """How a specific-dates period repeats."""

    NONE = "none"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    YEARLY = "yearly"


def _parse_clock(value: Any) -> Any:
    # "24:00" is how admins write end-of-day; datetime.time cannot hold it, so it maps to 00:00
    # which TimeRange reads as "midnight at the end of the day".
    if isinstance(value, str) and value.strip() in ("24:00", "24:00:00"):
        return dt.time(0, 0)
    return value


class TimeRange(BaseModel):
    """A wall-clock range within a day, ``start`` inclusive, ``end`` exclusive.

    ``end`` of 00:00 (or "24:00") means the end of the day. A range whose end is before its
    start runs overnight into the next day (e.g. 22:00-06:00).
    """

    model_config = _FROZEN
    start: dt.time = dt.time(0, 0)
    end: dt.time = dt.time(0, 0)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        return _parse_clock(value)

    @model_validator(mode="after")
    def _check(self) -> TimeRange:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("times are wall-clock times in the frame's timezone; drop the offset")
        if self.start == self.end and self.end != dt.time(0, 0):
            raise ValueError(f"empty time range {self.start:%H:%M}-{self.end:%H:%M}")
        return self

    @property
    def start_minute(self) -> int:
        return self.start.hour * 60 + self.start.minute

    @property
    def end_minute(self) -> int:
        """End in minutes after midnight; 1440 for end-of-day."""
        m = self.end.hour * 60 + self.end.minute
        return 1440 if m == 0 else m

    @property
    def overnight(self) -> bool:
        return self.end_minute <= self.start_minute

    @classmethod
    def whole_day(cls) -> TimeRange:
        return cls(start=dt.time(0, 0), end=dt.time(0, 0))


def _whole_day() -> list[TimeRange]:
    return [TimeRange.whole_day()]


class AlwaysSpec(BaseModel):
    """Active at every moment (until the frame is toggled off)."""

    model_config = _FROZEN
    kind: Literal["always"] = "always"


class DaysOfWeekSpec(BaseModel):
    """Weekly schedule: one or more time ranges on each listed day (e.g. business hours)."""

    model_config = _FROZEN
    kind: Literal["days_of_week"] = "days_of_week"
    days: dict[Weekday, tuple[TimeRange, ...]]

    @field_validator("days")
    @classmethod
    def _check_days(
        cls, days: dict[Weekday, tuple[TimeRange, ...]]
    ) -> dict[Weekday, tuple[TimeRange, ...]]:
        if not days:
            raise ValueError("select at least one day")
        for day, ranges in days.items():
            if not ranges:
                raise ValueError(
                    f"{day.value}: give at least one time range (00:00-24:00 = all day)"
                )
            _no_overlap(day, ranges)
        return days


def _no_overlap(day: Weekday, ranges: tuple[TimeRange, ...]) -> None:
    """Two ranges of one day that overlap are a typing mistake, not a wider range: refused,
    naming both, so the admin fixes the one they meant."""
    spans = sorted(ranges, key=lambda r: r.start_minute)
    for first, second in itertools.pairwise(spans):
        end = 1440 if first.overnight else first.end_minute
        if second.start_minute < end:
            raise ValueError(f"{day.value}: {_shown(first)} overlaps {_shown(second)}")


def _shown(r: TimeRange) -> str:
    end = "24:00" if r.end_minute == 1440 else f"{r.end:%H:%M}"
    return f"{r.start:%H:%M}-{end}"


class DatePeriod(BaseModel):
    """A wall-clock period ``start`` .. ``end`` (exclusive) that may recur until ``ends``.

    ``ends`` is the last date on which an occurrence may start (inclusive). Monthly recurrence
    on the 29th-31st skips months without that day; yearly on 29 February only leap years.
    """

    model_config = _FROZEN
    start: dt.datetime
    end: dt.datetime
    recurrence: Recurrence = Recurrence.NONE
    ends: dt.date | None = None

    @model_validator(mode="after")
    def _check(self) -> DatePeriod:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("dates are wall-clock times in the frame's timezone; drop the offset")
        if self.end <= self.start:
            raise ValueError(f"period ends ({self.end}) before or when it starts ({self.start})")
        limit = _RECURRENCE_MAX_SPAN.get(self.recurrence)
        if limit is not None and self.end - self.start > limit:
            raise ValueError(
                f"a {self.recurrence.value} period may last at most {limit.days} day(s)"
            )
        if self.ends is not None:
            if self.recurrence is Recurrence.NONE:
                raise ValueError("'ends' only applies to a recurring period")
            if self.ends < self.start.date():
                raise ValueError("'ends' is before the first occurrence")
        return self


# A recurring period may not overlap its own next occurrence: this keeps evaluation to the
# two latest occurrences and the meaning obvious.
_RECURRENCE_MAX_SPAN: dict[Recurrence, dt.timedelta] = {
    Recurrence.DAILY: dt.timedelta(days=1),
    Recurrence.WEEKLY: dt.timedelta(days=7),
    Recurrence.MONTHLY: dt.timedelta(days=28),
    Recurrence.YEARLY: dt.timedelta(days=365),
}


class SpecificDatesSpec(BaseModel):
    """One or more specific date/time periods (meetings, closures), each optionally recurring."""

    model_config = _FROZEN
    kind: Literal["specific_dates"] = "specific_dates"
    periods: tuple[DatePeriod, ...] = Field(min_length=1)


class HolidaysSpec(BaseModel):
    """Public holidays of a country (optionally a subdivision) from the ``holidays`` library.

    ``names`` selects holidays by name (case-insensitive; None = every holiday of that
    calendar); with ``observed`` the "(observed)" substitute days count too. ``ranges`` limit the
    hours on each holiday (default all day). ``recurrence`` yearly observes them every year
    (from ``year`` when given) until ``ends``; ``none`` only in the year ``year``.
    """

    model_config = _FROZEN
    kind: Literal["holidays"] = "holidays"
    country: str
    subdiv: str | None = None
    names: tuple[str, ...] | None = None
    observed: bool = True
    ranges: tuple[TimeRange, ...] = Field(default_factory=lambda: tuple(_whole_day()))
    recurrence: Literal["none", "yearly"] = "yearly"
    year: int | None = None
    ends: dt.date | None = None

    @field_validator("country", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> HolidaysSpec:
        import holidays  # local: only needed to validate, keeps model import light

        supported = holidays.list_supported_countries()
        country = self.country
        if country not in supported:
            raise ValueError(f"unknown holiday country {self.country!r}")
        if self.subdiv is not None and self.subdiv not in supported[country]:
            raise ValueError(f"unknown subdivision {self.subdiv!r} of {country}")
        if not self.ranges:
            raise ValueError("give at least one time range (00:00-24:00 = all day)")
        if self.recurrence == "none" and self.year is None:
            raise ValueError("a non-recurring holiday frame needs 'year'")
        if self.recurrence == "none" and self.ends is not None:
            raise ValueError("'ends' only applies to yearly recurrence")
        if self.year is not None and not 1900 <= self.year <= 2200:
            raise ValueError(f"year {self.year} out of range")
        if self.names:
            known = holiday_names(country, self.subdiv)
            unknown = [n for n in self.names if _base_name(n) not in known]
            if unknown:
                raise ValueError(f"no holiday named {', '.join(map(repr, unknown))} in {country}")
        return self


def _base_name(name: str) -> str:
    return name.replace("(observed)", "").strip().casefold()


_NAME_CACHE: dict[tuple[str, str | None], frozenset[str]] = {}


def holiday_calendar(
    country: str, subdiv: str | None, years: int | range, observed: bool = True
) -> dict[dt.date, str]:
    """Holidays of a calendar, named in English where the library has English names.

    The language is pinned so names (which rules select by) do not depend on the locale.
    """
    import holidays

    cal = holidays.country_holidays(country, subdiv=subdiv, years=years, observed=observed)
    if "en_US" in cal.supported_languages and cal.default_language != "en_US":
        cal = holidays.country_holidays(
            country, subdiv=subdiv, years=years, observed=observed, language="en_US"
        )
    return {day: str(name) for day, name in cal.items()}


def holiday_names(country: str, subdiv: str | None) -> frozenset[str]:
    """Case-folded holiday names a calendar uses (sampled over a span of years)."""
    key = (country, subdiv)
    names = _NAME_CACHE.get(key)
    if names is None:
        cal = holiday_calendar(country, subdiv, range(2015, 2036))
        names = frozenset(_base_name(n) for v in cal.values() for n in v.split("; "))
        _NAME_CACHE[key] = names
    return names


PartSpec = Annotated[
    AlwaysSpec | DaysOfWeekSpec | SpecificDatesSpec | HolidaysSpec, Field(discriminator="kind")
]


class CustomSpec(BaseModel):
    """A union of other kinds: active when any part is active."""

    model_config = _FROZEN
    kind: Literal["custom"] = "custom"
    parts: tuple[PartSpec, ...] = Field(min_length=1)


WhenSpec = Annotated[
    AlwaysSpec | DaysOfWeekSpec | SpecificDatesSpec | HolidaysSpec | CustomSpec,
    Field(discriminator="kind"),
]


class TimeFrame(BaseModel):
    """A named time frame. ``owner`` None = domain (tenant-wide); else the owning extension."""

    model_config = _FROZEN
    name: str = Field(min_length=1, max_length=80)
    when: WhenSpec
    timezone: str = "UTC"
    enabled: bool = True
    owner: str | None = None

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {tz!r}") from exc
        return tz
