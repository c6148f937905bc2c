"""The queue owner around the engine: one task, the caller's inbox, the log in the store,
statuses set by the CLI picked up, a conversation's end learnt from its CDR."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from config.queues import CallQueue
from softswitch.queues.engine import Exit, Offer
from softswitch.queues.owner import QueueOwner
from storage import open_store
from storage.cdr import Cdr
from storage.queue_events import QueueEvent

QUEUE = CallQueue.model_validate(
    {
        "name": "sales",
        "extension": "8000",
        "strategy": "linear_hunt",
        "wrap_up": 0.3,
        "max_length": 1,
        "agents": [{"extension": "101"}],
    }
)


async def _until(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.02)
    assert check()  # type: ignore[operator]


def _cdr(call_id: str, sip_call_id: str) -> Cdr:
    now = time.time()
    return Cdr(
        call_id,
        sip_call_id,
        "acme",
        "inbound",
        "+1555",
        "",
        "8000",
        "101",
        "",
        now,
        now,
        now,
        "ANSWERED",
        200,
        16,
        "",
    )


async def test_owner_runs_a_call_through_the_engine_and_the_log(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path}/q.db") as store:
        # 101 logged in before the switch started: restored from the log.
        await store.append_queue_events(
            [QueueEvent("acme", "agent_status", time.time() - 60, agent="101", reason="available")]
        )
        owner = QueueOwner("acme", [QUEUE], store, sync_interval=0.05)
        await owner.start()
        try:
            inbox = owner.join("c1", "sip-1", "sales")
            offer = await asyncio.wait_for(inbox.actions.get(), 2)
            assert offer == Offer("c1", "sales", "101", 0.0, QUEUE.agent_ring_timeout)
            full = owner.join("c2", "sip-2", "sales")  # max_length 1: refused
            assert await asyncio.wait_for(full.actions.get(), 2) == Exit(
                "c2", "sales", "full", None
            )
            owner.answered("c1", "101", "app-1")
            await _until(lambda: owner.engine.agent_state("101")[1] == "in_call")
            owner.on_cdr(_cdr("app-1", "sip-1"))  # the application's own part: nothing
            await asyncio.sleep(0.05)
            assert owner.engine.agent_state("101")[1] == "in_call"
            owner.on_cdr(_cdr("bridged-1", "sip-1"))  # the conversation ended
            await _until(lambda: owner.engine.agent_state("101")[1] == "wrap_up")
            await _until(lambda: owner.engine.agent_state("101")[1] == "idle")  # its own clock
            # The CLI puts 101 on a break: the owner follows from the store.
            await store.append_queue_events(
                [
                    QueueEvent(
                        "acme", "agent_status", time.time(), agent="101", reason="on_break:lunch"
                    )
                ]
            )
            await _until(lambda: owner.engine.agent_state("101")[0] == "on_break")
        finally:
            await owner.stop()
        events = await store.load_queue_events("acme", 0, time.time() + 1)
    kinds = [(e.event, e.call_id, e.reason) for e in events if e.event != "agent_status"]
    assert kinds == [
        ("entered", "c1", ""),
        ("offered", "c1", "linear_hunt"),
        ("entered", "c2", ""),
        ("exited", "c2", "full"),
        ("answered", "c1", ""),
        ("completed", "c1", ""),
        ("wrapup_start", "c1", ""),
        ("wrapup_end", "c1", ""),
    ]
    # The break came from the log and is not written twice.
    assert [e.reason for e in events if e.event == "agent_status"] == [
        "available",
        "on_break:lunch",
    ]


async def test_feature_codes_are_for_agents_on_their_own_phones(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from config.models import Tenant
    from routing.plan import Target, TargetKind
    from softswitch.apps.queue import QueueService
    from softswitch.calls.registry import ApplicationRegistry

    tenant = Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.test",
            "users": [{"extension": e, "password": f"secret-{e}-pw"} for e in ("101", "102")],
            "queues": [QUEUE.model_dump()],
        }
    )
    async with open_store(f"sqlite:///{tmp_path}/q.db") as store:
        registry: ApplicationRegistry[object] = ApplicationRegistry()
        service = QueueService(registry, {"acme": tenant}, store)
        await service.start()
        try:
            call = SimpleNamespace(
                id="x", tenant="acme", dialled="*71", caller_number="101", from_trunk=False
            )
            # Routing makes a QUEUE_AGENT node of the code; the node's ref is the status.
            assert tenant.routing.feature_codes["*71"].kind == TargetKind.QUEUE_AGENT
            available = Target(TargetKind.QUEUE_AGENT, tenant.routing.feature_codes["*71"].ref)
            assert service.feature(call, available) is not None
            not_agent = SimpleNamespace(**{**vars(call), "caller_number": "102"})
            assert service.feature(not_agent, available) is None
            from_trunk = SimpleNamespace(**{**vars(call), "from_trunk": True})
            assert service.feature(from_trunk, available) is None
            assert service.feature(call, Target(TargetKind.QUEUE_AGENT, "asleep")) is None
            assert {TargetKind.QUEUE, TargetKind.QUEUE_AGENT} <= registry.available()
            assert registry.application(call, Target(TargetKind.QUEUE, "8000")) is not None
        finally:
            await service.stop()
