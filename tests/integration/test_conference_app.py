"""The conference and monitor applications over real media with raw RTP peers, in both
modes: the in-process engine, and two media worker processes (where callers land on both
workers, so rooms and monitors link in legs from the other worker).

Each caller is a fake AppSession (what the calls side provides) whose endpoint is a real
endpoint answering a plain UDP socket; audio is judged by FFT levels.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from config import config_from_dict
from config.conference import ConferenceBridge
from media.control import MediaControl
from media.engine import EngineSettings, MediaEngine
from media.negotiation import NegotiatedLeg
from media.pool import MediaWorkerPool, WorkerEndpoint
from softswitch.apps.conference import ConferenceRegistry, Role, conference_app
from softswitch.apps.monitor import MonitorRegistry, monitor_app
from tests.integration.mixing import Streamer, heard, hears, press
from tests.integration.rtpkit import Peer, tone

pytestmark = pytest.mark.integration

X, Y, Z = 500.0, 700.0, 900.0
MOH = 1300.0
TONES = (X, Y, Z, MOH)
_ids = itertools.count(1)


@dataclass(eq=False)
class FakeCall:
    """An answered call as the calls side hands it to an application."""

    engine: MediaControl
    endpoint: NegotiatedLeg
    peer: Peer
    caller_number: str
    caller_name: str = "Caller"
    tenant: str = "acme"
    dialed: str = "6000"
    user: str | None = None
    call_id: str = field(default_factory=lambda: f"call-{next(_ids)}")
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    hung_up: bool = False

    async def hangup(self) -> None:
        self.hung_up = True
        self.ended.set()


@pytest.fixture(params=["in-process", "2 workers"])
async def media(request: pytest.FixtureRequest) -> AsyncIterator[MediaControl]:
    """The in-process engine, or two media worker processes."""
    base = random.randrange(30000, 60000, 2)
    settings = EngineSettings(port_min=base, port_max=base + 199)
    control: MediaEngine | MediaWorkerPool = (
        MediaEngine(settings) if request.param == "in-process" else MediaWorkerPool(settings, 2)
    )
    async with control:
        yield control


@pytest.fixture
def registry() -> ConferenceRegistry:
    return ConferenceRegistry(hold_music=tone(MOH, 1), digit_timeout=3.0, name_seconds=1.0)


@pytest.fixture
async def streamer() -> AsyncIterator[Streamer]:
    async with Streamer(max_seconds=40) as s:
        yield s


def call(
    engine: MediaControl,
    peers: list[Peer],
    number: str,
    near: NegotiatedLeg | None = None,
    **kw: str,
) -> FakeCall:
    peer = Peer()
    peers.append(peer)
    endpoint = engine.allocate(peer.sdp(), near=near)
    peer.connect(endpoint)  # type: ignore[arg-type]
    return FakeCall(engine, endpoint, peer, number, **kw)


async def until(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    for _ in range(round(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


class Bridge:
    """Callers joining one bridge; each caller's app runs as a task."""

    def __init__(
        self,
        engine: MediaControl,
        peers: list[Peer],
        registry: ConferenceRegistry,
        streamer: Streamer,
        bridge: ConferenceBridge,
    ) -> None:
        self.engine, self.peers, self.registry = engine, peers, registry
        self.streamer, self.bridge = streamer, bridge
        self.tasks: dict[FakeCall, asyncio.Task[None]] = {}

    def join(self, number: str, freq: float | None, role: Role | None = None) -> FakeCall:
        c = call(self.engine, self.peers, number, caller_name=f"Caller {number}")
        self.streamer.set(c.peer, None if freq is None else tone(freq, 2))
        self.tasks[c] = asyncio.create_task(
            conference_app(c, self.bridge, self.registry, role=role)
        )
        return c

    def count(self) -> int:
        active = self.registry.active("acme")
        return len(active[0].participants) if active else 0

    async def finish(self, *calls: FakeCall) -> None:
        """Hang up ``calls`` (the caller's side) and wait until their apps are done."""
        for c in calls:
            c.ended.set()
        await asyncio.wait_for(asyncio.gather(*(self.tasks[c] for c in calls)), 10)


@pytest.fixture
def make_bridge(
    media: MediaControl, peers: list[Peer], registry: ConferenceRegistry, streamer: Streamer
) -> Callable[..., Bridge]:
    def make(**settings: object) -> Bridge:
        b = ConferenceBridge.model_validate({"name": "Sales", "extension": "6000", **settings})
        return Bridge(media, peers, registry, streamer, b)

    return make


async def test_each_hears_the_others_and_mute_removes_a_voice(
    make_bridge: Callable[..., Bridge], registry: ConferenceRegistry, streamer: Streamer
) -> None:
    conf = make_bridge()
    a, b, c = conf.join("201", X), conf.join("202", Y), conf.join("203", Z)
    await until(lambda: conf.count() == 3)
    if isinstance(a.endpoint, WorkerEndpoint):  # callers on both workers: some linked in
        assert len({x.endpoint.worker.index for x in (a, b, c)}) == 2  # type: ignore[attr-defined]
    await streamer.settle(1.0)
    assert hears(heard(a.peer, TONES), Y, Z)
    assert hears(heard(b.peer, TONES), X, Z)
    assert hears(heard(c.peer, TONES), X, Y)
    info = registry.conference("acme", "Sales")
    assert info.running
    assert [(p.number, p.name, p.leader, p.muted, p.talking) for p in info.participants] == [
        ("201", "Caller 201", False, False, True),
        ("202", "Caller 202", False, False, True),
        ("203", "Caller 203", False, False, True),
    ]
    registry.mute("acme", "Sales", c.call_id)
    await streamer.settle(1.0)
    assert hears(heard(a.peer, TONES), Y)
    assert hears(heard(b.peer, TONES), X)
    assert hears(heard(c.peer, TONES), X, Y)
    assert [p.muted for p in registry.conference("acme", "Sales").participants] == [
        False,
        False,
        True,
    ]
    registry.mute("acme", "Sales", c.call_id, muted=False)
    await streamer.settle(1.0)
    assert hears(heard(a.peer, TONES), Y, Z)
    await conf.finish(a, b, c)
    assert registry.active() == []
    (report,) = registry.history("acme")
    assert [(p.number, p.reason) for p in report.participants] == [
        ("201", "hangup"),
        ("202", "hangup"),
        ("203", "hangup"),
    ]
    assert all(p.left_at >= p.joined_at >= report.started_at for p in report.participants)


async def test_music_on_hold_until_the_minimum_is_reached(
    make_bridge: Callable[..., Bridge], registry: ConferenceRegistry, streamer: Streamer
) -> None:
    conf = make_bridge(min_participants=2)
    a = conf.join("201", X)
    await until(lambda: conf.count() == 1)
    await streamer.settle(1.0)
    assert hears(heard(a.peer, TONES), MOH)
    assert not registry.conference("acme", "Sales").running
    b = conf.join("202", Y)
    await until(lambda: conf.count() == 2)
    await streamer.settle(1.0)
    assert hears(heard(a.peer, TONES), Y)
    assert hears(heard(b.peer, TONES), X)
    await conf.finish(b)  # below the minimum again: music for the one left
    await until(lambda: conf.count() == 1)
    await streamer.settle(1.0)
    assert hears(heard(a.peer, TONES), MOH)
    await conf.finish(a)


PINS = {"leader_pin": "9876", "participant_pin": "1234"}


async def test_wrong_pin_is_refused_after_the_retries(
    make_bridge: Callable[..., Bridge], registry: ConferenceRegistry, streamer: Streamer
) -> None:
    conf = make_bridge(**PINS)
    a = conf.join("201", None)
    await asyncio.sleep(0.2)
    await press(a.peer, "111#" + "4321#" + "98765#")
    await asyncio.wait_for(conf.tasks[a], 20)
    assert a.hung_up
    assert registry.active() == [] and registry.history() == []


async def test_leader_pin_starts_a_leader_required_conference(
    make_bridge: Callable[..., Bridge], registry: ConferenceRegistry, streamer: Streamer
) -> None:
    conf = make_bridge(require_leader=True, **PINS)
    b = conf.join("202", Y)
    await asyncio.sleep(0.2)
    await press(b.peer, "5555#1234#")  # one wrong try, then the participant PIN
    await until(lambda: conf.count() == 1)
    await streamer.settle(1.0)
    assert hears(heard(b.peer, TONES), MOH)  # no leader yet
    a = conf.join("201", X)
    await asyncio.sleep(0.2)
    await press(a.peer, "9876#")
    await until(lambda: conf.count() == 2)
    await streamer.settle(1.0)
    assert hears(heard(b.peer, TONES), X)
    assert hears(heard(a.peer, TONES), Y)
    info = registry.conference("acme", "Sales")
    assert info.running and [p.leader for p in info.participants] == [False, True]
    await conf.finish(a, b)


async def test_full_bridge_refuses_and_controls_and_kick(
    make_bridge: Callable[..., Bridge], registry: ConferenceRegistry, streamer: Streamer
) -> None:
    conf = make_bridge(max_participants=2)
    a, b = conf.join("201", X), conf.join("202", Y)
    await until(lambda: conf.count() == 2)
    c = conf.join("203", Z)
    await until(lambda: c.hung_up)
    assert conf.count() == 2
    await press(b.peer, "0")  # mute self
    await until(lambda: registry.conference("acme", "Sales").participants[1].muted)
    await streamer.settle(1.0)
    assert hears(heard(a.peer, TONES))  # b is muted: a hears nobody
    await press(b.peer, "0")
    await until(lambda: not registry.conference("acme", "Sales").participants[1].muted)
    registry.kick("acme", "Sales", a.call_id)
    await until(lambda: a.hung_up)
    await press(b.peer, "#")  # leave
    await until(lambda: b.hung_up)
    await conf.finish(a, b, c)
    (report,) = registry.history()
    assert [(p.number, p.reason) for p in report.participants] == [
        ("201", "kicked"),
        ("202", "left"),
    ]


async def test_recorded_name_is_announced_on_join(
    make_bridge: Callable[..., Bridge], registry: ConferenceRegistry, streamer: Streamer
) -> None:
    conf = make_bridge(announce=True, record_names=True)
    b = conf.join("202", None, role=Role.PARTICIPANT)
    await until(lambda: conf.count() == 1)
    a = conf.join("201", X)  # says its "name" (a 500 Hz tone) at the beep
    await asyncio.sleep(0.6)
    streamer.set(a.peer, None)  # then stays silent
    await until(lambda: conf.count() == 2)
    b.peer.drain()
    b.peer.received.clear()
    await asyncio.sleep(1.2)
    assert heard(b.peer, (X,), seconds=1.2)[X] > 1000  # the name, announced to the room
    await conf.finish(a, b)


async def test_monitor_app_switches_modes_by_key(
    media: MediaControl, peers: list[Peer], streamer: Streamer
) -> None:
    engine = media
    tenant = config_from_dict(
        {
            "tenants": [
                {
                    "name": "acme",
                    "domain": "acme.test",
                    "users": [{"extension": "100", "password": "p", "can_monitor": True}],
                }
            ]
        }
    ).tenants[0]
    caller = call(engine, peers, "+14155550100")
    agent = call(engine, peers, "101", near=caller.endpoint)  # the call's other leg
    engine.bridge(caller.endpoint, agent.endpoint)
    sup = call(engine, peers, "100", user="100")  # with workers: on the other one
    for c, f in ((caller, X), (agent, Y), (sup, Z)):
        streamer.set(c.peer, tone(f, 2))
    assert tenant.may_monitor(sup.user or "")
    monitors = MonitorRegistry()
    task = asyncio.create_task(
        monitor_app(sup, monitors, "call-1", caller.endpoint, agent.endpoint)
    )
    expected = {
        # key: (caller hears, agent hears, supervisor hears)
        "": ((Y,), (X,), (X, Y)),
        "2": ((Y,), (X, Z), (X, Y)),
        "3": ((Y, Z), (X, Z), (X, Y)),
        "1": ((Y,), (X,), (X, Y)),
    }
    for key, tones in expected.items():
        if key:
            await press(sup.peer, key)
        await streamer.settle(1.0)
        assert [m.mode for m in monitors.active()] == [
            {"": "listen", "1": "listen", "2": "whisper", "3": "barge"}[key]
        ]
        for c, want in zip((caller, agent, sup), tones, strict=True):
            assert hears(heard(c.peer, (X, Y, Z)), *want), (key, want)
    sup.ended.set()  # the supervisor hangs up
    await asyncio.wait_for(task, 5)
    assert monitors.active() == []
    await streamer.settle(1.0)
    assert hears(heard(caller.peer, (X, Y, Z)), Y)
    assert hears(heard(agent.peer, (X, Y, Z)), X)
