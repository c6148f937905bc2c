"""Call queues with real peers: SIPp plays a carrier's callers dialling the queues' DIDs,
three baresip phones are the agents (101 and 102 answer by themselves, 103 never does).
What happened is read back from the queue event log in the switch's database."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.sipp import SippResult
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from storage import open_store
from storage.queue_events import QueueEvent
from tests.integration.audiokit import tone
from tests.integration.callkit import append_lines, trunk_lines
from tests.integration.ivrkit import call_with_keys
from tests.unit.clikit import run

pytestmark = pytest.mark.integration

SALES = "+14155550200"  # linear hunt: 103, 101, 102 by order; wrap-up; 2 misses -> break
SUPPORT = "+14155550201"  # ring all: 101 and 102
DESK = "+14155550202"  # nobody logged in; key 0 leaves for 102
USERS = [PhoneUser(e, f"pw{e}", f"Agent {e}") for e in ("101", "102", "103")]


def _lines() -> list[str]:
    return [
        *trunk_lines("carrier", [free_port()], inbound_addresses=["127.0.0.0/8"]),
        "[[tenants.queues]]",
        'name = "sales"',
        'extension = "8000"',
        'strategy = "linear_hunt"',
        "agent_ring_timeout = 5",
        "wrap_up = 60",
        "missed_limit = 2",
        'agents = [{ extension = "103", order = 0 }, { extension = "101", order = 1 }, '
        '{ extension = "102", order = 2 }]',
        "[[tenants.queues]]",
        'name = "support"',
        'extension = "8001"',
        'strategy = "ring_all"',
        "agent_ring_timeout = 10",
        'agents = [{ extension = "101" }, { extension = "102" }]',
        "[[tenants.queues]]",
        'name = "desk"',
        'extension = "8002"',
        "announce_every = 10",
        'exit_keys = { "0" = "102" }',
        "[tenants.routing]",
        f'dids = [{{ number = "{SALES}", treatment = "queue", destination = "8000" }}, '
        f'{{ number = "{SUPPORT}", treatment = "queue", destination = "8001" }}, '
        f'{{ number = "{DESK}", treatment = "queue", destination = "8002" }}]',
    ]


@dataclass
class Center:
    switch: SwitchProcess
    config: Path
    database: str
    phones: dict[str, BaresipPhone]
    work: Path
    calls: list[threading.Thread] = field(default_factory=list)

    def call(self, number: str, talk_ms: int) -> dict[str, SippResult]:
        """A caller in the background: hangs up `talk_ms` after the queue answers (waiting
        included)."""
        out: dict[str, SippResult] = {}
        name = f"call{len(self.calls)}"

        def go() -> None:
            out["result"] = call_with_keys(
                self.work / name, self.switch.port, number, [("pause", talk_ms)]
            )

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        self.calls.append(thread)
        return out

    def events(self) -> list[QueueEvent]:
        async def load() -> list[QueueEvent]:
            async with open_store(self.database) as store:
                return await store.load_queue_events("test", 0, time.time() + 60)

        return asyncio.run(load())

    def wait_for(self, check: object, timeout: float = 30) -> list[QueueEvent]:
        deadline = time.monotonic() + timeout
        events = self.events()
        while not check(events) and time.monotonic() < deadline:  # type: ignore[operator]
            time.sleep(0.3)
            events = self.events()
        seen = [(e.event, e.queue, e.call_id[:8], e.agent, e.reason) for e in events]
        text = (self.work / "switch" / "switch.log").read_text(errors="replace")
        log = "\n".join(x for x in text.splitlines() if "migrated" not in x)
        assert check(events), f"{seen}\n{log[-6000:]}"  # type: ignore[operator]
        return events


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Center]:
    tmp = tmp_path_factory.mktemp("queues")
    config = SwitchConfigFile(tmp / "switch", users=USERS)
    path = append_lines(config.write(), _lines())
    database = f"sqlite:///{config.directory / 'switch.db'}"
    with SwitchProcess(path, port=config.port) as switch:
        port = config.port
        phones: dict[str, BaresipPhone] = {}
        with (
            BaresipPhone(
                tmp / "p101",
                f"<sip:101@127.0.0.1:{port}>;auth_pass=pw101;regint=600;answermode=auto",
                audio_source=tone(tmp / "440.wav", 440.0),
            ) as a101,
            BaresipPhone(
                tmp / "p102",
                f"<sip:102@127.0.0.1:{port}>;auth_pass=pw102;regint=600;answermode=auto",
                audio_source=tone(tmp / "1000.wav", 1000.0),
            ) as a102,
            BaresipPhone(
                tmp / "p103",
                f"<sip:103@127.0.0.1:{port}>;auth_pass=pw103;regint=600;answermode=manual",
                audio_source=tone(tmp / "700.wav", 700.0),
            ) as a103,
        ):
            phones = {"101": a101, "102": a102, "103": a103}
            rows = switch.wait_registrations(lambda rows: len(rows) == 3, timeout=20)
            assert len(rows) == 3, a101.output() + a102.output() + a103.output()
            c = Center(switch, path, database, phones, tmp)
            # 101 and 102 log in with the feature code from their phones, 103 by the CLI.
            # The agents log in with the CLI (the carrier trunk takes every call from
            # 127.0.0.0/8 here, so the phones' feature codes would arrive as trunk calls).
            for ext in ("101", "102", "103"):
                done = run("queues", "agent", "login", ext, "--config", str(path), cwd=tmp)
                assert done.returncode == 0, done.stderr
            time.sleep(2.5)  # the switch follows the CLI's status changes within 2 s
            yield c
            for thread in c.calls:
                thread.join(timeout=60)


def _offers(events: list[QueueEvent], call_id: str) -> list[str]:
    return [e.agent for e in events if e.event == "offered" and e.call_id == call_id]


def _calls(events: list[QueueEvent], queue: str) -> list[str]:
    return [e.call_id for e in events if e.event == "entered" and e.queue == queue]


def test_ring_all_offers_every_free_agent_and_one_takes_it(center: Center) -> None:
    call = center.call(SUPPORT, 2000)
    events = center.wait_for(
        lambda evs: any(e.event == "completed" and e.queue == "support" for e in evs)
    )
    (call_id,) = _calls(events, "support")
    offered = [e for e in events if e.event == "offered" and e.call_id == call_id]
    assert sorted(e.agent for e in offered) == ["101", "102"]
    assert {e.reason for e in offered} == {"ring_all"} and len({e.at for e in offered}) == 1
    (answered,) = [e for e in events if e.event == "answered" and e.call_id == call_id]
    assert answered.agent in ("101", "102")
    center.calls[-1].join(timeout=30)
    assert call["result"].ok, call["result"].errors


def test_linear_hunt_wrap_up_missed_offers_and_an_abandoned_caller(center: Center) -> None:
    first = center.call(SALES, 10000)  # 103 rings 5 s, then 101 answers
    events = center.wait_for(
        lambda evs: any(e.event == "wrapup_start" and e.queue == "sales" for e in evs), 40
    )
    (c1,) = _calls(events, "sales")
    assert _offers(events, c1) == ["103", "101"]  # by order; 103 never answers
    assert [e.reason for e in events if e.event == "missed" and e.call_id == c1] == ["no_answer"]
    center.calls[-1].join(timeout=30)
    assert first["result"].ok, first["result"].errors

    # 101 wraps up for a minute: the next caller rings 103 (its second miss), then 102.
    second = center.call(SALES, 15000)
    events = center.wait_for(
        lambda evs: (
            len(_calls(evs, "sales")) == 2
            and any(e.event == "answered" and e.call_id == _calls(evs, "sales")[1] for e in evs)
        ),
        40,
    )
    c2 = _calls(events, "sales")[1]
    assert _offers(events, c2) == ["103", "102"]
    status = [e for e in events if e.event == "agent_status" and e.agent == "103"][-1]
    assert (status.status, status.status_reason) == ("on_break", "missed")

    # Nobody is free now (101 wrapping up, 102 talking, 103 on break): a caller waits
    # with music and hangs up: abandoned, never offered.
    third = center.call(SALES, 2000)
    events = center.wait_for(lambda evs: any(e.event == "abandoned" for e in evs), 30)
    c3 = _calls(events, "sales")[2]
    assert [e.call_id for e in events if e.event == "abandoned"] == [c3]
    assert _offers(events, c3) == []
    for thread in center.calls:
        thread.join(timeout=30)
    assert second["result"].ok and third["result"].ok

    now = time.gmtime(time.time() + 86400)
    stats = run(
        "queues", "stats", "--from", "2000-01-01", "--to", time.strftime("%Y-%m-%d", now),
        "--queue", "sales", "--format", "json", "--config", str(center.config), cwd=center.work,
    )  # fmt: skip
    assert stats.returncode == 0, stats.stderr
    import json

    doc = json.loads(stats.stdout)
    (sales,) = doc["queues"]
    assert (sales["volume"], sales["handled"], sales["abandoned"]) == (3, 2, 1)
    agents = {a["agent"]: a for a in doc["agents"]}
    assert agents["103"]["missed"] == 2 and agents["103"]["handled"] == 0


def test_an_exit_key_takes_the_caller_out_of_the_queue(center: Center) -> None:
    before = len(center.events())
    center.phones["102"].events.clear()
    result = call_with_keys(
        center.work / "desk",
        center.switch.port,
        DESK,
        [("pause", 1500), ("dtmf", "0"), ("pause", 4000)],
    )
    assert result.ok, result.errors
    events = center.wait_for(lambda evs: any(e.event == "exited" for e in evs[before:]))
    (exited,) = [e for e in events[before:] if e.event == "exited"]
    assert (exited.queue, exited.reason) == ("desk", "exit_key")
    center.phones["102"].wait_event("CALL_ESTABLISHED", timeout=10)  # put through to 102
