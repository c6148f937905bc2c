"""DTMF: RFC 4733 telephone-events and in-band tone detection.

* :func:`parse_event` / :func:`build_event` handle the 4-byte telephone-event payload;
  :func:`event_packets` produces the packets of one key press for sending.
* :class:`EventDeduplicator` turns the packet stream of a leg (start, updates, the end
  packet sent three times, possibly lost or repeated) into each digit exactly once, in order.
* :class:`InbandDetector` detects DTMF tones in 20 ms frames of many streams at once
  (Goertzel power at the 8 DTMF frequencies, computed for all streams with one matrix
  product), with energy, twist and purity checks, a minimum duration and a minimum gap.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

EVENT_CODES: Final = "0123456789*#ABCD!"  # RFC 4733 events 0-16; 16 (flash) is "!"
# tuple[float, ...], not the inferred fixed-length tuple: mypyc reads a Final tuple of
# floats as "not set" (mypyc/mypyc#1183), a variable-length tuple it stores as an object.
ROW_FREQS: Final[tuple[float, ...]] = (697.0, 770.0, 852.0, 941.0)
COL_FREQS: Final[tuple[float, ...]] = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD: Final = ("123A", "456B", "789C", "*0#D")
SAMPLE_RATE: Final = 8000


class DtmfError(ValueError):
    """A malformed telephone-event payload or an unknown digit."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One RFC 4733 telephone-event payload."""

    event: int
    end: bool
    volume: int  # 0..63, -dBm0
    duration: int  # timestamp units since the event began

    @property
    def digit(self) -> str | None:
        """The key for events 0-16, None for other events."""
        return EVENT_CODES[self.event] if self.event < len(EVENT_CODES) else None


def parse_event(payload: bytes) -> TelephoneEvent:
    """Parse a telephone-event payload (the first 4 bytes); raises DtmfError."""
    if len(payload) < 4:
        raise DtmfError(f"telephone-event payload too short ({len(payload)} bytes)")
    event, flags, duration = struct.unpack_from("!BBH", payload)
    return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


def build_event(event: TelephoneEvent) -> bytes:
    """Serialise a telephone-event payload."""
    if not 0 <= event.event <= 255 or not 0 <= event.volume <= 63:
        raise DtmfError("event 0-255 and volume 0-63 required")
    if not 0 <= event.duration <= 0xFFFF:
        raise DtmfError("duration must fit 16 bits")
    return struct.pack(
        "!BBH", event.event, (0x80 if event.end else 0) | event.volume, event.duration
    )


def event_code(digit: str) -> int:
    """RFC 4733 event number of a key ('0'-'9', '*', '#', 'A'-'D', '!' flash)."""
    index = EVENT_CODES.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise DtmfError(f"not a DTMF key: {digit!r}")
    return index


def event_packets(
    digit: str, duration_ms: int = 100, volume: int = 10, packet_ms: int = 20
) -> list[tuple[bytes, bool]]:
    """(payload, marker) for each packet of one key press, all on one RTP timestamp.

    The first packet carries the marker, updates follow every ``packet_ms`` and the end
    packet is sent three times (RFC 4733 2.5.1.4).
    """
    code = event_code(digit)
    step = packet_ms * SAMPLE_RATE // 1000
    total = min(max(duration_ms, packet_ms) * SAMPLE_RATE // 1000, 0xFFFF)
    out = []
    d = step
    while d < total:
        out.append((build_event(TelephoneEvent(code, False, volume, d)), d == step))
        d += step
    end = build_event(TelephoneEvent(code, True, volume, total))
    out.extend([(end, not out)] + [(end, False)] * 2)
    return out


@dataclass(frozen=True, slots=True)
class Digit:
    """A DTMF key press as delivered to the call."""

    digit: str
    duration_ms: int
    source: str  # "rfc4733" or "inband"


@dataclass
class EventDeduplicator:
    """Turn one leg's telephone-event packets into each key press once, in order.

    A press is reported on its first end packet, or when the next press starts or
    ``timeout`` seconds pass without its end (lost end packets).  Events are told apart by
    their RTP timestamp; retransmissions of a reported press are ignored.
    """

    timeout: float = 0.5
    clock_rate: int = SAMPLE_RATE
    _ts: int | None = field(init=False)
    _event: TelephoneEvent | None = field(init=False)
    _reported: bool = field(init=False)
    _last_seen: float = field(init=False)
    _done: deque[int] = field(default_factory=lambda: deque(maxlen=16), init=False)

    def __post_init__(self) -> None:
        # Set here, not as field defaults: compiled with mypyc the dataclass leaves an
        # init=False field with a plain default unset (there is no class attribute to read).
        self._ts = None
        self._event = None
        self._reported = True
        self._last_seen = 0.0

    def feed(self, timestamp: int, payload: bytes, now: float) -> list[Digit]:
        """Account one telephone-event packet; returns the digits completed by it.

        Raises DtmfError on a malformed payload.
        """
        ev = parse_event(payload)
        out: list[Digit] = []
        if timestamp != self._ts:
            if timestamp in self._done:
                return out  # a late retransmission of a press already reported
            if self._ts is not None and ((timestamp - self._ts) & 0xFFFFFFFF) >= 0x80000000:
                return out  # older than the current press: stale
            out.extend(self._finish())
            self._ts, self._event, self._reported = timestamp, ev, False
        elif self._event is None or ev.duration >= self._event.duration:
            self._event = ev
        self._last_seen = now
        if ev.end and not self._reported:
            out.extend(self._finish())
        return out

    def poll(self, now: float) -> list[Digit]:
        """Report a press whose end packets were lost once ``timeout`` has passed."""
        if not self._reported and now - self._last_seen >= self.timeout:
            return self._finish()
        return []

    def get_timer(self) -> float | None:
        """When :meth:`poll` next needs calling, or None."""
        return None if self._reported else self._last_seen + self.timeout

    def _finish(self) -> list[Digit]:
        if self._reported or self._event is None or self._ts is None:
            return []
        self._reported = True
        self._done.append(self._ts)
        digit = self._event.digit
        if digit is None:
            return []
        return [Digit(digit, self._event.duration * 1000 // self.clock_rate, "rfc4733")]


def _dft_matrix(freqs: tuple[float, ...], n: int) -> npt.NDArray[np.float32]:
    """cos and -sin columns: x @ M gives Re/Im of the single-bin DFT (= Goertzel output)."""
    t = np.arange(n, dtype=np.float64)[:, None]
    w = 2 * np.pi * np.asarray(freqs)[None, :] / SAMPLE_RATE
    return np.concatenate([np.cos(w * t), -np.sin(w * t)], axis=1).astype(np.float32)


def goertzel_power(
    frames: npt.NDArray[np.floating], freqs: tuple[float, ...]
) -> npt.NDArray[np.float32]:
    """|X(f)|^2 of each frame at each frequency: the Goertzel algorithm's result.

    Computed in closed form as one matrix product over all streams instead of the
    per-sample recurrence, which gives the same value and vectorises.
    """
    n = frames.shape[-1]
    k = len(freqs)
    z = np.asarray(frames, dtype=np.float32) @ _dft_matrix(freqs, n)
    return np.asarray(z[..., :k] ** 2 + z[..., k:] ** 2, dtype=np.float32)


@dataclass
class InbandDetector:
    """Per-stream DTMF detection over 20 ms frames of any number of streams.

    Call :meth:`process` once per tick with a ``streams x 160`` matrix; row i is stream
    slot i throughout (use :meth:`reset` when a slot is reused).  A key is reported once
    when it has been present in ``min_frames`` consecutive frames (40 ms), and the same key
    again only after ``min_gap_frames`` frames without it.
    """

    min_amplitude: float = 300.0  # per tone, ~ -37 dBm0
    max_row_over_col_db: float = 8.0
    max_col_over_row_db: float = 4.0
    min_peak_ratio_db: float = 6.0  # each tone vs the next strongest of its group
    min_purity: float = 0.75  # share of the frame's energy in the two tones
    min_frames: int = 2
    min_gap_frames: int = 2
    frame_samples: int = 160
    _cand: npt.NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8), init=False)
    _count: npt.NDArray[np.int16] = field(default_factory=lambda: np.zeros(0, np.int16), init=False)
    _held: npt.NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8), init=False)
    _gap: npt.NDArray[np.int16] = field(default_factory=lambda: np.zeros(0, np.int16), init=False)

    def __post_init__(self) -> None:
        self._matrix = _dft_matrix(ROW_FREQS + COL_FREQS, self.frame_samples)

    def _grow(self, n: int) -> None:
        extra = n - len(self._cand)
        if extra > 0:
            self._cand = np.concatenate([self._cand, np.full(extra, -1, np.int8)])
            self._count = np.concatenate([self._count, np.zeros(extra, np.int16)])
            self._held = np.concatenate([self._held, np.full(extra, -1, np.int8)])
            self._gap = np.concatenate([self._gap, np.zeros(extra, np.int16)])

    def reset(self, slot: int) -> None:
        """Forget the state of one stream slot."""
        if slot < len(self._cand):
            self._cand[slot] = self._held[slot] = -1
            self._count[slot] = self._gap[slot] = 0

    def classify(self, frames: npt.NDArray[np.integer]) -> npt.NDArray[np.int8]:
        """Per frame the key index 0..15 (row*4 + column) present, or -1; stateless."""
        if frames.ndim != 2 or frames.shape[1] != self.frame_samples:
            raise ValueError(f"frames must be (streams, {self.frame_samples})")
        x = frames.astype(np.float32)
        z = x @ self._matrix
        power = z[:, :8] ** 2 + z[:, 8:] ** 2
        n = self.frame_samples
        energy = np.einsum("ij,ij->i", x, x)
        rows = np.arange(len(x))
        r = power[:, :4].argmax(axis=1)
        c = power[:, 4:].argmax(axis=1)
        pr = power[rows, r]
        pc = power[rows, 4 + c]
        # a sine of amplitude A at the analysed frequency gives |X|^2 = (A n / 2)^2
        min_power = (self.min_amplitude * n / 2) ** 2
        ok = (pr >= min_power) & (pc >= min_power)
        ok &= pr <= pc * 10 ** (self.max_row_over_col_db / 10)
        ok &= pc <= pr * 10 ** (self.max_col_over_row_db / 10)
        peak = 10 ** (self.min_peak_ratio_db / 10)
        second_r = np.sort(power[:, :4], axis=1)[:, -2]
        second_c = np.sort(power[:, 4:], axis=1)[:, -2]
        ok &= (pr >= second_r * peak) & (pc >= second_c * peak)
        # purity: the two tones carry most of the energy (speech and music do not)
        ok &= 2 * (pr + pc) >= self.min_purity * n * energy
        return np.where(ok, r * 4 + c, -1).astype(np.int8)

    def process(self, frames: npt.NDArray[np.integer]) -> list[tuple[int, Digit]]:
        """Feed one tick of frames; returns (stream slot, digit) for each key detected."""
        found = self.classify(frames)
        self._grow(len(found))
        m = len(found)
        cand, count, held, gap = self._cand[:m], self._count[:m], self._held[:m], self._gap[:m]
        present = found >= 0
        same = present & (found == cand)
        count[:] = np.where(same, count + 1, np.where(present, 1, 0))
        cand[:] = found
        gap[:] = np.where(present, 0, np.minimum(gap + 1, 10_000))
        held[:] = np.where(gap >= self.min_gap_frames, -1, held)
        fire = present & (count >= self.min_frames) & (found != held)
        held[:] = np.where(fire, found, held)
        out = []
        for slot in np.flatnonzero(fire):
            key = int(found[slot])
            ms = int(count[slot]) * self.frame_samples * 1000 // SAMPLE_RATE
            out.append((int(slot), Digit(KEYPAD[key // 4][key % 4], ms, "inband")))
        return out
