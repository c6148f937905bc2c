"""The CDR writer: the CDRs of one flush interval go to the store in one batch, a full batch
goes at once, stopping writes what is left, and the search index finds what it wrote."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from softswitch.calls import CdrWriter
from storage import Store, open_store
from storage.cdr import Cdr
from storage.logins import CdrQuery

T0 = 1_700_000_000.0


def _cdr(n: int) -> Cdr:
    return Cdr(
        call_id=f"call-{n}",
        sip_call_id=f"{n}@phone.test",
        tenant="acme",
        direction="internal",
        caller_number=f"10{n}",
        caller_name="",
        dialled=f"55501{n:02d}",
        destination="200",
        trunk="",
        start=T0 + n,
        answer=T0 + n + 1,
        end=T0 + n + 10,
        disposition="ANSWERED",
        sip_code=200,
        q850_cause=16,
        q850_name="NORMAL_CLEARING",
    )


class BatchLog:
    """The real store, with the size of every batch the writer hands it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batches: list[int] = []

    async def save_cdrs(self, cdrs: Sequence[Cdr]) -> None:
        self.batches.append(len(cdrs))
        await self.store.save_cdrs(cdrs)


@pytest.fixture
async def store(tmp_path: object) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/cdrs.db")
    await opened.open()
    yield opened
    await opened.close()


async def _written(writer: CdrWriter, count: int) -> None:
    deadline = time.monotonic() + 10
    while writer.written < count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def test_one_interval_one_batch(store: Store) -> None:
    log = BatchLog(store)
    writer = CdrWriter(log, flush_interval=0.2, batch_size=3)  # type: ignore[arg-type]
    writer.start()
    writer.add(_cdr(1))
    writer.add(_cdr(2))
    await _written(writer, 2)
    await writer.stop()
    assert log.batches == [2]
    # The call history search (the trigram index) finds CDRs written in a batch.
    found = await store.find_cdrs(CdrQuery(tenant="acme", dialled="50102"), 10)
    assert [c.call_id for c in found] == ["call-2"]


async def test_a_full_batch_goes_at_once_and_stop_writes_the_rest(store: Store) -> None:
    log = BatchLog(store)
    # An hour's interval: only a full batch or stopping writes anything.
    writer = CdrWriter(log, flush_interval=3600.0, batch_size=3)  # type: ignore[arg-type]
    writer.start()
    for n in (1, 2, 3):
        writer.add(_cdr(n))
    await _written(writer, 3)
    assert log.batches == [3]
    writer.add(_cdr(4))
    await writer.stop()
    assert log.batches == [3, 1]
    assert writer.pending == 0
    rows = await store.load_cdrs(T0, T0 + 100)
    assert [c.call_id for c in rows] == ["call-1", "call-2", "call-3", "call-4"]
