"""Music-on-hold test helpers shared by the in-process and worker-pool hold-music tests: the
tones of a playlist (introduction, song, message) and the talkers, which of them a peer
heard (FFT over 80 ms windows, never timing), and the sendonly re-INVITE that holds a call."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from media.endpoint import Endpoint
from tests.integration.rtpkit import Peer, dominant

__all__ = ["INTRO", "MESSAGE", "SONG", "TALK_A", "TALK_B", "Streams", "heard", "hold"]

INTRO, SONG, MESSAGE, TALK_A, TALK_B = 400, 700, 1300, 440, 1000
WINDOW = 640
Streams = list[tuple[Peer, npt.NDArray[np.int16] | None]]


def heard(audio: npt.NDArray[np.int16]) -> list[int]:
    """The tones heard, in order, each once per stretch (windows of other tones dropped)."""
    out: list[int] = []
    for start in range(0, len(audio) - WINDOW + 1, WINDOW):
        f = dominant(audio[start : start + WINDOW])
        tones = [t for t in (INTRO, SONG, MESSAGE, TALK_A, TALK_B) if abs(f - t) < 20]
        if tones and (not out or out[-1] != tones[0]):
            out.append(tones[0])
    return out


async def hold(held: Peer, holder: Peer, holder_leg: Endpoint) -> None:
    """The holder re-INVITEs sendonly; what was in flight before is thrown away."""
    assert b"a=recvonly" in holder_leg.answer(holder.sdp(direction="sendonly"))
    for p in (held, holder):
        p.drain()
        p.received.clear()
