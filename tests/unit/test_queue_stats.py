"""Call-center statistics from the queue event log: a scripted day with hand-computed
figures, stored and read back on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from softswitch.queues.period import Period, parse_day_part, parse_weekdays
from softswitch.queues.report import collect, render
from storage import StorageError, open_store
from storage.cdr import Cdr
from storage.queue_events import QueueEvent

T = "acme"
DAY = dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()  # a Monday, 00:00 UTC


def at(hh: int, mm: int = 0, ss: int = 0, day: int = 0) -> float:
    return DAY + day * 86400 + hh * 3600 + mm * 60 + ss


def ev(
    event: str, when: float, queue: str = "", call: str = "", agent: str = "", reason: str = ""
) -> QueueEvent:
    return QueueEvent(T, event, when, queue, call, agent, reason)


def status(agent: str, when: float, reason: str) -> QueueEvent:
    return ev("agent_status", when, agent=agent, reason=reason)


def call(queue: str, cid: str, *steps: tuple[str, float, str, str]) -> list[QueueEvent]:
    return [ev(kind, when, queue, cid, agent, reason) for kind, when, agent, reason in steps]


LH = "linear_hunt"
DAY_EVENTS: list[QueueEvent] = [
    status("102", at(20, day=-1), "available"),  # before the day: carried in
    status("101", at(8), "available"),
    status("102", at(10), "logged_out"),
    status("102", at(11), "available"),
    status("101", at(12), "on_break:lunch"),
    status("101", at(13), "available"),
    status("101", at(17), "logged_out"),
    # c8 entered the evening before: not the day's, even though answered after midnight.
    *call(
        "sales",
        "c8",
        ("entered", at(23, 59, 0, day=-1), "", ""),
        ("offered", at(23, 59, 5, day=-1), "101", LH),
        ("answered", at(0, 0, 30), "101", ""),
        ("completed", at(0, 2, 30), "101", ""),
    ),
    *call(
        "sales",
        "c1",
        ("entered", at(9), "", ""),
        ("offered", at(9, 0, 5), "101", LH),
        ("answered", at(9, 0, 20), "101", ""),
        ("completed", at(9, 5, 20), "101", ""),
        ("wrapup_start", at(9, 5, 20), "101", ""),
        ("wrapup_end", at(9, 5, 50), "101", ""),
    ),
    *call(
        "sales",
        "c2",
        ("entered", at(9, 10), "", ""),
        ("offered", at(9, 10, 1), "102", LH),
        ("missed", at(9, 10, 21), "102", "no_answer"),
        ("offered", at(9, 10, 21), "101", LH),
        ("answered", at(9, 10, 45), "101", ""),
        ("completed", at(9, 12, 45), "101", ""),
        ("wrapup_start", at(9, 12, 45), "101", ""),
        ("wrapup_end", at(9, 13, 45), "101", ""),
    ),
    *call("sales", "c3", ("entered", at(9, 20), "", ""), ("abandoned", at(9, 20, 5), "", "")),
    *call(
        "sales",
        "c4",
        ("entered", at(9, 30), "", ""),
        ("offered", at(9, 30, 2), "102", LH),
        ("missed", at(9, 30, 22), "102", "no_answer"),
        ("abandoned", at(9, 30, 40), "", ""),
    ),
    *call("sales", "c5", ("entered", at(9, 40), "", ""), ("exited", at(9, 42), "", "forwarded")),
    *call("sales", "c6", ("entered", at(9, 50), "", ""), ("exited", at(9, 51), "", "voicemail")),
    *call(
        "support",
        "s1",
        ("entered", at(14), "", ""),
        ("offered", at(14, 0, 1), "101", "ring_all"),
        ("offered", at(14, 0, 1), "102", "ring_all"),
        ("missed", at(14, 0, 15), "101", "answered_elsewhere"),
        ("answered", at(14, 0, 15), "102", ""),
        ("completed", at(14, 10, 15), "102", ""),
        ("wrapup_start", at(14, 10, 15), "102", ""),
        ("wrapup_end", at(14, 12, 15), "102", ""),
    ),
    # c7 enters just before midnight: the day's call, answered the next day.
    *call(
        "sales",
        "c7",
        ("entered", at(23, 59, 50), "", ""),
        ("offered", at(23, 59, 55), "102", LH),
        ("answered", at(0, 0, 10, day=1), "102", ""),
        ("completed", at(0, 1, 10, day=1), "102", ""),
    ),
]


def cdr(
    cid: str, direction: str, caller: str, dest: str, start: float, answer: float | None, end: float
) -> Cdr:
    disposition = "ANSWERED" if answer is not None else "NO ANSWER"
    return Cdr(
        cid,
        cid,
        T,
        direction,
        caller,
        "",
        dest,
        dest,
        "",
        start,
        answer,
        end,
        disposition,
        200,
        16,
        "",
    )


CDRS = [
    cdr("o1", "outbound", "101", "+4930123", at(15), at(15, 0, 10), at(15, 2, 10)),
    cdr("o2", "outbound", "101", "+4930124", at(15, 10), None, at(15, 10, 30)),
    cdr("i1", "inbound", "+4930999", "102", at(16), at(16, 0, 5), at(16, 5, 5)),
    cdr("n1", "internal", "101", "102", at(16, 30), at(16, 30, 2), at(16, 40, 2)),  # on-net
]


async def _stored(url: str) -> None:
    async with open_store(url) as store:
        # Written in two batches, out of order within the day: the log keeps times.
        await store.append_queue_events(DAY_EVENTS[:20])
        await store.append_queue_events(DAY_EVENTS[20:])
        await store.save_cdrs(CDRS)


async def test_scripted_day_gives_the_guides_figures(database_url: str) -> None:
    await _stored(database_url)
    period = Period.build("2026-03-02", "2026-03-03", "UTC")
    async with open_store(database_url) as store:
        report = await collect(store, T, period, thresholds={"sales": 30.0}, queues=["idle"])
    queues = {q.queue: q for q in report.queues}
    assert sorted(queues) == ["idle", "sales", "support"]
    assert queues["idle"].volume == 0 and queues["idle"].service_level is None

    sales = queues["sales"]
    assert (sales.volume, sales.offered, sales.handled) == (7, 5, 3)  # c1-c7; c5, c6 not offered
    assert (sales.abandoned, sales.adjusted_abandoned, sales.adjusted_offered) == (2, 1, 4)
    assert (sales.forwarded, sales.voicemail, sales.other_exits) == (1, 1, 0)
    assert sales.abandon_rate == pytest.approx(40.0)  # 2 / 5
    assert sales.adjusted_abandon_rate == pytest.approx(25.0)  # 1 / 4
    # c1 (20 s) and c7 (20 s) within 30 s, c2 (45 s) not: 2/3 less the abandon rate.
    assert sales.service_level == pytest.approx(200 / 3 - 40.0)
    assert sales.service_level_threshold == 30.0
    assert sales.dial_transfers == pytest.approx(400 / 7)  # c1, c2, c4, c7 rang an agent
    assert sales.average_wait == pytest.approx((20 + 45 + 5 + 40 + 120 + 60 + 20) / 7)
    assert sales.average_answer_speed == pytest.approx((20 + 45 + 20) / 3)
    assert sales.average_talk == pytest.approx((300 + 120 + 60) / 3)
    assert sales.average_wrapup == pytest.approx((30 + 60 + 0) / 3)
    assert sales.average_handle == pytest.approx(570 / 3)
    assert sales.talk_time == pytest.approx(480)

    support = queues["support"]
    assert (support.volume, support.offered, support.handled, support.abandoned) == (1, 1, 1, 0)
    assert support.service_level == pytest.approx(100.0)  # 15 s within the default 60 s
    assert support.service_level_threshold == 60.0
    assert (support.average_talk, support.average_wrapup) == (600, 120)

    agents = {a.agent: a for a in report.agents}
    a101, a102 = agents["101"], agents["102"]
    assert (a101.handled, a101.offered, a101.missed) == (2, 3, 0)  # ring-all miss not counted
    assert (a102.handled, a102.offered, a102.missed) == (2, 4, 2)
    assert (a101.talk_time, a101.average_talk, a101.average_wrapup) == (420, 210, 45)
    assert a101.average_handle == pytest.approx(255)
    assert (a102.talk_time, a102.average_talk, a102.average_wrapup) == (660, 330, 60)
    assert a101.status_times == {
        "available": 8 * 3600,
        "logged_out": 15 * 3600,
        "on_break:lunch": 3600,
    }
    assert (a101.logged_in, a101.available, a101.unavailable) == (9 * 3600, 8 * 3600, 16 * 3600)
    assert a102.status_times == {"available": 23 * 3600, "logged_out": 3600}
    assert (a102.logged_in, a102.available, a102.unavailable) == (23 * 3600, 23 * 3600, 3600)
    assert (a101.outbound_attempts, a101.outbound_answered, a101.outbound_time) == (2, 1, 120)
    assert (a101.inbound_answered, a102.inbound_answered, a102.inbound_time) == (0, 1, 300)
    assert a102.outbound_attempts == 0  # the internal call is on-net


async def test_day_part_weekdays_and_timezone_narrow_the_period(database_url: str) -> None:
    await _stored(database_url)
    async with open_store(database_url) as store:
        morning = Period.build("2026-03-01", "2026-03-08", "UTC", "mon-fri", "09:00-10:00")
        report = await collect(store, T, morning, thresholds={"sales": 30.0}, queue="sales")
        assert [q.volume for q in report.queues] == [6]  # c1-c6; not c7 (23:59)
        assert {a.agent: a.status_times for a in report.agents} == {
            "101": {"available": 3600, "logged_out": 4 * 3600},  # Monday only, then out
            "102": {"available": 5 * 3600},  # since Sunday evening; 10-11 is outside
        }
        # Berlin's Monday is 23:00 Sunday to 23:00 Monday UTC: c8 in, c7 out.
        berlin = Period.build("2026-03-02", "2026-03-03", "Europe/Berlin")
        sales = (await collect(store, T, berlin, thresholds={"sales": 30.0}, queue="sales")).queues[
            0
        ]
        assert (sales.volume, sales.handled) == (7, 3)
        assert sales.average_answer_speed == pytest.approx((90 + 20 + 45) / 3)
        assert sales.service_level == 0.0  # 1/3 within less 40 % abandoned: never below 0
        weekend = Period.build("2026-03-01", "2026-03-08", "UTC", "sat-sun")
        assert [q.volume for q in (await collect(store, T, weekend, queues=["sales"])).queues] == [
            1  # c8, Sunday 23:59
        ]


async def test_agent_filter_and_formats(database_url: str) -> None:
    await _stored(database_url)
    period = Period.build("2026-03-02", "2026-03-03")
    async with open_store(database_url) as store:
        report = await collect(store, T, period, agent="102")
    assert [a.agent for a in report.agents] == ["102"]
    table = render(report, "table")
    assert "sales" in table and "service_level" in table and "102" in table
    lines = render(report, "csv", "agents").splitlines()
    assert lines[0].startswith("agent,handled,offered,missed") and lines[1].startswith("102,2,4,2")
    assert '"queue": "support"' in render(report, "json")
    with pytest.raises(ValueError, match="format"):
        render(report, "xml")


async def test_bad_events_name_the_row_and_nothing_is_written(database_url: str) -> None:
    good = ev("entered", at(9), "sales", "x1")
    cases = [
        (ev("teleported", at(9), "sales", "x2"), "event"),
        (ev("entered", at(9), "", "x2"), "queue"),
        (ev("offered", at(9), "sales", "x2"), "agent"),
        (ev("exited", at(9), "sales", "x2", reason="bored"), "reason"),
        (status("101", at(9), "napping"), "reason"),
        (ev("entered", float("nan"), "sales", "x2"), "at"),
    ]
    async with open_store(database_url) as store:
        for bad, field in cases:
            with pytest.raises(StorageError, match=rf"queue_events\[1\]\.{field}"):
                await store.append_queue_events([good, bad])
        assert await store.load_queue_events(T, 0, at(24)) == []
        await store.append_queue_events([good, status("101", at(8), "on_break:lunch")])
        assert [e.event for e in await store.load_queue_events(T, 0, at(24))] == [
            "agent_status",
            "entered",
        ]
        (last,) = await store.last_agent_statuses(T, at(9))
        assert (last.status, last.status_reason) == ("on_break", "lunch")
        assert await store.last_agent_statuses(T, at(7)) == []


def test_period_parsing_errors_name_the_field() -> None:
    assert parse_weekdays("sat-mon") == frozenset({5, 6, 0})
    assert parse_day_part("22:00-06:00") == (dt.time(22), dt.time(6))
    for bad, field in [("funday", "weekdays"), ("", "weekdays")]:
        with pytest.raises(ValueError, match=field):
            parse_weekdays(bad)
    with pytest.raises(ValueError, match="day part"):
        parse_day_part("9-5")
    with pytest.raises(ValueError, match="timezone"):
        Period.build("2026-03-02", "2026-03-03", "Mars/Olympus")
    with pytest.raises(ValueError, match="to"):
        Period.build("2026-03-03", "2026-03-02")
    night = Period.build("2026-03-02", "2026-03-04", "UTC", "mon", "22:00-06:00")
    assert night.duration == 8 * 3600  # Monday night only, across midnight
    assert night.contains(at(3, day=1)) and not night.contains(at(3))
