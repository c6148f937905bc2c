"""Helpers for mixing tests: tone levels in what a raw RTP peer received."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import numpy.typing as npt

from media.dtmf import event_packets
from tests.integration.rtpkit import FRAME, RATE, Peer

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
    return all(lvl > PRESENT if f in present else lvl < ABSENT for f, lvl in levels.items())


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


class Streamer:
    """Phones that stream without pause: every 20 ms each source sends a frame of its
    audio (silence for None) and every peer's arrivals are collected, for at most
    ``max_seconds``.  Use as an async context manager."""

    def __init__(self, max_seconds: float = 60.0) -> None:
        self._sources: list[tuple[Peer, npt.NDArray[np.int16] | None]] = []
        self._task: asyncio.Task[None] | None = None
        self._frames = round(max_seconds / 0.02)

    def set(self, peer: Peer, audio: npt.NDArray[np.int16] | None) -> None:
        """What ``peer`` sends from now on."""
        self._sources = [(p, a) for p, a in self._sources if p is not peer] + [(peer, audio)]

    async def settle(self, seconds: float) -> None:
        """Forget what was received so far and let ``seconds`` of audio flow."""
        for peer, _ in self._sources:
            peer.drain()
            peer.received.clear()
        await asyncio.sleep(seconds)

    async def _run(self) -> None:
        # paced by absolute deadlines like a phone's sample clock: a late wake-up sends the
        # frames that fell due, so the rate stays 50 frames a second
        silence = np.zeros(FRAME, np.int16)
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        for _ in range(self._frames):
            due = min(self._frames, int((loop.time() - start) / 0.02) + 1)
            for i in range(sent, due):
                for peer, audio in self._sources:
                    if audio is None:
                        peer.send_frame(silence)
                    else:
                        begin = (i * FRAME) % len(audio)
                        peer.send_frame(np.resize(audio[begin:], FRAME))
            sent = max(sent, due)
            for peer, _ in self._sources:
                peer.drain()
            if sent >= self._frames:
                return
            await asyncio.sleep(max(0.0, start + sent * 0.02 - loop.time()))

    async def __aenter__(self) -> Streamer:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def press(peer: Peer, keys: str, event_pt: int = 101) -> None:
    """Key presses as RFC 4733 telephone-events, 100 ms each, paced."""
    for key in keys:
        ts = peer.ts
        for payload, marker in event_packets(key, 100):
            peer.send_packet(event_pt, payload, marker=marker, ts=ts)
            await asyncio.sleep(0.02)
        peer.ts = (peer.ts + 800) & 0xFFFFFFFF  # the next press is a new event
        await asyncio.sleep(0.04)
