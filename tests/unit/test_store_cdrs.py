"""CDR storage on both backends: save in batches, load by time window and tenant."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from storage import StorageError, Store
from storage.cdr import CDR_COLUMNS, Cdr, cdr_from_row, cdr_to_row

T0 = 1_700_000_000.0


def make_cdr(n: int = 0, **changes: Any) -> Cdr:
    cdr = Cdr(
        call_id=f"call-{n}",
        sip_call_id=f"{n}@phone.test",
        tenant="acme",
        direction="internal",
        caller_number="100",
        caller_name="Ünïcode Caller",
        dialled="102",
        destination="102",
        trunk="",
        start=T0 + n,
        answer=T0 + n + 2.5,
        end=T0 + n + 62.5,
        disposition="ANSWERED",
        sip_code=200,
        q850_cause=16,
        q850_name="NORMAL_CLEARING",
        legs=[
            {
                "target": "user_devices 102",
                "contact": "sip:102@10.0.0.1",
                "status": 200,
                "answered": True,
            },
            {"target": "user_devices 102", "status": 487, "answered": False},
        ],
    )
    return dataclasses.replace(cdr, **changes)


def test_row_round_trip_and_derived_times() -> None:
    cdr = make_cdr()
    row = cdr_to_row(cdr)
    assert len(row) == len(CDR_COLUMNS)
    assert cdr_from_row(row) == cdr
    assert (cdr.duration, cdr.billsec) == (62.5, 60.0)
    assert make_cdr(answer=None).billsec == 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant", None),
        ("start", float("nan")),
        ("sip_code", "200"),
        ("answer", "x"),
        ("legs", [object()]),
    ],
)
def test_bad_fields_are_named(field: str, value: Any) -> None:
    cdr = make_cdr(**{field: value}) if field != "legs" else make_cdr(legs=[{"x": {1, 2}}])
    if field == "legs":
        # Sets are written as text rather than refused: a CDR must never be lost.
        assert cdr_to_row(cdr)
        return
    with pytest.raises(ValueError, match=field):
        cdr_to_row(cdr)


async def test_save_and_load_by_window_and_tenant(store: Store) -> None:
    cdrs = [make_cdr(n, tenant="acme" if n % 2 else "other") for n in range(10)]
    await store.save_cdrs(cdrs[:6])
    await store.save_cdrs(cdrs[6:])
    await store.save_cdrs([])
    loaded = await store.load_cdrs(T0, T0 + 100)
    assert loaded == cdrs
    assert await store.load_cdrs(T0 + 2, T0 + 5) == cdrs[2:5]
    assert await store.load_cdrs(T0, T0 + 100, "acme") == [c for c in cdrs if c.tenant == "acme"]
    assert await store.load_cdrs(T0 + 100, T0 + 200) == []


async def test_saving_a_call_twice_keeps_the_last_record(store: Store) -> None:
    await store.save_cdrs([make_cdr(1, disposition="NO ANSWER"), make_cdr(1)])
    (loaded,) = await store.load_cdrs(T0, T0 + 10)
    assert loaded.disposition == "ANSWERED"


async def test_odd_text_is_stored_and_bad_records_refused(store: Store) -> None:
    odd = make_cdr(caller_name="bad\x00name \udcff")
    await store.save_cdrs([odd])
    (loaded,) = await store.load_cdrs(T0, T0 + 10)
    assert "\x00" not in loaded.caller_name
    with pytest.raises(StorageError, match="sip_code"):
        await store.save_cdrs([make_cdr(2, sip_code=None)])
