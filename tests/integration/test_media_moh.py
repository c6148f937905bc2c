"""Music-on-hold playlists through the media engine over real UDP on 127.0.0.1.

The held party is a plain-socket RTP peer; which playlist item it heard is told by the
FFT of each 80 ms of what arrived (the introduction, song and message are distinct
tones), never by timing.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from media.engine import EngineSettings, MediaEngine
from media.moh import HoldMusic
from media.wav import write_wav
from tests.integration.mohkit import INTRO, MESSAGE, SONG, TALK_A, TALK_B, Streams, heard, hold
from tests.integration.rtpkit import Peer, leg, new_peer, run, tone

pytestmark = pytest.mark.integration


@pytest.fixture
def music(tmp_path: Path) -> HoldMusic:
    """Intro 0.6 s, one 1 s song (a 44.1 kHz stereo file), a message once 15 s passed."""
    write_wav(tmp_path / "intro.wav", tone(INTRO, 0.6))
    t = np.arange(44100) / 44100
    song = (8000 * np.sin(2 * np.pi * SONG * t)).astype(np.int16)
    write_wav(tmp_path / "song.wav", np.stack([song, song], axis=1), 44100)
    write_wav(tmp_path / "message.wav", tone(MESSAGE, 0.5))
    return HoldMusic.load(
        [tmp_path / "song.wav"],
        intro=tmp_path / "intro.wav",
        messages=[tmp_path / "message.wav"],
        message_interval=15,
    )


async def test_held_party_hears_intro_then_song_and_intro_again_next_hold(
    peers: list[Peer], music: HoldMusic
) -> None:
    base = random.randrange(30000, 60000, 2)
    async with MediaEngine(EngineSettings(port_min=base, port_max=base + 99)) as engine:
        a, b = new_peer(peers), new_peer(peers)
        ea, eb = leg(engine, a), leg(engine, b)
        engine.bridge(ea, eb)
        engine.set_hold_music(music, ea)  # the playlist chosen for A's hold
        talk: Streams = [(a, tone(TALK_A, 1)), (b, tone(TALK_B, 1))]
        await hold(a, b, eb)
        await run(talk, 80)
        assert heard(a.audio()) == [INTRO, SONG]  # the intro once, then the song loops
        assert not b.received  # the holder asked not to receive
        eb.answer(b.sdp(direction="sendrecv"))  # resume
        a.drain()
        a.received.clear()
        await run(talk, 30)
        assert heard(a.audio())[-1:] == [TALK_B]
        assert heard(b.audio())[-1:] == [TALK_A]
        await hold(a, b, eb)  # a new hold starts the playlist again
        await run(talk, 50)
        assert heard(a.audio()) == [INTRO, SONG]


async def test_each_held_call_has_its_own_position(peers: list[Peer], music: HoldMusic) -> None:
    base = random.randrange(30000, 60000, 2)
    async with MediaEngine(EngineSettings(port_min=base, port_max=base + 99)) as engine:
        engine.set_hold_music(music)  # engine-wide: every held party
        a, b, c, d = (new_peer(peers) for _ in range(4))
        ea, eb, ec, ed = (leg(engine, p) for p in (a, b, c, d))
        engine.bridge(ea, eb)
        engine.bridge(ec, ed)
        await hold(a, b, eb)
        alone: Streams = [(a, tone(TALK_A, 1))]
        await run(alone, 45)
        assert heard(a.audio()) == [INTRO, SONG]
        a.received.clear()
        await hold(c, d, ed)  # while A is into the song, C is put on hold
        both: Streams = [(a, tone(TALK_A, 1)), (c, tone(TALK_A, 1))]
        await run(both, 45)
        assert heard(c.audio()) == [INTRO, SONG]
        assert INTRO not in heard(a.audio())  # A's program went on where it was


async def test_a_playlist_played_as_a_prompt_until_stopped(
    peers: list[Peer], music: HoldMusic
) -> None:
    """What a queue plays a waiting caller: the playlist from its start, until stopped."""
    base = random.randrange(30000, 60000, 2)
    async with MediaEngine(EngineSettings(port_min=base, port_max=base + 99)) as engine:
        a = new_peer(peers)
        ea = leg(engine, a)
        playback = engine.play(ea, music, barge_in=True)
        await run([(a, None)], 80)
        assert heard(a.audio()) == [INTRO, SONG]
        assert not playback.done()  # a playlist never ends by itself
        engine.stop(ea)
        assert await playback.wait() == "stopped"
