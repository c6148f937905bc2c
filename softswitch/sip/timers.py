"""Transaction timer values (RFC 3261 17, table 4) and a lazily pruned timer heap."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any

__all__ = ["TimerEntry", "TimerHeap", "TimerSettings"]


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """SIP timer base values, in seconds.

    ``t1`` is the RTT estimate, ``t2`` the cap on non-INVITE / response retransmission
    intervals, ``t4`` the time a message may linger in the network. ``timer_d`` is the INVITE
    client's wait for response retransmissions (RFC 3261 asks for at least 32 s on unreliable
    transports). ``proceeding_guard`` bounds how long an INVITE may stay in Proceeding with no
    news (no provisional seen or sent): RFC 3261 leaves that to the TU, but a table that must
    never leak cannot rely on the TU; it is reset by every provisional response.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0
    proceeding_guard: float = 600.0

    def __post_init__(self) -> None:
        if not self.t1 > 0:
            raise ValueError(f"t1 must be > 0, got {self.t1!r}")
        if not self.t2 >= self.t1:
            raise ValueError(f"t2 must be >= t1, got t2={self.t2!r} t1={self.t1!r}")
        if not self.t4 >= 0:
            raise ValueError(f"t4 must be >= 0, got {self.t4!r}")
        if not self.timer_d >= 0:
            raise ValueError(f"timer_d must be >= 0, got {self.timer_d!r}")
        if not self.proceeding_guard > 0:
            raise ValueError(f"proceeding_guard must be > 0, got {self.proceeding_guard!r}")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J, L and M."""
        return 64.0 * self.t1


# A heap entry is a mutable list [deadline, sequence, payload]; a payload of None marks it
# cancelled. Lists compare element-wise in C, and the unique sequence number keeps the
# comparison from ever reaching the payload.
TimerEntry = list[Any]


class TimerHeap:
    """A min-heap of deadlines with O(1) cancellation by lazy deletion.

    Cancelled entries stay in the heap until they surface at the top or until more than half
    the heap is dead, when it is rebuilt; so memory stays proportional to the live timers.
    The entry pushed last is usually still the heap's last leaf when it is cancelled (a
    request's guard timer, replaced by Timer J microseconds later): it is removed at once.
    """

    __slots__ = ("_heap", "_live", "_seq")

    _COMPACT_MIN = 256

    def __init__(self) -> None:
        self._heap: list[TimerEntry] = []
        self._seq = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def push(self, deadline: float, payload: Any) -> TimerEntry:
        """Schedule ``payload`` at ``deadline``; return the handle for :meth:`cancel`."""
        if payload is None:
            raise ValueError("a timer payload may not be None")
        entry: TimerEntry = [deadline, next(self._seq), payload]
        heapq.heappush(self._heap, entry)
        self._live += 1
        return entry

    def cancel(self, entry: TimerEntry) -> None:
        """Cancel a scheduled entry; cancelling twice or after it fired is harmless."""
        if entry[2] is None:
            return
        entry[2] = None
        self._live -= 1
        heap = self._heap
        if heap[-1] is entry:
            heap.pop()  # the last leaf: taking it away leaves a valid heap
        elif len(heap) > self._COMPACT_MIN and len(heap) > 2 * self._live:
            self._heap = [e for e in heap if e[2] is not None]
            heapq.heapify(self._heap)

    def next_deadline(self) -> float | None:
        """Earliest live deadline, or None when nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> Any:
        """Remove and return the payload of the earliest entry due at ``now``, else None."""
        deadline = self.next_deadline()
        if deadline is None or deadline > now:
            return None
        entry = heapq.heappop(self._heap)
        payload = entry[2]
        entry[2] = None
        self._live -= 1
        return payload

    @property
    def heap_size(self) -> int:
        """Entries held, dead ones included (for leak checks)."""
        return len(self._heap)
