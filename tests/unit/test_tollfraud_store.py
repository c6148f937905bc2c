"""The CDR's emergency mark on both backends (migration 0011), and what the caps read back
from the store at start."""

from __future__ import annotations

import dataclasses

from softswitch.security.tollfraud_store import load_day
from storage import Store
from storage.cdr import CSV_COLUMNS, Cdr, csv_row

T0 = 1_700_000_000.0


def make_cdr(n: int) -> Cdr:
    return Cdr(
        call_id=f"call-{n}",
        sip_call_id=f"{n}@phone.test",
        tenant="acme",
        direction="outbound",
        caller_number="100",
        caller_name="",
        dialled="+442079460000",
        destination="+442079460000",
        trunk="carrier",
        start=T0 + n,
        answer=T0 + n + 2.5,
        end=T0 + n + 62.5,
        disposition="ANSWERED",
        sip_code=200,
        q850_cause=16,
        q850_name="NORMAL_CLEARING",
        legs=[{"target": "external +442079460000", "status": 200}],
    )


async def test_the_emergency_mark_is_stored(store: Store) -> None:
    marked = dataclasses.replace(make_cdr(1), dialled="911", emergency=True)
    await store.save_cdrs([make_cdr(0), marked])
    loaded = await store.load_cdrs(T0 - 1, T0 + 10)
    assert [c.emergency for c in loaded] == [False, True]
    assert loaded[1] == marked
    row = dict(zip(CSV_COLUMNS, csv_row(marked), strict=True))
    assert row["emergency"] == "yes"


async def test_the_day_is_loaded_for_the_caps(store: Store) -> None:
    now = T0 - T0 % 86400 + 600  # ten minutes into a UTC day
    await store.save_cdrs(
        [
            dataclasses.replace(make_cdr(0), start=now - 86400),  # yesterday: not needed
            dataclasses.replace(make_cdr(1), start=now - 3000),  # the last hour
            dataclasses.replace(make_cdr(2), start=now - 60),
        ]
    )
    assert [c.call_id for c in await load_day(store, now)] == ["call-1", "call-2"]
