"""Prompts of the call applications, generated as tones (no audio files in the repository).

Each prompt is an int16 8 kHz array built once at import; the shapes follow what callers
know from phone systems: rising beeps ask for input, a low tone refuses, a fast busy
means "cannot", a high ding announces an arrival and a low one a departure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

RATE = 8000
_FADE = 40  # samples (5 ms) of fade in and out: a tone starting at full level clicks

Audio = npt.NDArray[np.int16]


def tone(freqs: Sequence[float], ms: int, amplitude: float = 6000.0) -> Audio:
    """A tone of one or more summed sine waves (``amplitude`` is the peak of the sum)."""
    n = RATE * ms // 1000
    t = np.arange(n) / RATE
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) / max(1, len(freqs))
    envelope = np.ones(n)
    fade = min(_FADE, n // 2)
    envelope[:fade] = np.linspace(0, 1, fade)
    envelope[n - fade :] = np.linspace(1, 0, fade)
    return (amplitude * wave * envelope).astype(np.int16)


def silence(ms: int) -> Audio:
    """Silence of ``ms`` milliseconds."""
    return np.zeros(RATE * ms // 1000, np.int16)


def sequence(*parts: Audio) -> Audio:
    """Parts one after the other."""
    return np.concatenate(parts).astype(np.int16)


ENTER_PIN = sequence(tone([523], 150), silence(80), tone([659], 150), silence(80), tone([784], 200))
BAD_PIN = sequence(tone([330], 250), silence(60), tone([262], 400))
REFUSED = sequence(*[sequence(tone([480, 620], 250), silence(250)) for _ in range(3)])
RECORD_NAME = tone([1000], 300)
JOIN = sequence(tone([1047], 120), tone([1319], 200))
LEAVE = sequence(tone([1319], 120), tone([1047], 200))
MUTED = tone([392], 150)
UNMUTED = tone([784], 150)
LEVEL = tone([880], 60)  # a volume step
# North American ringback (440 + 480 Hz, 2 s on, 4 s off), looped while a call is put through.
RINGBACK = sequence(tone([440, 480], 2000, 4000), silence(4000))
# Fallback music on hold when neither the switch nor the engine has one: a soft arpeggio.
HOLD_MUSIC = sequence(
    *[sequence(tone([f], 300, 2500), silence(100)) for f in (262, 330, 392, 523, 392, 330)]
)
