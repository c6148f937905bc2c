"""Every queue strategy with real peers: three baresip agents that answer by themselves,
and for each strategy twenty SIPp callers at once who each hang up after a few seconds
(answered or not). One switch for the module; the strategy is changed live through
provisioning between the cases. The queue event log, replayed, must show every offer made
to a free agent (no double offer, wrap-up respected) and to the agent the strategy names,
and every caller either answered or counted abandoned."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.queues import Strategy
from peers.baresip import BaresipPhone
from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from softswitch.provisioning import Actor, ProvisioningService
from softswitch.queues.period import Period
from softswitch.queues.stats import queue_figures
from storage import open_store
from tests.integration.audiokit import tone
from tests.integration.callkit import append_lines, trunk_lines
from tests.integration.ivrkit import carrier_scenario
from tests.integration.queuekit import load_events, replay
from tests.unit.clikit import run

pytestmark = pytest.mark.integration

DID = "+14155550210"
AGENTS = {"101": 2, "102": 0, "103": 1}  # extension -> order
CALLERS = 20
ADMIN = Actor("test", "127.0.0.1")


def _lines() -> list[str]:
    agents = ", ".join(f'{{ extension = "{e}", order = {o} }}' for e, o in AGENTS.items())
    return [
        *trunk_lines("carrier", [free_port()], inbound_addresses=["127.0.0.0/8"]),
        "[[tenants.queues]]",
        'name = "rota"',
        'extension = "8100"',
        'strategy = "ring_all"',
        "agent_ring_timeout = 5",
        "wrap_up = 1",
        f"agents = [{agents}]",
        "[tenants.routing]",
        f'dids = [{{ number = "{DID}", treatment = "queue", destination = "8100" }}]',
    ]


@dataclass
class Rota:
    switch: SwitchProcess
    database: str
    work: Path
    started: dict[str, tuple[float, Strategy]]  # case -> (start, strategy)


@pytest.fixture(scope="module")
def rota(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rota]:
    tmp = tmp_path_factory.mktemp("rota")
    users = [PhoneUser(e, f"pw{e}", f"Agent {e}") for e in AGENTS]
    config = SwitchConfigFile(tmp / "switch", users=users)
    path = append_lines(config.write(), _lines())
    database = f"sqlite:///{config.directory / 'switch.db'}"
    with SwitchProcess(path, port=config.port) as switch:
        port = config.port
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
                f"<sip:103@127.0.0.1:{port}>;auth_pass=pw103;regint=600;answermode=auto",
                audio_source=tone(tmp / "700.wav", 700.0),
            ) as a103,
        ):
            rows = switch.wait_registrations(lambda rows: len(rows) == 3, timeout=20)
            assert len(rows) == 3, a101.output() + a102.output() + a103.output()
            for ext in AGENTS:
                done = run("queues", "agent", "login", ext, "--config", str(path), cwd=tmp)
                assert done.returncode == 0, done.stderr
            time.sleep(2.5)  # the switch follows the CLI's status changes within 2 s
            yield Rota(switch, database, tmp, {})


def _set_strategy(database: str, strategy: Strategy) -> None:
    """Change the queue's strategy live, as the admin API would."""

    async def change() -> None:
        async with open_store(database) as store:
            service = ProvisioningService(store)
            item = await service.get("queue", "test", "rota")
            data = {**item.data, "strategy": strategy.value}
            await service.update(ADMIN, "queue", "test", "rota", data, item.version)

    asyncio.run(change())


def _callers(rota: Rota, name: str) -> None:
    """Twenty carrier callers at once, each hanging up 2 to 6 s after the queue answers."""
    work = rota.work / name
    scenario = carrier_scenario(work / "caller.xml", [("pause", 4000)])
    text = scenario.read_text().replace(
        '<pause milliseconds="4000"/>', '<pause distribution="uniform" min="2000" max="6000"/>'
    )
    scenario.write_text(text)
    result = run_sipp(
        scenario,
        f"127.0.0.1:{rota.switch.port}",
        calls=CALLERS,
        rate=CALLERS,
        limit=CALLERS,
        extra=["-s", DID, "-mi", "127.0.0.1"],
        timeout=60,
        workdir=work,
    )
    assert result.ok, result.errors


def _settled(rota: Rota, since: float, timeout: float = 45) -> None:
    """Wait until every caller of the case has left the queue and every agent is free."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [e for e in load_events(rota.database) if e.at >= since]
        entered = {e.call_id for e in events if e.event == "entered"}
        done = {e.call_id for e in events if e.event in ("answered", "abandoned", "exited")}
        talks = sum(1 for e in events if e.event == "answered")
        ends = sum(1 for e in events if e.event == "wrapup_end")
        if len(entered) == CALLERS and entered <= done and ends >= talks:
            return
        time.sleep(0.5)


@pytest.mark.parametrize("strategy", list(Strategy))
def test_twenty_callers_are_offered_by_the_strategy(rota: Rota, strategy: Strategy) -> None:
    _set_strategy(rota.database, strategy)
    time.sleep(1.5)  # a change applies to new calls within a second
    start = time.time()
    rota.started[strategy.value] = (start, strategy)
    _callers(rota, strategy.value)
    _settled(rota, start)

    events = load_events(rota.database)
    mine = [e for e in events if e.at >= start and e.queue == "rota"]
    entered = [e.call_id for e in mine if e.event == "entered"]
    assert len(entered) == CALLERS == len(set(entered))
    answered = {e.call_id for e in mine if e.event == "answered"}
    abandoned = {e.call_id for e in mine if e.event == "abandoned"}
    # Each caller was answered or hung up waiting (abandoned), never both.
    assert answered | abandoned == set(entered) and not answered & abandoned
    assert answered, "no caller was answered"
    assert abandoned, "with three agents and twenty short callers some must give up"
    # Wrap-up: every conversation of the case was followed by its wrap-up.
    wrapups = [e for e in mine if e.event == "wrapup_end"]
    assert len(wrapups) == len(answered)

    # The whole log replayed: offers to free agents only, by the strategy in force.
    cases = dict(rota.started)
    found = replay(events, AGENTS, cases, "rota")
    assert not found.problems, "\n".join(found.problems)
    assert found.checked >= len(answered) // 2 >= 1
    if strategy is Strategy.RANDOM:
        offered = {e.agent for e in mine if e.event == "offered"}
        assert len(offered) >= 2

    # The statistics count what happened, abandoned callers included.
    (figures,) = queue_figures(mine, Period(start - 1, time.time() + 1, ZoneInfo("UTC")))
    assert (figures.volume, figures.handled, figures.abandoned) == (
        CALLERS,
        len(answered),
        len(abandoned),
    )
