"""What a caller said in a recording: the caller's channel, read even from a recording
whose header was never completed, with the silence around it cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["RATE", "recorded_channel", "said"]

RATE = 8000
_SILENCE = 300  # peak below this is silence (about -40 dBFS)
_MARGIN = 0.15  # seconds of the silence kept around what was said


def recorded_channel(path: Path) -> npt.NDArray[np.int16]:
    """What the caller said in a recording (channel 0 of the engine's 2-channel WAV),
    whether or not its header was completed: the data chunk runs to the end of the file."""
    raw = path.read_bytes()
    at = raw.find(b"data", 12)
    if raw[:4] != b"RIFF" or at < 0:
        return np.zeros(0, np.int16)
    channels = int.from_bytes(raw[22:24], "little") or 1
    data = raw[at + 8 :]
    usable = len(data) - len(data) % (2 * channels)
    frames = np.frombuffer(data[:usable], "<i2").reshape(-1, channels)
    return frames[:, 0].astype(np.int16)


def said(path: Path) -> npt.NDArray[np.int16]:
    """The recording with its leading and trailing silence cut (a margin kept)."""
    try:
        samples = recorded_channel(path)
    except OSError:
        return np.zeros(0, np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _SILENCE)
    if not len(loud):
        return samples[:0]
    margin = int(_MARGIN * RATE)
    start = max(0, int(loud[0]) - margin)
    end = min(len(samples), int(loud[-1]) + margin)
    return samples[start:end]
