"""Conference rooms and monitored calls on a real engine, raw RTP peers over loopback."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from media.endpoint import Endpoint, MediaError
from media.engine import MediaEngine
from media.rooms import MixRoom
from tests.integration.mixing import PRESENT, heard, hears, stream
from tests.integration.rtpkit import HDR, Peer, leg, tone

pytestmark = pytest.mark.integration

X, Y, Z = 500.0, 700.0, 900.0
TONES = (X, Y, Z)


@pytest.fixture
def trio() -> Iterator[list[Peer]]:
    made = [Peer(), Peer(), Peer()]
    yield made
    for p in made:
        p.close()


def legs(engine: MediaEngine, peers: list[Peer]) -> list[Endpoint]:
    return [leg(engine, p) for p in peers]


def room_of(engine: MediaEngine, peers: list[Peer]) -> tuple[MixRoom, list[Endpoint]]:
    eps = legs(engine, peers)
    room = engine.mix_room()
    for ep in eps:
        room.join(ep)
    return room, eps


async def talk(peers: list[Peer], frames: int = 40) -> None:
    await stream([(p, tone(f, 2)) for p, f in zip(peers, TONES, strict=True)], frames)


async def test_room_each_hears_the_others_not_itself(engine: MediaEngine, trio: list[Peer]) -> None:
    room, eps = room_of(engine, trio)
    await talk(trio)
    for peer, own in zip(trio, TONES, strict=True):
        assert hears(heard(peer, TONES), *(f for f in TONES if f != own)), own
    assert engine.stats().relayed_directions == 0
    assert room.talking(eps[0])
    room.set(eps[2], talk=False)  # mute the 900 Hz party
    await talk(trio)
    assert hears(heard(trio[0], TONES), Y)
    assert hears(heard(trio[1], TONES), X)
    assert hears(heard(trio[2], TONES), X, Y)  # a muted party still hears
    room.leave(eps[1])
    assert room.members == [eps[0], eps[2]]
    room.close()
    assert eps[0].mix is None and room.members == []


async def test_player_replaces_the_mix_and_announcements_reach_all(
    engine: MediaEngine, trio: list[Peer]
) -> None:
    room, eps = room_of(engine, trio)
    engine.play(eps[0], tone(1300, 1), loop=True)
    await talk(trio)
    levels = heard(trio[0], (*TONES, 1300.0))
    assert hears(levels, 1300.0)  # music instead of the mix...
    assert hears(heard(trio[1], TONES), X, Z)  # ...while its voice still reaches the room
    engine.stop(eps[0])
    done = room.announce(tone(1100, 0.4))
    await talk(trio, 25)
    assert await done.wait() == "finished"
    assert heard(trio[1], (1100.0,))[1100.0] > PRESENT


async def test_monitor_modes_switch_in_one_call(engine: MediaEngine, trio: list[Peer]) -> None:
    caller, agent, sup = trio
    e_caller, e_agent, e_sup = legs(engine, trio)
    engine.bridge(e_caller, e_agent)
    mon = engine.monitor(e_caller, e_agent, e_sup)  # listen-only by default
    expected = {
        # mode: (caller hears, agent hears, supervisor hears)
        "listen": ((Y,), (X,), (X, Y)),
        "whisper": ((Y,), (X, Z), (X, Y)),
        "barge": ((Y, Z), (X, Z), (X, Y)),
    }
    for mode in ("listen", "whisper", "barge", "listen"):
        mon.set_mode(mode)
        await talk(trio)
        for peer, tones in zip(trio, expected[mode], strict=True):
            assert hears(heard(peer, TONES), *tones), (mode, tones)
    with pytest.raises(MediaError, match="unknown monitor mode"):
        mon.set_mode("shout")
    mon.stop()
    await talk(trio)
    assert hears(heard(caller, TONES), Y) and hears(heard(agent, TONES), X)
    assert heard(sup, TONES) == dict.fromkeys(TONES, 0.0)  # nothing sent any more
    assert engine.stats().relayed_directions == 2  # a plain bridge again


async def test_outbound_stream_stays_continuous_across_shape_changes(
    engine: MediaEngine, trio: list[Peer]
) -> None:
    caller, agent, _ = trio
    e_caller, e_agent, e_sup = legs(engine, trio)
    engine.bridge(e_caller, e_agent)
    await talk(trio, 10)
    mon = engine.monitor(e_caller, e_agent, e_sup, "barge")
    await talk(trio, 10)
    mon.stop()
    await talk(trio, 10)
    for peer, ep in ((caller, e_caller), (agent, e_agent)):
        heads = [HDR.unpack_from(d) for d in peer.received]
        assert {h[4] for h in heads} == {ep.out_ssrc}
        pairs = list(itertools.pairwise(heads))
        assert all((b[2] - a[2]) & 0xFFFF == 1 for a, b in pairs)
        assert all(0 < (b[3] - a[3]) & 0xFFFFFFFF < 0x80000000 for a, b in pairs)  # forward


async def test_release_ends_membership(engine: MediaEngine, trio: list[Peer]) -> None:
    e_caller, e_agent, e_sup = legs(engine, trio)
    mon = engine.monitor(e_caller, e_agent, e_sup, "whisper")
    engine.release(e_sup)
    assert mon.ended.is_set() and e_caller.mix is None and e_agent.mix is None
    room = engine.mix_room()
    room.join(e_caller)
    with pytest.raises(MediaError, match="already in a mixing session"):
        engine.mix_room().join(e_caller)
    other = engine.allocate(trio[0].sdp())
    with pytest.raises(MediaError, match="already in a mixing session"):
        engine.monitor(e_agent, other, e_caller)
    assert e_agent.mix is None  # a refused monitor leaves nothing behind
    engine.release(e_caller)
    assert room.members == []
    await asyncio.sleep(0.05)
    assert engine.stats().tick_errors == 0
