"""Helpers for mixing tests: tone levels in what a raw RTP peer received."""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt

from tests.integration.test_media_engine import FRAME, RATE, Peer

PRESENT = 1500.0  # amplitude (of 8000 sent) above which a tone is heard
ABSENT = 300.0  # amplitude below which it is not


def tone_level(samples: npt.NDArray[np.int16], freq: float) -> float:
    """Amplitude of a sine at ``freq`` in ``samples`` (peak of a Hann-windowed FFT bin)."""
    if len(samples) < 800:
        return 0.0
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * window))
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    band = np.abs(freqs - freq) <= 15
    return float(spectrum[band].max() * 2 / window.sum())


def heard(peer: Peer, freqs: tuple[float, ...], seconds: float = 0.6) -> dict[float, float]:
    """Levels of ``freqs`` in the last ``seconds`` of sound the peer received (trailing
    silence, after the senders stopped, is left out); clears what it got."""
    peer.drain()
    audio = peer.audio()
    peer.received.clear()
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > 100)
    end = int(loud[-1]) + 1 if len(loud) else 0
    audio = audio[max(0, end - round(seconds * RATE)) : end]
    return {f: tone_level(audio, f) for f in freqs}


def hears(levels: dict[float, float], *present: float) -> bool:
    """True when exactly the ``present`` tones are heard and the others are absent."""
    return all(
        lvl > PRESENT if f in present else lvl < ABSENT for f, lvl in levels.items()
    )


async def stream(
    sources: list[tuple[Peer, npt.NDArray[np.int16] | None]],
    frames: int,
    listeners: tuple[Peer, ...] = (),
) -> None:
    """Send ``frames`` paced 20 ms frames from each source (None: silent), collecting.

    Unlike ``run`` there is no quiet tail: a phone streams without pause, and the jitter
    buffer would count the frames after a pause as late.
    """
    everyone = [p for p, _ in sources] + list(listeners)
    for i in range(frames):
        for peer, audio in sources:
            if audio is not None:
                start = (i * FRAME) % len(audio)
                peer.send_frame(np.resize(audio[start:], FRAME))
        await asyncio.sleep(0.02)
        for peer in everyone:
            peer.drain()
