"""A generated phrase played by the in-process media engine to a raw RTP peer on loopback.

The phrase is spoken by the real espeak-ng, converted, joined and handed to
``MediaEngine.play``; the peer must receive PCMU that is not silence and lasts about as long
as the rendered phrase.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest

from config.prompts import PromptSettings
from media.engine import MediaEngine
from softswitch.prompts import MESSAGES, Phrase, PromptLibrary

# (``engine`` and ``peers`` are the integration conftest's fixtures.)
from tests.integration.rtpkit import Peer, leg, new_peer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="`make test` installs espeak-ng"),
]


async def test_a_phrase_reaches_an_rtp_peer_as_speech(
    engine: MediaEngine, peers: list[Peer], tmp_path: Path
) -> None:
    library = PromptLibrary(PromptSettings(directory=tmp_path / "prompts"))
    received = dt.datetime(2026, 12, 6, 22, 42)
    phrase = (
        Phrase("en")
        .prompt("vm-you-have")
        .count(3, MESSAGES, "vm-new")
        .prompt("vm-received")
        .date(received.date())
        .prompt("vm-at")
        .time(received)
    )
    audio = await library.render(phrase)
    expected = len(audio) / 8000
    assert 2.0 < expected < 12.0  # a dozen words

    phone = new_peer(peers, pts=(0,))
    endpoint = leg(engine, phone)
    playback = engine.play(endpoint, audio)
    for _ in range(int(expected / 0.02) + 250):
        await asyncio.sleep(0.02)
        phone.drain()
        if playback.done():
            break
    assert await playback.wait() == "finished"
    for _ in range(10):
        await asyncio.sleep(0.02)
        phone.drain()

    pcmu = [p for p in phone.received if p[1] & 0x7F == 0]
    assert pcmu and len(pcmu) == len(phone.received)
    heard = phone.audio(0)
    assert abs(len(heard) / 8000 - expected) < 0.25
    loud = np.abs(heard.astype(np.int32)) > 500
    assert loud.mean() > 0.2  # speech, not silence (pauses between words are allowed)
    rms = float(np.sqrt(np.mean(heard.astype(np.float64) ** 2)))
    assert rms > 300
