"""A per-stream jitter buffer for 20 ms frames, driven by the engine's frame clock.

Packets go in with :meth:`JitterBuffer.push` whenever they arrive; every tick the engine
calls :meth:`JitterBuffer.pop` once and gets the frame to play.  Ordering uses the RTP
sequence number extended across 16-bit wraps.  A frame that is not there when its turn
comes is concealed: the last frame is repeated once, then silence.  A packet arriving
after its turn is dropped as late.  Adaptive mode grows the playout depth by one frame
after an underrun caused by late packets and shrinks it slowly when the buffer stays
fuller than needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

_SEQ_MOD = 1 << 16


class FrameKind(Enum):
    """What :meth:`JitterBuffer.pop` produced."""

    WAITING = "waiting"  # not started yet (prefilling) or idle: nothing to play
    PLAYED = "played"
    REPEATED = "repeated"  # concealment: the previous frame again
    SILENCE = "silence"  # concealment: nothing usable


@dataclass(frozen=True, slots=True)
class Frame:
    """One tick's output: the payload to decode (None for silence/waiting)."""

    kind: FrameKind
    payload: bytes | None = None
    sequence: int | None = None  # 16-bit sequence of the played packet


@dataclass(slots=True)
class JitterStats:
    """Counters since the buffer was created."""

    received: int = 0
    played: int = 0
    late: int = 0
    duplicate: int = 0
    repeated: int = 0
    silence: int = 0
    overflow: int = 0
    resets: int = 0
    underruns: int = 0

    @property
    def concealed(self) -> int:
        """Frames that were not received in time."""
        return self.repeated + self.silence


@dataclass
class JitterBuffer:
    """Reorders packets by sequence number and releases one frame per tick."""

    depth: int = 3  # frames held before playout starts (playout delay = depth * 20 ms)
    adaptive: bool = False
    min_depth: int = 1
    max_depth: int = 12
    capacity: int = 50  # frames ahead of playout kept; beyond that the stream is resynced
    idle_after: int = 50  # consecutive missing frames after which playout stops and refills
    stats: JitterStats = field(default_factory=JitterStats)
    _frames: dict[int, bytes] = field(default_factory=dict, init=False)
    _next: int | None = field(init=False)  # extended seq to play next
    _highest: int | None = field(init=False)  # highest extended seq seen
    _playing: bool = field(init=False)
    _last: bytes | None = field(init=False)
    _missing_run: int = field(init=False)
    _full_ticks: int = field(init=False)
    _stall: int = field(init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.min_depth <= self.depth <= self.max_depth <= self.capacity:
            raise ValueError("need 1 <= min_depth <= depth <= max_depth <= capacity")
        # Set here, not as field defaults: compiled with mypyc the dataclass leaves an
        # init=False field with a plain default unset (there is no class attribute to read).
        self._next = None
        self._highest = None
        self._playing = False
        self._last = None
        self._missing_run = 0
        self._full_ticks = 0
        self._stall = 0

    def _extend(self, seq: int) -> int:
        """Extend a 16-bit sequence to the cycle closest to the highest one seen."""
        ref = self._highest if self._highest is not None else seq
        delta = (seq - ref) % _SEQ_MOD
        if delta >= _SEQ_MOD // 2:
            delta -= _SEQ_MOD
        return ref + delta

    @property
    def buffered(self) -> int:
        """Frames currently held."""
        return len(self._frames)

    def push(self, sequence: int, payload: bytes) -> bool:
        """Store an arriving packet; False if it was dropped (late, duplicate, overflow)."""
        self.stats.received += 1
        ext = self._extend(sequence & 0xFFFF)
        if (
            self._next is not None
            and self._highest is not None
            and (self._next - ext > self.capacity or ext - self._highest > self.capacity)
        ):
            self._reset()  # a sequence jump: the source restarted, start over
            ext = sequence & 0xFFFF
        if self._next is not None and ext < self._next:
            if self._playing:
                self.stats.late += 1
                if self.adaptive and self.depth < self.max_depth:
                    self.depth += 1
                    self._stall += 1  # play one concealment frame to deepen the buffer
                return False
            self._next = ext  # reordered during prefill: start from the earliest
        if ext in self._frames:
            self.stats.duplicate += 1
            return False
        if self._next is not None and ext - self._next >= self.capacity:
            self.stats.overflow += 1
            return False
        if self._highest is None or ext > self._highest:
            self._highest = ext
        if self._next is None:
            self._next = ext
        self._frames[ext] = payload
        return True

    def _reset(self) -> None:
        self.stats.resets += 1
        self._frames.clear()
        self._next = None
        self._highest = None
        self._playing = False
        self._missing_run = 0
        self._stall = 0

    def pop(self) -> Frame:
        """The frame for this tick (call exactly once per 20 ms tick)."""
        if not self._playing:
            if self._next is None or self._highest is None:
                return Frame(FrameKind.WAITING)
            if self._highest - self._next + 1 < self.depth:
                return Frame(FrameKind.WAITING)
            self._playing = True
        if self._stall:
            self._stall -= 1
            return self._conceal()
        assert self._next is not None
        seq = self._next
        self._next += 1
        payload = self._frames.pop(seq, None)
        if payload is not None:
            self._missing_run = 0
            self._last = payload
            self.stats.played += 1
            self._adapt_shrink()
            return Frame(FrameKind.PLAYED, payload, seq % _SEQ_MOD)
        if not self._frames:
            self.stats.underruns += 1
        return self._conceal()

    def _conceal(self) -> Frame:
        self._missing_run += 1
        last = self._last if self._missing_run == 1 else None
        if self._missing_run >= self.idle_after and not self._frames:
            # the far end went quiet (hold, DTX, gone): refill before playing again
            self._playing = False
            self._next = None
            self._highest = None
            self._missing_run = 0
            self._last = None
        if last is not None:
            self.stats.repeated += 1
            return Frame(FrameKind.REPEATED, last)
        self.stats.silence += 1
        return Frame(FrameKind.SILENCE)

    def _adapt_shrink(self) -> None:
        if not self.adaptive or self._highest is None or self._next is None:
            return
        held = self._highest - self._next + 1
        if held > self.depth + 1:
            self._full_ticks += 1
            if self._full_ticks >= 50:  # a second of slack: cut delay by one frame
                self._full_ticks = 0
                self._frames.pop(self._next, None)
                self._next += 1
                if self.depth > self.min_depth:
                    self.depth -= 1
        else:
            self._full_ticks = 0
