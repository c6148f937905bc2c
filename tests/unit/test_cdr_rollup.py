"""The dashboards' rollup (storage.cdr_rollup, migration 0016) gives the figures of the
direct GROUP BY over the CDRs, on SQLite and PostgreSQL: random calls over six time zones'
slots, calls written after a read (counted at the next), a writer that commits after a
later one (PostgreSQL), CDRs deleted behind the Store's back, and two readers refreshing
at once."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from storage import open_store
from storage.base import Store
from storage.cdr import Cdr
from storage.cdr_analytics import volume_slot
from storage.cdr_rollup import split_period
from storage.logins import CdrQuery
from tests.unit.storekit import ZONES, raw_execute, raw_fetch

TENANT = "acme"
FIRST = dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp()
DAYS = 12


def _calls(count: int, seed: int, prefix: str = "c", tenant: str = TENANT) -> list[Cdr]:
    rng = random.Random(seed)
    calls: list[Cdr] = []
    for n in range(count):
        start = FIRST + rng.random() * DAYS * 86400
        answered = rng.random() < 0.6
        answer = start + rng.random() * 20 if answered else None
        anchored = answered and rng.random() < 0.5
        quality = {
            side: {"jitter_ms": round(rng.random() * 120, 2), "loss": round(rng.random() * 0.15, 4)}
            for side in ("caller", "callee")
            if rng.random() < 0.8
        }
        calls.append(
            Cdr(
                call_id=f"{prefix}{seed}-{n:05d}",
                sip_call_id=f"{n}@test",
                tenant=tenant,
                direction=rng.choice(("inbound", "outbound", "internal")),
                caller_number=rng.choice(("101", "102", "+14155550100")),
                caller_name="",
                dialled="102",
                destination="102",
                trunk=rng.choice(("", "carrier", "backup")),
                start=start,
                answer=answer,
                end=(answer or start) + (rng.expovariate(1 / 120) if answered else 0.0),
                disposition="ANSWERED" if answered else rng.choice(("BUSY", "NO ANSWER")),
                sip_code=200 if answered else 486,
                q850_cause=16 if answered else 17,
                q850_name="NORMAL_CLEARING" if answered else "USER_BUSY",
                mos=round(1 + 4 * rng.random(), 2) if anchored else None,
                quality=quality if anchored else {},
            )
        )
    return calls


# Whole days, a period on no slot boundary, one shorter than a slot.
PERIODS = (
    (FIRST - 86400, FIRST + (DAYS + 1) * 86400),
    (FIRST + 3 * 86400 + 1234.5, FIRST + 9 * 86400 + 77.25),
    (FIRST + 5 * 86400 + 100, FIRST + 5 * 86400 + 700),
)


def _figures(value: Any) -> Any:
    """Dataclasses as plain values; float sums of MOS, jitter and loss added in another
    order may differ in their last bit (billed time is summed exactly, in ticks)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _figures(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _figures(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_figures(v) for v in value]
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-12)
    return value


async def _assert_rollup_is_direct(store: Store, periods: tuple[tuple[float, float], ...]) -> None:
    for start, end in periods:
        rolled = CdrQuery(start=start, end=end, tenant=TENANT)
        # The same calls through a filter the rollup does not answer: the direct GROUP BY.
        direct = dataclasses.replace(rolled, tenants=(TENANT,))
        for tz in ZONES:
            base, width = volume_slot(ZoneInfo(tz), start, end)
            got = await store.cdr_volume(rolled, base, width)
            assert got == await store.cdr_volume(direct, base, width), (tz, start, end)
        assert await store.cdr_trunk_totals(rolled) == await store.cdr_trunk_totals(direct)
        quality = await store.cdr_quality_totals(rolled)
        assert _figures(quality) == _figures(await store.cdr_quality_totals(direct))


async def _calls_in_rollup(url: str) -> int:
    rows = await raw_fetch(url, "SELECT coalesce(sum(calls), 0) FROM cdr_rollup")
    return int(rows[0][0])


async def test_rollup_equals_the_direct_group_by_in_six_zones(database_url: str) -> None:
    calls = _calls(2500, seed=1)
    async with open_store(database_url) as store:
        await store.save_cdrs([*calls, *_calls(200, seed=2, tenant="other")])
        await _assert_rollup_is_direct(store, PERIODS)
        assert await _calls_in_rollup(database_url) == 2700
        whole = CdrQuery(start=PERIODS[0][0], end=PERIODS[0][1], tenant=TENANT)
        assert sum(s.calls for s in await store.cdr_volume(whole, 0, 3600)) == 2500


async def test_calls_written_after_a_read_count_at_the_next(database_url: str) -> None:
    whole = CdrQuery(start=PERIODS[0][0], end=PERIODS[0][1], tenant=TENANT)
    async with open_store(database_url) as store:
        await store.save_cdrs(_calls(300, seed=3))
        before = sum(t.attempts for t in await store.cdr_trunk_totals(whole))
        # A long call of the first day, written now: counted by write order, not call time.
        late = _calls(40, seed=4, prefix="late")
        late = [dataclasses.replace(c, start=FIRST + 60, end=FIRST + 90) for c in late]
        await store.save_cdrs(late)
        after = sum(t.attempts for t in await store.cdr_trunk_totals(whole))
        assert after - before == sum(1 for c in late if c.trunk)
        await _assert_rollup_is_direct(store, PERIODS)
        # A CDR written again (the writer's retry) is not counted twice.
        await store.save_cdrs(late[:5])
        await _assert_rollup_is_direct(store, PERIODS)
        assert await _calls_in_rollup(database_url) == 340


async def test_a_writer_committing_after_a_later_one_is_not_lost(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("SQLite writers take turns: rowids become visible in order")
    whole = CdrQuery(start=PERIODS[0][0], end=PERIODS[0][1], tenant=TENANT)
    insert = (
        "INSERT INTO cdrs (call_id, sip_call_id, tenant, direction, caller_number,"
        " caller_name, dialled, destination, trunk, start_time, answer_time, end_time,"
        " disposition, sip_code, q850_cause, q850_name) VALUES ('{id}', 'x', '{t}',"
        " 'inbound', '1', '', '2', '2', 'carrier', {s}, NULL, {s}, 'BUSY', 486, 17, 'USER_BUSY')"
    )
    async with open_store(database_url) as store:
        await store.save_cdrs(_calls(100, seed=5))
        first = await store.cdr_volume(whole, 0, 3600)
        early = await asyncpg.connect(database_url)
        try:
            slow = early.transaction()
            await slow.start()  # this transaction's id is below the next writer's
            await early.execute(insert.format(id="early", t=TENANT, s=FIRST + 3600))
            await raw_execute(database_url, insert.format(id="later", t=TENANT, s=FIRST + 7200))
            held = await store.cdr_volume(whole, 0, 3600)
            # The later writer's call waits until the older transaction is over.
            assert sum(s.calls for s in held) == sum(s.calls for s in first)
            await slow.commit()
        finally:
            await early.close()
        after = await store.cdr_volume(whole, 0, 3600)
        assert sum(s.calls for s in after) == sum(s.calls for s in first) + 2
        await _assert_rollup_is_direct(store, PERIODS)


async def test_deleted_cdrs_leave_the_rollup(database_url: str) -> None:
    calls = _calls(400, seed=6)
    async with open_store(database_url) as store:
        await store.save_cdrs(calls)
        await _assert_rollup_is_direct(store, PERIODS)
    # An operator's retention purge in SQL, then a new process reads the dashboards.
    await raw_execute(database_url, f"DELETE FROM cdrs WHERE start_time < {FIRST + 4 * 86400}")
    async with open_store(database_url) as store:
        await _assert_rollup_is_direct(store, PERIODS)
        kept = sum(1 for c in calls if c.start >= FIRST + 4 * 86400)
        assert await _calls_in_rollup(database_url) == kept


async def test_newest_cdrs_deleted_then_written_again_on_sqlite(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite gives a deleted highest rowid again")
    calls = _calls(50, seed=7)
    async with open_store(database_url) as store:
        await store.save_cdrs(calls)
        await _assert_rollup_is_direct(store, PERIODS)
        await raw_execute(database_url, "DELETE FROM cdrs WHERE rowid > 40")
        await _assert_rollup_is_direct(store, PERIODS)
        await store.save_cdrs(_calls(5, seed=8))
        await _assert_rollup_is_direct(store, PERIODS)
        assert await _calls_in_rollup(database_url) == 45


async def test_two_readers_refreshing_at_once_count_each_call_once(database_url: str) -> None:
    async with open_store(database_url) as one, open_store(database_url) as two:
        await one.save_cdrs(_calls(1500, seed=9))
        await asyncio.gather(one.refresh_cdr_rollup(), two.refresh_cdr_rollup())
        assert await _calls_in_rollup(database_url) == 1500
        await two.save_cdrs(_calls(300, seed=10))
        await asyncio.gather(
            one.cdr_trunk_totals(CdrQuery(start=PERIODS[0][0], end=PERIODS[0][1], tenant=TENANT)),
            two.refresh_cdr_rollup(),
            one.refresh_cdr_rollup(),
        )
        assert await _calls_in_rollup(database_url) == 1800
        await _assert_rollup_is_direct(two, PERIODS)


def test_a_period_is_whole_slots_and_two_ends_read_from_the_cdrs() -> None:
    day = FIRST
    split = split_period(CdrQuery(start=day + 100, end=day + 86400 + 50, tenant=TENANT))
    assert split is not None
    assert (split.first, split.end) == (day // 900 + 1, (day + 86400) // 900)
    assert [(e.start, e.end) for e in split.edges] == [
        (day + 100, day + 900),
        (day + 86400, day + 86400 + 50),
    ]
    aligned = split_period(CdrQuery(start=day, end=day + 3600, tenant=TENANT))
    assert aligned is not None and aligned.edges == ()
    # Shorter than a slot, a site's extensions, another filter: the CDRs answer.
    assert split_period(CdrQuery(start=day + 1, end=day + 1000, tenant=TENANT)) is None
    assert split_period(CdrQuery(start=day, end=day + 3600, tenant=TENANT, parties=("1",))) is None
    assert split_period(CdrQuery(start=day, end=day + 3600, tenant=TENANT, trunk="x")) is None
    assert split_period(CdrQuery(start=day, end=day + 3600)) is None
