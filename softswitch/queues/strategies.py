"""Which free agent a queue offers its caller to, by the queue's strategy.

Pure functions over a snapshot of the candidates: the engine passes the free agents of the
caller's queue that the caller has not yet been offered in this round.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from config.queues import Strategy

__all__ = ["Candidate", "pick"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A free agent as a strategy sees it."""

    extension: str
    order: int  # the agent's order in the caller's queue
    idle_since: float  # end of their last queue call (or of their login)
    calls: int  # queue calls answered
    talk: float  # queue talk time, seconds


def _by_order(c: Candidate) -> tuple[int, str]:
    return (c.order, c.extension)


def pick(
    strategy: Strategy,
    candidates: Sequence[Candidate],
    *,
    last_order: tuple[int, str] | None = None,
    rng: random.Random | None = None,
) -> Candidate | None:
    """The candidate to offer next (None when there is none). Ring all and linear cascade
    take candidates by order too (the engine rings more than one). `last_order`: for
    round robin, the (order, extension) of the agent the queue offered last."""
    if not candidates:
        return None
    if strategy in (Strategy.RING_ALL, Strategy.LINEAR_HUNT, Strategy.LINEAR_CASCADE):
        return min(candidates, key=_by_order)
    if strategy is Strategy.ROUND_ROBIN:
        ranked = sorted(candidates, key=_by_order)
        if last_order is not None:
            after = [c for c in ranked if _by_order(c) > last_order]
            if after:
                return after[0]
        return ranked[0]
    if strategy is Strategy.LONGEST_IDLE:
        return min(candidates, key=lambda c: (c.idle_since, c.order, c.extension))
    if strategy is Strategy.FEWEST_CALLS:
        return min(candidates, key=lambda c: (c.calls, c.idle_since, c.order, c.extension))
    if strategy is Strategy.LEAST_TALK_TIME:
        return min(candidates, key=lambda c: (c.talk, c.idle_since, c.order, c.extension))
    ranked = sorted(candidates, key=_by_order)
    return (rng or random.Random()).choice(ranked)
