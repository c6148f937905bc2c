"""The dashboards' aggregates computed by the database (storage.cdr_analytics through the
API's analytics routes) give the numbers that adding every call up in Python gives, on
SQLite and PostgreSQL: calls across hour and midnight boundaries, zones with half- and
quarter-hour offsets and summer time changes, unanswered and zero-length calls, calls
without a trunk, anchored calls with one side's figures or none."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from softswitch.api import routes_history
from softswitch.api.deps import TenantScope
from storage import open_store
from storage.base import Store
from storage.cdr import Cdr
from storage.cdr_analytics import JITTER_EDGES, LOSS_EDGES, MOS_EDGES, volume_slot
from tests.unit.storekit import ZONES

TENANT = "acme"


@dataclass
class _Context:
    store: Store


@dataclass
class _Tenant:
    name: str


@dataclass
class _Scope:
    """What the analytics routes read of a TenantScope."""

    ctx: _Context
    tenant: _Tenant
    extensions: frozenset[str] | None = None


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def _cdr(n: int, start: float, **fields: Any) -> Cdr:
    values: dict[str, Any] = {
        "call_id": f"c{n:05d}",
        "sip_call_id": f"{n}@test",
        "tenant": TENANT,
        "direction": "internal",
        "caller_number": "101",
        "caller_name": "",
        "dialled": "102",
        "destination": "102",
        "trunk": "",
        "start": start,
        "answer": None,
        "end": start,
        "disposition": "NO ANSWER",
        "sip_code": 480,
        "q850_cause": 19,
        "q850_name": "NO_ANSWER",
    }
    values.update(fields)
    return Cdr(**values)


def _edge_cases() -> list[Cdr]:
    """Calls at and around the awkward instants."""
    at = [
        "2026-03-08T06:59:59.999+00:00",  # New York: just before 02:00 EST -> EDT
        "2026-03-08T07:00:00+00:00",
        "2026-11-01T05:30:00+00:00",  # New York: 01:30 EDT
        "2026-11-01T06:30:00+00:00",  # New York: 01:30 EST, the repeated hour
        "2026-03-29T00:59:59+00:00",  # Berlin: before the change
        "2026-03-29T01:00:00+00:00",
        "2026-10-25T00:30:00+00:00",
        "2026-10-25T01:30:00+00:00",
        "2026-03-07T23:59:59.5+00:00",  # UTC midnight
        "2026-03-08T00:00:00+00:00",
        "2026-03-08T18:29:59+00:00",  # Kolkata midnight (+05:30)
        "2026-03-08T18:30:00+00:00",
        "2026-03-08T18:14:59+00:00",  # Kathmandu midnight (+05:45)
        "2026-03-08T18:15:00+00:00",
    ]
    calls: list[Cdr] = []
    for i, text in enumerate(at):
        start = _epoch(text)
        calls.append(
            _cdr(
                i,
                start,
                answer=start + 3,
                end=start + 3,  # answered, zero seconds billed
                disposition="ANSWERED",
                direction="inbound",
                trunk="carrier",
            )
        )
    # One hour long, across midnight; answer recorded after the end (a clock step).
    start = _epoch("2026-03-08T23:30:00+00:00")
    calls.append(_cdr(100, start, answer=start + 5, end=start + 3605, disposition="ANSWERED"))
    calls.append(_cdr(101, start + 1, answer=start + 10, end=start + 5, disposition="ANSWERED"))
    # Anchored calls: both sides, one side, a side without jitter, a non-number.
    quality = [
        {"caller": {"jitter_ms": 4.0, "loss": 0.0}, "callee": {"jitter_ms": 12.5, "loss": 0.02}},
        {"callee": {"jitter_ms": 100.0, "loss": 0.1}},
        {"caller": {"loss": 0.005}},
        {"caller": {"jitter_ms": "n/a", "loss": 1}},
        {},
    ]
    for i, q in enumerate(quality):
        s = start - 7200 + i * 60
        calls.append(
            _cdr(
                200 + i,
                s,
                answer=s + 1,
                end=s + 61,
                disposition="ANSWERED",
                trunk="carrier" if i % 2 else "",
                direction="outbound" if i % 2 else "internal",
                mos=[1.0, 4.3, 3.0, 5.0, 2.2][i],
                quality=q,
            )
        )
    return calls


def _random_calls(count: int) -> list[Cdr]:
    rng = random.Random(5)
    first = _epoch("2026-02-25T00:00:00+00:00")
    calls: list[Cdr] = []
    for n in range(count):
        start = first + rng.random() * 40 * 86400
        answered = rng.random() < 0.6
        answer = start + rng.random() * 20 if answered else None
        anchored = answered and rng.random() < 0.5
        calls.append(
            _cdr(
                1000 + n,
                start,
                answer=answer,
                end=(answer or start) + (rng.expovariate(1 / 120) if answered else 0.0),
                disposition="ANSWERED" if answered else rng.choice(("BUSY", "NO ANSWER")),
                direction=rng.choice(("inbound", "outbound", "internal")),
                trunk=rng.choice(("", "carrier", "backup")),
                caller_number=rng.choice(("101", "102", "+14155550100")),
                mos=round(1 + 4 * rng.random(), 2) if anchored else None,
                quality=(
                    {
                        side: {
                            "jitter_ms": round(rng.random() * 120, 2),
                            "loss": round(rng.random() * 0.15, 4),
                        }
                        for side in ("caller", "callee")
                        if rng.random() < 0.8
                    }
                    if anchored
                    else {}
                ),
            )
        )
    return calls


# -- the reference: every call added up in Python (the routes' former arithmetic) ----------


def _python_volume(calls: list[Cdr], zone: ZoneInfo, bucket: str) -> list[dict[str, Any]]:
    buckets: dict[dt.datetime, dict[str, Any]] = {}
    billsec: dict[dt.datetime, float] = {}
    for c in sorted(calls, key=lambda c: (c.start, c.call_id), reverse=True):
        key = dt.datetime.fromtimestamp(c.start, zone).replace(minute=0, second=0, microsecond=0)
        if bucket == "day":
            key = key.replace(hour=0)
        if key not in buckets:
            buckets[key] = {"start": key.isoformat(), "calls": 0, "answered": 0}
            buckets[key].update(inbound=0, outbound=0, internal=0)
            billsec[key] = 0.0
        b = buckets[key]
        b["calls"] += 1
        b["answered"] += c.answer is not None
        b[c.direction] += 1
        billsec[key] += c.billsec
    for key, b in buckets.items():
        b["minutes"] = round(billsec[key] / 60, 3)
    return [buckets[k] for k in sorted(buckets)]


def _python_trunks(calls: list[Cdr]) -> list[dict[str, Any]]:
    figures: dict[str, list[float]] = {}
    for c in calls:
        if c.trunk:
            f = figures.setdefault(c.trunk, [0, 0, 0.0])
            f[0] += 1
            if c.answer is not None:
                f[1] += 1
                f[2] += c.billsec
    return [
        {
            "trunk": t,
            "attempts": a,
            "answered": n,
            "asr": round(n / a, 4),
            "acd": round(s / n, 1) if n else 0.0,
            "minutes": round(s / 60, 2),
        }
        for t, (a, n, s) in sorted(figures.items())
    ]


def _worst(quality: dict[str, Any], key: str) -> float | None:
    values = [
        float(side[key])
        for side in quality.values()
        if isinstance(side, dict) and isinstance(side.get(key), int | float)
    ]
    return max(values) if values else None


def _python_distribution(values: list[float], edges: tuple[float, ...]) -> dict[str, Any]:
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[next((i for i, e in enumerate(edges) if v <= e), len(edges))] += 1
    average = round(sum(values) / len(values), 3) if values else None
    return {"le": [*edges, None], "counts": counts, "average": average}


def _python_quality(calls: list[Cdr]) -> list[dict[str, Any]]:
    per: dict[str, tuple[list[float], list[float], list[float]]] = {"*": ([], [], [])}
    for c in calls:
        if c.mos is None:
            continue
        jitter, loss = _worst(c.quality, "jitter_ms"), _worst(c.quality, "loss")
        for key in ("*", c.trunk):
            m, j, lo = per.setdefault(key, ([], [], []))
            m.append(c.mos)
            if jitter is not None:
                j.append(jitter)
            if loss is not None:
                lo.append(loss)
    return [
        {
            "trunk": trunk,
            "calls": len(m),
            "mos": _python_distribution(m, MOS_EDGES),
            "jitter_ms": _python_distribution(j, JITTER_EDGES),
            "loss": _python_distribution(lo, LOSS_EDGES),
        }
        for trunk, (m, j, lo) in sorted(per.items(), key=lambda kv: (kv[0] != "*", kv[0]))
    ]


def _within(calls: list[Cdr], start: float, end: float) -> list[Cdr]:
    return [c for c in calls if start <= c.start < end and c.tenant == TENANT]


def _approx(value: Any) -> Any:
    """Sums of floats added in another order may differ in their last bit."""
    if isinstance(value, float):
        return pytest.approx(value, abs=1e-9)
    if isinstance(value, list):
        return [_approx(v) for v in value]
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    return value


@pytest.fixture
def calls() -> list[Cdr]:
    return [*_edge_cases(), *_random_calls(3000)]


async def test_sql_aggregates_are_the_python_ones(database_url: str, calls: list[Cdr]) -> None:
    other = [_cdr(9000, _epoch("2026-03-08T12:00:00+00:00"), tenant="other", trunk="carrier")]
    async with open_store(database_url) as store:
        await store.save_cdrs([*calls, *other])
        scope = cast(TenantScope, _Scope(_Context(store), _Tenant(TENANT)))
        periods = [
            ("2026-02-20T00:00:00+00:00", "2026-04-10T00:00:00+00:00"),
            ("2026-03-07T22:17:00+00:00", "2026-03-09T03:00:00+00:00"),  # not on the hour
            ("2026-10-20T00:00:00+00:00", "2026-11-05T00:00:00+00:00"),  # no calls
        ]
        for first, last in periods:
            for tz in ZONES:
                period = routes_history.Range(
                    from_=dt.datetime.fromisoformat(first),
                    to=dt.datetime.fromisoformat(last),
                    tz=tz,
                )
                chosen = _within(calls, period.start, period.end)
                for bucket in ("hour", "day"):
                    got = await routes_history.volume(scope, period, bucket=bucket)  # type: ignore[arg-type]
                    expected = _python_volume(chosen, ZoneInfo(tz), bucket)
                    assert [b.model_dump() for b in got.items] == _approx(expected), (tz, bucket)
            trunks = await routes_history.trunks(scope, period)
            assert [t.model_dump() for t in trunks] == _approx(_python_trunks(chosen))
            quality = await routes_history.quality(scope, period)
            assert [q.model_dump() for q in quality] == _approx(_python_quality(chosen))


async def test_the_repeated_hour_is_one_bucket_and_a_scope_limits_the_figures(
    database_url: str,
) -> None:
    calls = _edge_cases()
    async with open_store(database_url) as store:
        await store.save_cdrs(calls)
        site = _Scope(_Context(store), _Tenant(TENANT), extensions=frozenset({"999"}))
        period = routes_history.Range(
            from_=dt.datetime(2026, 11, 1, 5, tzinfo=dt.UTC),
            to=dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC),
            tz="America/New_York",
        )
        whole = cast(TenantScope, _Scope(_Context(store), _Tenant(TENANT)))
        got = await routes_history.volume(whole, period, bucket="hour")  # type: ignore[arg-type]
        assert [(b.start, b.calls) for b in got.items] == [("2026-11-01T01:00:00-05:00", 2)]
        nobody = await routes_history.volume(cast(TenantScope, site), period, bucket="hour")  # type: ignore[arg-type]
        assert nobody.items == []
        assert await routes_history.trunks(cast(TenantScope, site), period) == []


def test_the_slot_fits_the_zone() -> None:
    day = _epoch("2026-03-08T00:00:00+00:00")
    assert volume_slot(ZoneInfo("UTC"), day + 10, day + 86400)[1] == 3600
    assert volume_slot(ZoneInfo("Asia/Kolkata"), day, day + 86400)[1] == 1800
    assert volume_slot(ZoneInfo("Asia/Kathmandu"), day, day + 86400)[1] == 900
    # Lord Howe Island: +11:00 in its summer, then +10:30 from 2026-04-05.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    assert volume_slot(lord_howe, day - 60 * 86400, day)[1] == 3600
    base, width = volume_slot(lord_howe, day + 10, day + 40 * 86400)
    assert width == 1800 and base <= day + 10 < base + width
