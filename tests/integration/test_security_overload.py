"""Memory after an overload (issue 19): new INVITEs that overload control sheds are answered
503 statelessly, so a burst leaves no transaction behind for them (each would otherwise
keep the INVITE, the 503 and timers for 32 s), while a retransmission of an INVITE the
switch took still gets its transaction's answer. One switch in the test's process, fed
through its inbound path as bench/memory_overload.py does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.memory_overload import burst, invite, overload_switch
from softswitch.sip.address import Address
from softswitch.sip.message import SipResponse, parse_message

pytestmark = pytest.mark.integration

ADMITTED = 10  # the transaction bound: INVITEs beyond it are shed


def test_a_burst_of_shed_invites_leaves_no_transactions(tmp_path: Path) -> None:
    async def scenario() -> None:
        switch = overload_switch(
            tmp_path, f"max_transactions = {ADMITTED}\nmax_queue_delay = 0\nmax_calls_in_setup = 0"
        )
        await switch.start()
        sent: list[bytes] = []
        switch.send_message = lambda data, dest: sent.append(data)
        try:
            source = Address("UDP", "127.0.0.2", 20000)
            first = invite(source, 0)
            switch._on_message(first, source)  # challenged (407): a transaction
            await burst(switch, 2000)
            await asyncio.sleep(0.1)
            # the bound holds: the first INVITEs got transactions, the shed ones none
            assert len(switch.transactions) == ADMITTED
            shed = switch.overload.counters["shed"]
            assert shed >= 2001 - ADMITTED
            answers = [parse_message(data) for data in sent]
            refusals = [m for m in answers if isinstance(m, SipResponse) and m.status == 503]
            # (the INVITE that reached the bound was shed by its transaction, which may
            # have retransmitted its 503 since)
            assert len(refusals) >= shed and all(m.get("Retry-After") for m in refusals)
            # a retransmission of the first INVITE is its transaction's, not shed
            sent.clear()
            switch._on_message(first, source)
            await asyncio.sleep(0.05)
            # (on a slow machine the transactions' own retransmission timers, 500 ms,
            # may fire in this window too: only the answers to the first INVITE count)
            call_id = parse_message(first).get("Call-ID")
            again = [m for m in map(parse_message, sent) if m.get("Call-ID") == call_id]
            assert again and all(isinstance(m, SipResponse) and m.status == 407 for m in again)
            assert switch.overload.counters["shed"] == shed
        finally:
            await switch.stop()

    asyncio.run(scenario())
