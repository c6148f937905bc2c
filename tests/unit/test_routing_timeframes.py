"""Time frame evaluation: every kind, DST in Brussels and New York, recurrence, holidays."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from config.timeframes import TimeFrame
from routing.timeframes import CompiledFrame, LocalClock, is_active, to_timestamp

BXL = ZoneInfo("Europe/Brussels")
NYC = ZoneInfo("America/New_York")
UTC = dt.UTC


def frame(when: dict[str, Any], tz: str = "Europe/Brussels", **kw: Any) -> TimeFrame:
    return TimeFrame.model_validate({"name": "f", "timezone": tz, "when": when, **kw})


def local(zone: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=zone)


WEEKDAYS_9_17 = {
    "kind": "days_of_week",
    "days": {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")},
}
LUNCH_SPLIT = {
    "kind": "days_of_week",
    "days": {
        "mon": [{"start": "08:30", "end": "12:30"}, {"start": "13:30", "end": "18:00"}],
        "sat": [{"start": "10:00", "end": "24:00"}],
    },
}
NIGHT = {"kind": "days_of_week", "days": {"fri": [{"start": "22:00", "end": "06:00"}]}}
EARLY = {"kind": "days_of_week", "days": {"sun": [{"start": "01:00", "end": "04:00"}]}}

# (case id, when spec, timezone, moment, expected)
CASES: list[tuple[str, dict[str, Any], str, dt.datetime, bool]] = [
    ("always", {"kind": "always"}, "UTC", dt.datetime(2024, 1, 1, tzinfo=UTC), True),
    ("always-far", {"kind": "always"}, "Asia/Tokyo", dt.datetime(2099, 12, 31, tzinfo=UTC), True),
    # business hours, Brussels, ordinary days
    ("bxl-mon-open", WEEKDAYS_9_17, "Europe/Brussels", local(BXL, 2024, 6, 3, 9, 0), True),
    ("bxl-mon-before", WEEKDAYS_9_17, "Europe/Brussels", local(BXL, 2024, 6, 3, 8, 59), False),
    ("bxl-mon-last-min", WEEKDAYS_9_17, "Europe/Brussels", local(BXL, 2024, 6, 3, 16, 59), True),
    ("bxl-mon-close", WEEKDAYS_9_17, "Europe/Brussels", local(BXL, 2024, 6, 3, 17, 0), False),
    ("bxl-sat", WEEKDAYS_9_17, "Europe/Brussels", local(BXL, 2024, 6, 8, 12, 0), False),
    ("bxl-sun", WEEKDAYS_9_17, "Europe/Brussels", local(BXL, 2024, 6, 9, 12, 0), False),
    # the same instant seen from UTC: 07:30 UTC is 09:30 CEST (summer), 08:30 CET (winter)
    (
        "bxl-utc-summer",
        WEEKDAYS_9_17,
        "Europe/Brussels",
        dt.datetime(2024, 6, 3, 7, 30, tzinfo=UTC),
        True,
    ),
    (
        "bxl-utc-winter",
        WEEKDAYS_9_17,
        "Europe/Brussels",
        dt.datetime(2024, 1, 8, 7, 30, tzinfo=UTC),
        False,
    ),
    (
        "bxl-utc-winter-9",
        WEEKDAYS_9_17,
        "Europe/Brussels",
        dt.datetime(2024, 1, 8, 8, 0, tzinfo=UTC),
        True,
    ),
    # DST Brussels: Monday after spring-forward (Sun 31 Mar 2024) and after fall-back (Sun 27 Oct)
    (
        "bxl-dst-spring-mon-9",
        WEEKDAYS_9_17,
        "Europe/Brussels",
        dt.datetime(2024, 4, 1, 7, 0, tzinfo=UTC),
        True,
    ),
    (
        "bxl-dst-spring-mon-8",
        WEEKDAYS_9_17,
        "Europe/Brussels",
        dt.datetime(2024, 4, 1, 6, 59, tzinfo=UTC),
        False,
    ),
    (
        "bxl-dst-fall-fri-9",
        WEEKDAYS_9_17,
        "Europe/Brussels",
        dt.datetime(2024, 10, 25, 7, 0, tzinfo=UTC),
        True,
    ),
    (
        "bxl-dst-fall-mon-8",
        WEEKDAYS_9_17,
        "Europe/Brussels",
        dt.datetime(2024, 10, 28, 7, 0, tzinfo=UTC),
        False,
    ),
    (
        "bxl-dst-fall-mon-9",
        WEEKDAYS_9_17,
        "Europe/Brussels",
        dt.datetime(2024, 10, 28, 8, 0, tzinfo=UTC),
        True,
    ),
    # a range covering the skipped hour (02:00-03:00 does not exist on 31 Mar 2024)
    (
        "bxl-spring-0159",
        EARLY,
        "Europe/Brussels",
        dt.datetime(2024, 3, 31, 0, 59, tzinfo=UTC),
        True,
    ),
    ("bxl-spring-0300", EARLY, "Europe/Brussels", dt.datetime(2024, 3, 31, 1, 0, tzinfo=UTC), True),
    (
        "bxl-spring-0400",
        EARLY,
        "Europe/Brussels",
        dt.datetime(2024, 3, 31, 2, 0, tzinfo=UTC),
        False,
    ),
    # a range covering the repeated hour (02:00-03:00 twice on 27 Oct 2024)
    (
        "bxl-fall-first-0230",
        EARLY,
        "Europe/Brussels",
        dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
        True,
    ),
    (
        "bxl-fall-second-0230",
        EARLY,
        "Europe/Brussels",
        dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC),
        True,
    ),
    ("bxl-fall-0400", EARLY, "Europe/Brussels", dt.datetime(2024, 10, 27, 3, 0, tzinfo=UTC), False),
    # New York: spring-forward Sun 10 Mar 2024, fall-back Sun 3 Nov 2024
    (
        "nyc-before-spring",
        WEEKDAYS_9_17,
        "America/New_York",
        dt.datetime(2024, 3, 8, 14, 0, tzinfo=UTC),
        True,
    ),
    (
        "nyc-spring-mon-0900",
        WEEKDAYS_9_17,
        "America/New_York",
        dt.datetime(2024, 3, 11, 13, 0, tzinfo=UTC),
        True,
    ),
    (
        "nyc-spring-mon-0800",
        WEEKDAYS_9_17,
        "America/New_York",
        dt.datetime(2024, 3, 11, 12, 59, tzinfo=UTC),
        False,
    ),
    (
        "nyc-spring-mon-1700",
        WEEKDAYS_9_17,
        "America/New_York",
        dt.datetime(2024, 3, 11, 21, 0, tzinfo=UTC),
        False,
    ),
    (
        "nyc-spring-mon-1659",
        WEEKDAYS_9_17,
        "America/New_York",
        dt.datetime(2024, 3, 11, 20, 59, tzinfo=UTC),
        True,
    ),
    (
        "nyc-fall-mon-0900",
        WEEKDAYS_9_17,
        "America/New_York",
        dt.datetime(2024, 11, 4, 14, 0, tzinfo=UTC),
        True,
    ),
    (
        "nyc-fall-mon-0800",
        WEEKDAYS_9_17,
        "America/New_York",
        dt.datetime(2024, 11, 4, 13, 0, tzinfo=UTC),
        False,
    ),
    (
        "nyc-fall-first-0130",
        EARLY,
        "America/New_York",
        dt.datetime(2024, 11, 3, 5, 30, tzinfo=UTC),
        True,
    ),
    (
        "nyc-fall-second-0130",
        EARLY,
        "America/New_York",
        dt.datetime(2024, 11, 3, 6, 30, tzinfo=UTC),
        True,
    ),
    ("nyc-fall-0400", EARLY, "America/New_York", dt.datetime(2024, 11, 3, 9, 0, tzinfo=UTC), False),
    (
        "nyc-spring-0330",
        EARLY,
        "America/New_York",
        dt.datetime(2024, 3, 10, 7, 30, tzinfo=UTC),
        True,
    ),
    (
        "nyc-spring-0400",
        EARLY,
        "America/New_York",
        dt.datetime(2024, 3, 10, 8, 0, tzinfo=UTC),
        False,
    ),
    # several ranges on a day; end at 24:00
    ("split-morning", LUNCH_SPLIT, "Europe/Brussels", local(BXL, 2024, 6, 3, 8, 30), True),
    ("split-lunch", LUNCH_SPLIT, "Europe/Brussels", local(BXL, 2024, 6, 3, 13, 0), False),
    ("split-afternoon", LUNCH_SPLIT, "Europe/Brussels", local(BXL, 2024, 6, 3, 17, 59), True),
    ("split-evening", LUNCH_SPLIT, "Europe/Brussels", local(BXL, 2024, 6, 3, 18, 0), False),
    ("split-tuesday", LUNCH_SPLIT, "Europe/Brussels", local(BXL, 2024, 6, 4, 10, 0), False),
    ("end-24-late", LUNCH_SPLIT, "Europe/Brussels", local(BXL, 2024, 6, 8, 23, 59), True),
    ("end-24-next", LUNCH_SPLIT, "Europe/Brussels", local(BXL, 2024, 6, 9, 0, 0), False),
    # overnight ranges spill into the next day
    ("night-fri-23", NIGHT, "Europe/Brussels", local(BXL, 2024, 6, 7, 23, 0), True),
    ("night-sat-05", NIGHT, "Europe/Brussels", local(BXL, 2024, 6, 8, 5, 59), True),
    ("night-sat-06", NIGHT, "Europe/Brussels", local(BXL, 2024, 6, 8, 6, 0), False),
    ("night-fri-05", NIGHT, "Europe/Brussels", local(BXL, 2024, 6, 7, 5, 0), False),
    ("night-fri-21", NIGHT, "Europe/Brussels", local(BXL, 2024, 6, 7, 21, 59), False),
]


def _period(
    start: str, end: str, recurrence: str = "none", ends: str | None = None
) -> dict[str, Any]:
    p: dict[str, Any] = {"start": start, "end": end, "recurrence": recurrence}
    if ends:
        p["ends"] = ends
    return {"kind": "specific_dates", "periods": [p]}


ONCE = _period("2024-05-10T14:00", "2024-05-12T09:00")
DAILY = _period("2024-05-10T12:00", "2024-05-10T13:00", "daily", "2024-05-20")
DAILY_OVERNIGHT = _period("2024-05-10T23:00", "2024-05-11T01:00", "daily")
WEEKLY = _period("2024-05-06T10:00", "2024-05-06T11:30", "weekly", "2024-06-03")
MONTHLY_31 = _period("2024-01-31T09:00", "2024-01-31T10:00", "monthly")
MONTHLY_15 = _period("2024-01-15T22:00", "2024-01-16T02:00", "monthly", "2024-04-15")
YEARLY = _period("2020-12-24T12:00", "2020-12-26T00:00", "yearly", "2025-12-31")
LEAP = _period("2024-02-29T00:00", "2024-03-01T00:00", "yearly")

CASES += [
    ("once-before", ONCE, "Europe/Brussels", local(BXL, 2024, 5, 10, 13, 59), False),
    ("once-start", ONCE, "Europe/Brussels", local(BXL, 2024, 5, 10, 14, 0), True),
    ("once-middle", ONCE, "Europe/Brussels", local(BXL, 2024, 5, 11, 3, 0), True),
    ("once-end", ONCE, "Europe/Brussels", local(BXL, 2024, 5, 12, 9, 0), False),
    ("once-next-year", ONCE, "Europe/Brussels", local(BXL, 2025, 5, 11, 3, 0), False),
    ("daily-first", DAILY, "Europe/Brussels", local(BXL, 2024, 5, 10, 12, 30), True),
    ("daily-before-first", DAILY, "Europe/Brussels", local(BXL, 2024, 5, 9, 12, 30), False),
    ("daily-later", DAILY, "Europe/Brussels", local(BXL, 2024, 5, 15, 12, 59), True),
    ("daily-outside", DAILY, "Europe/Brussels", local(BXL, 2024, 5, 15, 13, 0), False),
    ("daily-last-day", DAILY, "Europe/Brussels", local(BXL, 2024, 5, 20, 12, 0), True),
    ("daily-after-end", DAILY, "Europe/Brussels", local(BXL, 2024, 5, 21, 12, 0), False),
    (
        "daily-overnight-late",
        DAILY_OVERNIGHT,
        "Europe/Brussels",
        local(BXL, 2024, 8, 1, 23, 30),
        True,
    ),
    (
        "daily-overnight-early",
        DAILY_OVERNIGHT,
        "Europe/Brussels",
        local(BXL, 2024, 8, 2, 0, 59),
        True,
    ),
    (
        "daily-overnight-out",
        DAILY_OVERNIGHT,
        "Europe/Brussels",
        local(BXL, 2024, 8, 2, 1, 0),
        False,
    ),
    (
        "daily-overnight-first-eve",
        DAILY_OVERNIGHT,
        "Europe/Brussels",
        local(BXL, 2024, 5, 10, 0, 30),
        False,
    ),
    ("weekly-first", WEEKLY, "Europe/Brussels", local(BXL, 2024, 5, 6, 10, 0), True),
    ("weekly-next-monday", WEEKLY, "Europe/Brussels", local(BXL, 2024, 5, 13, 11, 29), True),
    ("weekly-tuesday", WEEKLY, "Europe/Brussels", local(BXL, 2024, 5, 14, 10, 30), False),
    ("weekly-last", WEEKLY, "Europe/Brussels", local(BXL, 2024, 6, 3, 10, 30), True),
    ("weekly-ended", WEEKLY, "Europe/Brussels", local(BXL, 2024, 6, 10, 10, 30), False),
    ("monthly-31-jan", MONTHLY_31, "Europe/Brussels", local(BXL, 2024, 1, 31, 9, 30), True),
    ("monthly-31-feb-skip", MONTHLY_31, "Europe/Brussels", local(BXL, 2024, 2, 29, 9, 30), False),
    ("monthly-31-mar", MONTHLY_31, "Europe/Brussels", local(BXL, 2024, 3, 31, 9, 30), True),
    ("monthly-31-apr-skip", MONTHLY_31, "Europe/Brussels", local(BXL, 2024, 4, 30, 9, 30), False),
    ("monthly-31-next-year", MONTHLY_31, "Europe/Brussels", local(BXL, 2025, 12, 31, 9, 59), True),
    ("monthly-overnight", MONTHLY_15, "Europe/Brussels", local(BXL, 2024, 3, 16, 1, 0), True),
    (
        "monthly-overnight-year-turn",
        MONTHLY_15,
        "Europe/Brussels",
        local(BXL, 2024, 4, 15, 23, 0),
        True,
    ),
    ("monthly-ended", MONTHLY_15, "Europe/Brussels", local(BXL, 2024, 5, 15, 23, 0), False),
    ("monthly-ended-spill", MONTHLY_15, "Europe/Brussels", local(BXL, 2024, 4, 16, 1, 0), True),
    ("yearly-first", YEARLY, "Europe/Brussels", local(BXL, 2020, 12, 25, 12, 0), True),
    ("yearly-later", YEARLY, "Europe/Brussels", local(BXL, 2023, 12, 24, 12, 0), True),
    ("yearly-before-noon", YEARLY, "Europe/Brussels", local(BXL, 2023, 12, 24, 11, 59), False),
    ("yearly-26th", YEARLY, "Europe/Brussels", local(BXL, 2023, 12, 26, 0, 0), False),
    ("yearly-last", YEARLY, "Europe/Brussels", local(BXL, 2025, 12, 25, 8, 0), True),
    ("yearly-ended", YEARLY, "Europe/Brussels", local(BXL, 2026, 12, 25, 8, 0), False),
    ("yearly-before-first", YEARLY, "Europe/Brussels", local(BXL, 2019, 12, 25, 8, 0), False),
    ("leap-2024", LEAP, "UTC", dt.datetime(2024, 2, 29, 10, tzinfo=UTC), True),
    ("leap-2025-skip", LEAP, "UTC", dt.datetime(2025, 2, 28, 10, tzinfo=UTC), False),
    ("leap-2025-mar", LEAP, "UTC", dt.datetime(2025, 3, 1, 10, tzinfo=UTC), False),
    ("leap-2028", LEAP, "UTC", dt.datetime(2028, 2, 29, 23, 59, tzinfo=UTC), True),
    # New York DST within a specific period: wall-clock 01:00-03:00 on the fall-back day
    (
        "nyc-period-fallback-second-0130",
        _period("2024-11-03T01:00", "2024-11-03T03:00"),
        "America/New_York",
        dt.datetime(2024, 11, 3, 6, 30, tzinfo=UTC),
        True,
    ),
    (
        "nyc-period-spring-gap",
        _period("2024-03-10T01:00", "2024-03-10T03:00"),
        "America/New_York",
        dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC),  # 03:00 EDT, just after the gap
        False,
    ),
]

US_ALL = {"kind": "holidays", "country": "US"}
US_JULY4 = {"kind": "holidays", "country": "us", "names": ["Independence Day"]}
US_JULY4_HOURS = {**US_JULY4, "ranges": [{"start": "09:00", "end": "17:00"}]}
US_NOT_OBSERVED = {**US_JULY4, "observed": False}
US_2022_ONLY = {"kind": "holidays", "country": "US", "recurrence": "none", "year": 2022}
US_UNTIL_2023 = {"kind": "holidays", "country": "US", "ends": "2023-12-31"}
DE_BY = {"kind": "holidays", "country": "DE", "subdiv": "BY"}
DE = {"kind": "holidays", "country": "DE"}
BE_NIGHT = {"kind": "holidays", "country": "BE", "ranges": [{"start": "20:00", "end": "02:00"}]}

CASES += [
    ("us-july4-2022", US_ALL, "America/New_York", local(NYC, 2022, 7, 4, 10), True),
    ("us-july5-2022", US_ALL, "America/New_York", local(NYC, 2022, 7, 5, 10), False),
    ("us-thanksgiving-2024", US_ALL, "America/New_York", local(NYC, 2024, 11, 28, 23, 59), True),
    ("us-july4-name", US_JULY4, "America/New_York", local(NYC, 2023, 7, 4, 0, 0), True),
    ("us-xmas-not-selected", US_JULY4, "America/New_York", local(NYC, 2023, 12, 25, 12), False),
    # 4 July 2021 was a Sunday; observed on Monday 5 July
    ("us-observed-2021", US_JULY4, "America/New_York", local(NYC, 2021, 7, 5, 12), True),
    (
        "us-not-observed-2021",
        US_NOT_OBSERVED,
        "America/New_York",
        local(NYC, 2021, 7, 5, 12),
        False,
    ),
    ("us-sunday-2021", US_NOT_OBSERVED, "America/New_York", local(NYC, 2021, 7, 4, 12), True),
    ("us-hours-in", US_JULY4_HOURS, "America/New_York", local(NYC, 2022, 7, 4, 9, 0), True),
    ("us-hours-out", US_JULY4_HOURS, "America/New_York", local(NYC, 2022, 7, 4, 17, 0), False),
    ("us-hours-early", US_JULY4_HOURS, "America/New_York", local(NYC, 2022, 7, 4, 8, 59), False),
    # the holiday is judged in the frame's zone: 02:00 UTC on 5 July is still 4 July in NY
    ("us-zone-edge", US_JULY4, "America/New_York", dt.datetime(2022, 7, 5, 2, 0, tzinfo=UTC), True),
    ("us-zone-edge-utc", US_JULY4, "UTC", dt.datetime(2022, 7, 5, 2, 0, tzinfo=UTC), False),
    ("us-2022-only-in", US_2022_ONLY, "America/New_York", local(NYC, 2022, 12, 26, 12), True),
    ("us-2022-only-out", US_2022_ONLY, "America/New_York", local(NYC, 2023, 12, 25, 12), False),
    ("us-until-2023-in", US_UNTIL_2023, "America/New_York", local(NYC, 2023, 12, 25, 12), True),
    ("us-until-2023-out", US_UNTIL_2023, "America/New_York", local(NYC, 2024, 12, 25, 12), False),
    ("de-by-epiphany", DE_BY, "Europe/Berlin", dt.datetime(2024, 1, 6, 12, tzinfo=UTC), True),
    ("de-federal-epiphany", DE, "Europe/Berlin", dt.datetime(2024, 1, 6, 12, tzinfo=UTC), False),
    (
        "be-national-day",
        {"kind": "holidays", "country": "BE"},
        "Europe/Brussels",
        local(BXL, 2024, 7, 21, 12),
        True,
    ),
    (
        "be-easter-monday",
        {"kind": "holidays", "country": "BE"},
        "Europe/Brussels",
        local(BXL, 2024, 4, 1, 12),
        True,
    ),
    ("be-night-eve", BE_NIGHT, "Europe/Brussels", local(BXL, 2024, 7, 21, 21, 0), True),
    ("be-night-after-midnight", BE_NIGHT, "Europe/Brussels", local(BXL, 2024, 7, 22, 1, 59), True),
    ("be-night-too-late", BE_NIGHT, "Europe/Brussels", local(BXL, 2024, 7, 22, 2, 0), False),
    ("be-night-before", BE_NIGHT, "Europe/Brussels", local(BXL, 2024, 7, 21, 1, 0), False),
]

CUSTOM = {
    "kind": "custom",
    "parts": [
        WEEKDAYS_9_17,
        {"kind": "holidays", "country": "US", "names": ["Christmas Day"]},
        _period("2024-08-15T10:00", "2024-08-15T11:00", "yearly"),
    ],
}
CASES += [
    ("custom-weekday", CUSTOM, "America/New_York", local(NYC, 2024, 6, 3, 10), True),
    ("custom-xmas-evening", CUSTOM, "America/New_York", local(NYC, 2024, 12, 25, 20), True),
    ("custom-period", CUSTOM, "America/New_York", local(NYC, 2025, 8, 15, 10, 30), True),
    ("custom-none", CUSTOM, "America/New_York", local(NYC, 2024, 6, 8, 10), False),
    ("custom-period-out", CUSTOM, "America/New_York", local(NYC, 2025, 8, 16, 10, 30), False),
]


@pytest.mark.parametrize(
    ("when", "tz", "moment", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_frame_active(when: dict[str, Any], tz: str, moment: dt.datetime, expected: bool) -> None:
    assert is_active(frame(when, tz), moment) is expected
    # epoch seconds give the same answer as the aware datetime
    assert is_active(frame(when, tz), moment.timestamp()) is expected


def test_disabled_frame_never_active() -> None:
    assert not is_active(frame({"kind": "always"}, enabled=False), 0)


def test_match_reports_what_matched() -> None:
    compiled = CompiledFrame(frame(US_JULY4_HOURS, "America/New_York"))
    why = compiled.match(LocalClock(local(NYC, 2022, 7, 4, 10).timestamp()))
    assert why is not None and "Independence Day" in why and "09:00-17:00" in why
    compiled = CompiledFrame(frame(LUNCH_SPLIT))
    assert compiled.match(LocalClock(local(BXL, 2024, 6, 3, 14).timestamp())) == "mon 13:30-18:00"


@pytest.mark.parametrize(
    ("when", "tz", "message"),
    [
        ({"kind": "days_of_week", "days": {}}, "UTC", "at least one day"),
        ({"kind": "days_of_week", "days": {"mon": []}}, "UTC", "at least one time range"),
        ({"kind": "days_of_week", "days": {"xyz": [{"start": "09:00"}]}}, "UTC", "days"),
        (
            {"kind": "days_of_week", "days": {"mon": [{"start": "09:00", "end": "09:00"}]}},
            "UTC",
            "empty",
        ),
        (
            {"kind": "days_of_week", "days": {"mon": [{"start": "25:00", "end": "26:00"}]}},
            "UTC",
            "start",
        ),
        ({"kind": "always"}, "Mars/Olympus", "unknown timezone"),
        (_period("2024-01-02T00:00", "2024-01-01T00:00"), "UTC", "before or when it starts"),
        (_period("2024-01-01T00:00", "2024-01-03T00:00", "daily"), "UTC", "at most 1 day"),
        (_period("2024-01-01T00:00", "2024-01-09T00:00", "weekly"), "UTC", "at most 7 day"),
        (_period("2024-01-01T00:00", "2024-01-02T00:00", "none", "2024-02-01"), "UTC", "recurring"),
        (
            _period("2024-01-01T00:00", "2024-01-02T00:00", "daily", "2023-02-01"),
            "UTC",
            "before the first",
        ),
        (_period("2024-01-01T00:00+01:00", "2024-01-02T00:00+01:00"), "UTC", "offset"),
        ({"kind": "holidays", "country": "XX"}, "UTC", "unknown holiday country"),
        ({"kind": "holidays", "country": "DE", "subdiv": "ZZ"}, "UTC", "unknown subdivision"),
        ({"kind": "holidays", "country": "US", "names": ["Festivus"]}, "UTC", "Festivus"),
        ({"kind": "holidays", "country": "US", "recurrence": "none"}, "UTC", "needs 'year'"),
        ({"kind": "holidays", "country": "US", "ranges": []}, "UTC", "at least one time range"),
        ({"kind": "custom", "parts": []}, "UTC", "parts"),
        ({"kind": "weekly-ish"}, "UTC", "kind"),
    ],
)
def test_invalid_frames_name_the_problem(when: dict[str, Any], tz: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        frame(when, tz)
    assert message in str(info.value)


@pytest.mark.parametrize("bad", [dt.datetime(2024, 1, 1), "2024-01-01", float("nan"), 1e20, True])
def test_bad_call_time_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        to_timestamp(bad)
