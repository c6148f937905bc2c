"""The dashboards' rollup of the call history (migration 0016): per tenant, 15-minute UTC
slot, trunk and direction, the calls, answered calls, billed ticks and the anchored calls'
MOS, jitter and loss figures (count, sum, how many at or below each edge of
``storage.cdr_analytics``). A tenant's month of figures is then a few thousand rows, not a
million calls.

Kept up to date when read, never when a CDR is written (a CDR insert costs what it did):
``cdr_rollup_mark`` holds how far the CDRs have been added up, and a read first adds what
was written since, in one transaction that locks the mark (two readers, or two nodes on one
PostgreSQL, never add a call twice). "How far" is by write order, not by call time, so a
long call written hours after it started still counts:

- SQLite: the rowid. Writers take turns (one database lock) and a new row gets the
  highest rowid + 1, so rowids become visible in order.
- PostgreSQL: ``cdrs.written``, the writing transaction's id (xid8). A sequence would not
  do: transactions commit out of order, so a lower id can become visible after a higher
  one was added up. Instead the mark is a snapshot's xmin, the oldest transaction still
  running: every row written by a transaction below it is committed (or rolled back) for
  good. A transaction left open keeps the figures from advancing past it until it ends.

A period is read as whole slots from the rollup plus its two partial ends (before the first
whole slot and after the last) from the CDRs themselves, by the same statements as before
(``storage.cdr_analytics``): the figures are those of the direct GROUP BY, exactly. Every
UTC offset is a multiple of 15 minutes (India's 30, Nepal's 45), so zone folding by the API
stays exact; a zone with another offset, a scope of extensions or any other filter reads
the CDRs directly.

Deleting CDRs: nothing in the switch deletes any (no retention purge, a deleted tenant
keeps its history). An operator's own ``DELETE`` is found at the first read of a process
(the rollup's call count against the CDRs it covers) and the rollup is then rebuilt.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from storage.cdr_analytics import (
    JITTER_EDGES,
    LOSS_EDGES,
    MOS_EDGES,
    Dialect,
    QualityTotals,
    TrunkTotals,
    VolumeSlot,
    billed_ticks_sql,
    quality_sql,
    quality_totals,
    trunk_sql,
    trunk_totals,
    volume_slots,
    volume_sql,
    worst_sql,
)
from storage.logins import CdrQuery, cdr_query_sql

__all__ = [
    "SLOT_SECONDS",
    "Rows",
    "Split",
    "analytics_query",
    "count_check_sql",
    "rolled_quality",
    "rolled_trunks",
    "rolled_volume",
    "rollup_insert_sql",
    "split_period",
]

SLOT_SECONDS = 900  # every UTC offset in use is a multiple of it
_KEY = ("tenant", "slot", "trunk", "direction")


def _figure_columns(name: str, edges: int) -> list[str]:
    return [f"{name}_n", f"{name}_sum", *(f"{name}_le{i}" for i in range(edges))]


_QUALITY = (
    _figure_columns("mos", len(MOS_EDGES))
    + _figure_columns("jitter", len(JITTER_EDGES))
    + _figure_columns("loss", len(LOSS_EDGES))
)
_VALUES = ["calls", "answered", "billed", *_QUALITY]

Rows = Callable[[str, str, list[object]], Awaitable[list[tuple[Any, ...]]]]


def _measure(column: str, edges: tuple[float, ...]) -> str:
    at_most = ", ".join(f"sum(CASE WHEN {column} <= {e!r} THEN 1 ELSE 0 END)" for e in edges)
    return f"count({column}), coalesce(sum({column}), 0.0), {at_most}"


def rollup_insert_sql(dialect: Dialect, written: str) -> str:
    """Add the CDRs selected by ``written`` (a condition on the write order, with the
    caller's placeholders) into the rollup's slots, creating the slots that are new."""
    if dialect == "sqlite":
        slot = f"CAST(start_time AS INTEGER) / {SLOT_SECONDS}"
        source = f"cdrs WHERE {written}"
    else:  # parse an anchored call's JSON once (OFFSET 0: the subquery is not inlined)
        slot = f"floor(start_time)::bigint / {SLOT_SECONDS}"
        source = (
            "(SELECT tenant, trunk, direction, start_time, answer_time, end_time, mos,"
            " CASE WHEN mos IS NOT NULL THEN quality::jsonb END AS q"
            f" FROM cdrs WHERE {written} OFFSET 0) AS c"
        )
    anchored = "CASE WHEN mos IS NOT NULL THEN {} END"
    inner = (
        f"SELECT tenant, {slot} AS slot, trunk, direction, answer_time,"
        f" {billed_ticks_sql(dialect)} AS ticks, mos,"
        f" {anchored.format(worst_sql(dialect, 'jitter_ms'))} AS jitter,"
        f" {anchored.format(worst_sql(dialect, 'loss'))} AS loss FROM {source}"
    )
    select = (
        f"SELECT tenant, slot, trunk, direction, count(*), count(answer_time), sum(ticks),"
        f" {_measure('mos', MOS_EDGES)}, {_measure('jitter', JITTER_EDGES)},"
        f" {_measure('loss', LOSS_EDGES)} FROM ({inner}) AS w WHERE true GROUP BY 1, 2, 3, 4"
    )
    excluded = "excluded" if dialect == "sqlite" else "EXCLUDED"
    add = ", ".join(f"{c} = cdr_rollup.{c} + {excluded}.{c}" for c in _VALUES)
    return (
        f"INSERT INTO cdr_rollup ({', '.join([*_KEY, *_VALUES])}) {select}"
        f" ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {add}"
    )


def count_check_sql(pending: str) -> str:
    """The rollup's calls and the CDRs it should hold (all but the ``pending`` ones, not
    yet added): equal unless CDRs were deleted behind its back. The whole count is read
    from the table's smallest index."""
    return (
        "SELECT (SELECT coalesce(sum(calls), 0) FROM cdr_rollup),"
        f" (SELECT count(*) FROM cdrs) - (SELECT count(*) FROM cdrs WHERE {pending})"
    )


def analytics_query(query: CdrQuery) -> CdrQuery:
    """``query`` without its paging key; ValueError naming the field that is not valid."""
    query = replace(query, after=None)
    cdr_query_sql(query, "?")
    return query


@dataclass(frozen=True, slots=True)
class Split:
    """A tenant's period as whole slots ``[first, end)`` of the rollup and the partial
    ends, read from the CDRs (``edges``: zero, one or two queries)."""

    tenant: str
    first: int
    end: int
    edges: tuple[CdrQuery, ...]


def split_period(query: CdrQuery) -> Split | None:
    """How the rollup answers ``query``, or None when it cannot (a filter other than the
    tenant and the period, or not one whole slot in the period)."""
    if (
        query.tenant is None
        or query.start is None
        or query.end is None
        or query.tenants is not None
        or query.party is not None
        or query.parties is not None
        or query.caller is not None
        or query.dialled is not None
        or query.disposition is not None
        or query.direction is not None
        or query.trunk is not None
        or query.after is not None
        or not (math.isfinite(query.start) and math.isfinite(query.end))
    ):
        return None
    # Slot 0 would also hold calls of 1969 (integer division rounds toward zero).
    first = max(1, math.ceil(query.start / SLOT_SECONDS))
    end = math.floor(query.end / SLOT_SECONDS)
    if end <= first:
        return None
    edges: list[CdrQuery] = []
    if query.start < first * SLOT_SECONDS:
        edges.append(replace(query, end=float(first * SLOT_SECONDS)))
    if end * SLOT_SECONDS < query.end:
        edges.append(replace(query, start=float(end * SLOT_SECONDS)))
    return Split(query.tenant, first, end, tuple(edges))


def _where(dialect: Dialect, split: Split) -> tuple[str, list[object]]:
    marks = ("?", "?", "?") if dialect == "sqlite" else ("$1", "$2", "$3")
    where = f" WHERE tenant = {marks[0]} AND slot >= {marks[1]} AND slot < {marks[2]}"
    return where, [split.tenant, split.first, split.end]


async def rolled_volume(
    rows: Rows, dialect: Dialect, query: CdrQuery, base: int, width: int
) -> list[VolumeSlot]:
    """``Store.cdr_volume`` from the rollup where it can answer, else from the CDRs."""
    split = split_period(query)
    if split is None or width % SLOT_SECONDS or base % SLOT_SECONDS:
        return volume_slots(await rows("cdr_volume", *volume_sql(query, dialect, base, width)))
    where, params = _where(dialect, split)
    counts = ", ".join(
        f"sum(CASE WHEN direction = '{d}' THEN calls ELSE 0 END)"
        for d in ("inbound", "outbound", "internal")
    )
    sql = (
        f"SELECT (slot * {SLOT_SECONDS} - {int(base)}) / {int(width)}, sum(calls),"
        f" sum(answered), {counts}, sum(billed) FROM cdr_rollup{where} GROUP BY 1"
    )
    found = await rows("cdr_volume", sql, params)
    for edge in split.edges:
        found += await rows("cdr_volume", *volume_sql(edge, dialect, base, width))
    merged: dict[int, VolumeSlot] = {}
    for s in volume_slots(found):
        m = merged.get(s.slot)
        merged[s.slot] = (
            s
            if m is None
            else VolumeSlot(
                slot=s.slot,
                calls=m.calls + s.calls,
                answered=m.answered + s.answered,
                inbound=m.inbound + s.inbound,
                outbound=m.outbound + s.outbound,
                internal=m.internal + s.internal,
                billsec=m.billsec + s.billsec,  # whole ticks: exact
            )
        )
    return [merged[k] for k in sorted(merged)]


async def rolled_trunks(rows: Rows, dialect: Dialect, query: CdrQuery) -> list[TrunkTotals]:
    """``Store.cdr_trunk_totals`` from the rollup where it can answer, else from the CDRs."""
    split = split_period(query)
    if split is None:
        return trunk_totals(await rows("cdr_trunk_totals", *trunk_sql(query, dialect)))
    where, params = _where(dialect, split)
    sql = (
        "SELECT trunk, sum(calls), sum(answered), sum(billed)"
        f" FROM cdr_rollup{where} AND trunk <> '' GROUP BY trunk"
    )
    found = await rows("cdr_trunk_totals", sql, params)
    for edge in split.edges:
        found += await rows("cdr_trunk_totals", *trunk_sql(edge, dialect))
    merged: dict[str, TrunkTotals] = {}
    for t in trunk_totals(found):
        m = merged.get(t.trunk)
        merged[t.trunk] = (
            t
            if m is None
            else TrunkTotals(
                t.trunk, m.attempts + t.attempts, m.answered + t.answered, m.billsec + t.billsec
            )
        )
    return [merged[k] for k in sorted(merged)]


async def rolled_quality(rows: Rows, dialect: Dialect, query: CdrQuery) -> list[QualityTotals]:
    """``Store.cdr_quality_totals`` from the rollup where it can answer, else from the CDRs."""
    split = split_period(query)
    if split is None:
        return quality_totals(await rows("cdr_quality_totals", *quality_sql(query, dialect)))
    where, params = _where(dialect, split)
    sums = ", ".join(f"sum({c})" for c in _QUALITY)
    sql = f"SELECT trunk, sum(mos_n), {sums} FROM cdr_rollup{where} AND mos_n > 0 GROUP BY trunk"
    # One row per trunk: the rollup's and the ends' figures added column by column.
    merged: dict[str, list[Any]] = {}
    found = await rows("cdr_quality_totals", sql, params)
    for edge in split.edges:
        found += await rows("cdr_quality_totals", *quality_sql(edge, dialect))
    for row in found:
        trunk = str(row[0])
        values = [v or 0 for v in row[1:]]
        m = merged.get(trunk)
        merged[trunk] = values if m is None else [a + b for a, b in zip(m, values, strict=True)]
    return quality_totals([(trunk, *merged[trunk]) for trunk in sorted(merged)])
