"""Bounded per-key tables the security guard counts in: leaky failure counts and token
buckets. Each holds at most ``limit`` keys; when full the oldest key goes first, so a flood
of random source addresses costs a fixed amount of memory and evicts only state that a
single real offender rebuilds in a few requests.
"""

from __future__ import annotations

__all__ = ["LeakyCounts", "TokenBuckets"]


class LeakyCounts:
    """A count per key that grows by one per event and drains at ``rate`` per second
    (the leaky bucket of fail2ban's findtime/maxretry, without keeping every timestamp)."""

    __slots__ = ("_levels", "limit", "rate")

    def __init__(self, rate: float, limit: int) -> None:
        self.rate = rate
        self.limit = limit
        self._levels: dict[str, tuple[float, float]] = {}  # key -> (level, when)

    def __len__(self) -> int:
        return len(self._levels)

    def level(self, key: str, now: float) -> float:
        """The key's count at ``now`` (0.0 when unknown)."""
        entry = self._levels.get(key)
        if entry is None:
            return 0.0
        level, when = entry
        return max(0.0, level - (now - when) * self.rate)

    def add(self, key: str, now: float) -> float:
        """Count one event for ``key``; returns its new level."""
        level = self.level(key, now) + 1.0
        levels = self._levels
        if key not in levels and len(levels) >= self.limit:
            del levels[next(iter(levels))]
        levels[key] = (level, now)
        return level

    def forget(self, key: str) -> None:
        self._levels.pop(key, None)


class TokenBuckets:
    """A token bucket per key: ``rate`` tokens a second up to ``burst``; a request takes
    one. Also counts, per key, the requests refused since its bucket was last full (since
    the key last went quiet for ``burst / rate`` seconds)."""

    __slots__ = ("_buckets", "burst", "limit", "rate")

    def __init__(self, rate: float, burst: int, limit: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.limit = limit
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, when, refused]

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> int:
        """0 when ``key`` may send, else how many requests it had refused since its bucket
        was last full."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= self.limit:
                del buckets[next(iter(buckets))]
            buckets[key] = [self.burst - 1.0, now, 0.0]
            return 0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= self.burst:
            bucket[2] = 0.0
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0
        bucket[0] = tokens
        bucket[2] += 1.0
        return int(bucket[2])

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)
