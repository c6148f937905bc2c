"""The call history's aggregates for dashboards, computed by the database (GROUP BY), not
by reading every call: call volume per time slot, attempts/answers/billed seconds per
trunk, and the MOS/jitter/loss distributions of anchored calls per trunk.

Both backends run the same statements; only a few expressions differ per dialect
(``Dialect``). The filters are the call history's own (``storage.logins.cdr_query_sql``),
so a scope (tenant, a site's extensions) limits an aggregate exactly as it limits the list.

Time zones: SQLite knows none, so volume is counted per fixed slot of UTC seconds
(``slot_seconds`` wide, counted from ``base``) and the caller folds the slots into the hours
or days of its zone. A slot never straddles two local hours when every UTC offset and every
offset change in the period is a multiple of the slot (``volume_slot``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from storage.logins import CdrQuery, cdr_query_sql

__all__ = [
    "JITTER_EDGES",
    "LOSS_EDGES",
    "MOS_EDGES",
    "TICKS_PER_SECOND",
    "Dialect",
    "Figures",
    "QualityTotals",
    "TrunkTotals",
    "VolumeSlot",
    "billed_ticks_sql",
    "measure_sql",
    "quality_sql",
    "quality_totals",
    "trunk_sql",
    "trunk_totals",
    "volume_slot",
    "volume_slots",
    "volume_sql",
    "worst_sql",
]

Dialect = Literal["sqlite", "postgresql"]

MOS_EDGES = (1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 4.3, 5.0)
JITTER_EDGES = (5.0, 10.0, 20.0, 30.0, 50.0, 100.0)  # ms
LOSS_EDGES = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1)  # ratio
# The sides a CDR's quality object holds (the anchor's "caller" and "callee" legs).
_SIDES = ("caller", "callee")


_HOUR = 3600


def _offset(zone: ZoneInfo, at: float) -> int:
    offset = dt.datetime.fromtimestamp(at, zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def _change(zone: ZoneInfo, before: int, after: int) -> int:
    """The first second in (before, after] with the offset ``after`` has (a bisection)."""
    wanted = _offset(zone, after)
    while after - before > 1:
        middle = (before + after) // 2
        if _offset(zone, middle) == wanted:
            after = middle
        else:
            before = middle
    return after


def volume_slot(zone: ZoneInfo, start: float, end: float) -> tuple[int, int]:
    """``(base, width)``: the widest slot (a divisor of an hour) whose boundaries include
    every local hour boundary of ``zone`` between ``start`` and ``end``, and a base at or
    before ``start``. UTC and whole-hour zones get an hour, India or Nepal 30 or 15 min."""
    width = _HOUR
    at = math.floor(start)
    previous = _offset(zone, at)
    width = math.gcd(width, previous)
    while at < end:
        step = min(at + _HOUR, math.ceil(end))
        offset = _offset(zone, step)
        if offset != previous:
            width = math.gcd(width, offset, _change(zone, at, step))
            previous = offset
        at = step
    width = max(width, 1)
    return math.floor(start / width) * width, width


@dataclass(frozen=True, slots=True)
class VolumeSlot:
    """Calls that started in slot ``slot`` (``base + slot * width`` UTC seconds onwards)."""

    slot: int
    calls: int
    answered: int
    inbound: int
    outbound: int
    internal: int
    billsec: float


@dataclass(frozen=True, slots=True)
class TrunkTotals:
    """One trunk's attempts, answered calls and their billed seconds."""

    trunk: str
    attempts: int
    answered: int
    billsec: float


@dataclass(frozen=True, slots=True)
class Figures:
    """One measure's values: how many, their sum and how many are <= each edge."""

    count: int
    total: float
    at_most: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class QualityTotals:
    """One trunk's anchored calls (``mos`` set) and their figures; jitter and loss are the
    worse side's where a side reported them."""

    trunk: str
    calls: int
    mos: Figures
    jitter_ms: Figures
    loss: Figures


def _param_where(query: CdrQuery, dialect: Dialect, extra: str) -> tuple[str, list[object]]:
    where, params = cdr_query_sql(query, "?" if dialect == "sqlite" else "$")
    return where + (" AND " if where else " WHERE ") + extra, params


# Billed time is summed in integer ticks of 2**-22 s: a call's end and answer times are
# doubles of the epoch (2004-2038: multiples of 2**-22 s), so each call's billed time is a
# whole number of ticks and the sum is exact whatever the order of the additions (the
# rollup adds slots together: storage.cdr_rollup). Converted to seconds once, at the end.
TICKS_PER_SECOND = 1 << 22


def billed_ticks_sql(dialect: Dialect) -> str:
    """One call's billed time in ticks (0 when unanswered or ended before the answer)."""
    scaled = f"(end_time - answer_time) * {TICKS_PER_SECOND}.0"
    ticks = f"CAST({scaled} AS INTEGER)" if dialect == "sqlite" else f"floor({scaled})::bigint"
    return f"(CASE WHEN answer_time IS NULL OR end_time <= answer_time THEN 0 ELSE {ticks} END)"


def _seconds(ticks: object) -> float:
    return int(ticks or 0) / TICKS_PER_SECOND  # type: ignore[call-overload]


def _check_slot(base: int, width: int) -> tuple[int, int]:
    # Written into the statement as literals: make sure they are plain integers.
    base, width = int(base), int(width)
    if width < 1:
        raise ValueError("volume slot: width must be >= 1 s")
    return base, width


def volume_sql(
    query: CdrQuery, dialect: Dialect, base: int, width: int
) -> tuple[str, list[object]]:
    """Calls per slot of ``width`` seconds from ``base`` (the query's start must be >= base)."""
    base, width = _check_slot(base, width)
    offset = f"(start_time - {base}.0) / {width}.0"
    slot = f"CAST({offset} AS INTEGER)" if dialect == "sqlite" else f"floor({offset})::bigint"
    where, params = cdr_query_sql(query, "?" if dialect == "sqlite" else "$")
    counts = ", ".join(
        f"sum(CASE WHEN direction = '{d}' THEN 1 ELSE 0 END)"
        for d in ("inbound", "outbound", "internal")
    )
    sql = (
        f"SELECT {slot} AS slot, count(*), count(answer_time), {counts},"
        f" sum({billed_ticks_sql(dialect)}) FROM cdrs{where} GROUP BY 1"
    )
    return sql, params


def volume_slots(rows: list[tuple[object, ...]]) -> list[VolumeSlot]:
    return [
        VolumeSlot(
            slot=int(r[0]),  # type: ignore[call-overload]
            calls=int(r[1]),  # type: ignore[call-overload]
            answered=int(r[2]),  # type: ignore[call-overload]
            inbound=int(r[3]),  # type: ignore[call-overload]
            outbound=int(r[4]),  # type: ignore[call-overload]
            internal=int(r[5]),  # type: ignore[call-overload]
            billsec=_seconds(r[6]),
        )
        for r in rows
    ]


def trunk_sql(query: CdrQuery, dialect: Dialect) -> tuple[str, list[object]]:
    """Attempts, answered calls and billed seconds per trunk (calls without one left out)."""
    where, params = _param_where(query, dialect, "trunk <> ''")
    sql = (
        f"SELECT trunk, count(*), count(answer_time), sum({billed_ticks_sql(dialect)})"
        f" FROM cdrs{where} GROUP BY trunk ORDER BY trunk"
    )
    return sql, params


def trunk_totals(rows: list[tuple[object, ...]]) -> list[TrunkTotals]:
    return [
        TrunkTotals(
            trunk=str(r[0]),
            attempts=int(r[1]),  # type: ignore[call-overload]
            answered=int(r[2]),  # type: ignore[call-overload]
            billsec=_seconds(r[3]),
        )
        for r in rows
    ]


def _side_value(dialect: Dialect, side: str, key: str) -> str:
    """A side's number from the quality JSON, NULL when absent or not a number."""
    if dialect == "sqlite":
        path = f"'$.{side}.{key}'"
        return (
            f"(CASE WHEN json_type(quality, {path}) IN ('integer', 'real')"
            f" THEN json_extract(quality, {path}) END)"
        )
    node = f"q -> '{side}' -> '{key}'"
    return (
        f"(CASE WHEN jsonb_typeof({node}) = 'number'"
        f" THEN (q -> '{side}' ->> '{key}')::double precision END)"
    )


def worst_sql(dialect: Dialect, key: str) -> str:
    """The worse side's ``key`` of a call's quality (``quality`` on SQLite, the parsed
    ``q`` on PostgreSQL), NULL when no side reported a number."""
    a, b = (_side_value(dialect, side, key) for side in _SIDES)
    if dialect == "sqlite":  # SQLite's max() is NULL when one argument is
        return f"max(coalesce({a}, {b}), coalesce({b}, {a}))"
    return f"GREATEST({a}, {b})"


def measure_sql(column: str, edges: tuple[float, ...]) -> str:
    """How many values, their sum and how many are <= each edge."""
    at_most = ", ".join(f"sum(CASE WHEN {column} <= {e!r} THEN 1 ELSE 0 END)" for e in edges)
    return f"count({column}), sum({column}), {at_most}"


def quality_sql(query: CdrQuery, dialect: Dialect) -> tuple[str, list[object]]:
    """Per trunk ('' for none): anchored calls and, for MOS, jitter and loss, the count,
    sum and number at or below each edge of the distribution."""
    where, params = _param_where(query, dialect, "mos IS NOT NULL")
    if dialect == "sqlite":
        source = f"cdrs{where}"
    else:  # parse each call's JSON once (OFFSET 0: the subquery is not inlined)
        source = f"(SELECT trunk, mos, quality::jsonb AS q FROM cdrs{where} OFFSET 0) AS c"
    inner = (
        f"SELECT trunk, mos, {worst_sql(dialect, 'jitter_ms')} AS jitter,"
        f" {worst_sql(dialect, 'loss')} AS loss FROM {source}"
    )
    sql = (
        f"SELECT trunk, count(*), {measure_sql('mos', MOS_EDGES)},"
        f" {measure_sql('jitter', JITTER_EDGES)}, {measure_sql('loss', LOSS_EDGES)}"
        f" FROM ({inner}) AS anchored GROUP BY trunk ORDER BY trunk"
    )
    return sql, params


def _figures(row: tuple[object, ...], at: int, edges: int) -> tuple[Figures, int]:
    count = int(row[at])  # type: ignore[call-overload]
    total = float(row[at + 1] or 0.0)  # type: ignore[arg-type]
    at_most = tuple(int(v or 0) for v in row[at + 2 : at + 2 + edges])  # type: ignore[call-overload]
    return Figures(count, total, at_most), at + 2 + edges


def quality_totals(rows: list[tuple[object, ...]]) -> list[QualityTotals]:
    out: list[QualityTotals] = []
    for r in rows:
        mos, at = _figures(r, 2, len(MOS_EDGES))
        jitter, at = _figures(r, at, len(JITTER_EDGES))
        loss, _ = _figures(r, at, len(LOSS_EDGES))
        out.append(QualityTotals(str(r[0]), int(r[1]), mos, jitter, loss))  # type: ignore[call-overload]
    return out
