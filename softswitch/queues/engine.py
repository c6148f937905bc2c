"""The queue engine of one tenant, sans-I/O: events and a clock in, actions out.

One owner (softswitch.queues.owner) feeds it everything that happens (a caller arrives
or hangs up, an agent answers or fails to, a conversation ends, a status changes, time
passes) and carries out what it returns: `Offer` (ring an agent for a caller), `Cancel`
(stop ringing, or drop an agent's answer that came too late), `Connect` (bridge the
agent who answered), `Exit` (the caller leaves the queue: forward, voicemail or refuse),
`Callback` (call back a caller who hung up keeping their place) and `QueueEvent`s for
the log. All queues of the tenant live in one engine because agents are shared between
queues: one owner holds every caller and every agent reservation, so an agent is never
offered two callers at once and a caller never rings two agents except by ring all or
cascade.

Waiting callers are served oldest first across all queues (an agent serving several
queues is offered the longest-waiting caller among them; the agent's queue priority breaks
ties between callers who arrived in the same second); within a queue the strategy picks
the agent (softswitch.queues.strategies).

Callback: a caller who asked for it hangs up and stays in the queue, ``away``, with their
arrival time. When their turn comes (an agent is free for them) the engine asks for the
call back, and while it rings nobody behind them in their queue is offered an agent (the
free agent waits for them: that is keeping one's place); once the caller answers they are
offered to it. Unanswered, the call back is tried again ``callback_retry`` seconds later,
up to ``callback_attempts`` times (the queue moves on meanwhile), then the caller is given
up.

Over 600 lines because it is the one owner of a tenant's callers and agent reservations:
every input and the dispatch that follows it must see the same state, which splitting the
module would spread over several.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from config.queues import CallQueue, IfUnanswered, MissedAction, QueueAgent, Strategy
from softswitch.queues.strategies import Candidate, pick
from storage.queue_events import QueueEvent

__all__ = ["Action", "Callback", "Cancel", "Connect", "Exit", "Offer", "QueueEngine", "events_of"]


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring `agent`'s phones for the caller `call_id` waiting in `queue`, `delay` seconds
    from now, until `timeout` seconds from now. Offers returned together for one caller
    ring together (ring all, cascade) and end together."""

    call_id: str
    queue: str
    agent: str
    delay: float = 0.0
    timeout: float = 0.0


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop ringing `agent` for `call_id` (or hang up their late answer)."""

    call_id: str
    agent: str
    reason: str


@dataclass(frozen=True, slots=True)
class Connect:
    """`agent` answered first: bridge them to the caller."""

    call_id: str
    queue: str
    agent: str


@dataclass(frozen=True, slots=True)
class Exit:
    """The caller leaves the queue without an agent: `reason` is the logged exit reason,
    `target` the extension to send them to (None: end the call)."""

    call_id: str
    queue: str
    reason: str
    target: str | None


@dataclass(frozen=True, slots=True)
class Callback:
    """Call back `number`, the caller `call_id` who asked for it, for up to `timeout`
    seconds: answered, they rejoin `queue` in their place (`QueueEngine.callback_answered`)."""

    call_id: str
    queue: str
    number: str
    timeout: float


Action = Offer | Cancel | Connect | Exit | Callback | QueueEvent

#: Offer failures that are not the agent's doing and so do not count towards missed_limit.
_NOT_MISSED = frozenset({"busy"})
#: How many recent calls of a queue the estimated wait goes by.
_HANDLE_HISTORY = 20
#: How long past an offer's own timeout the engine waits for the ringing side to report
#: before it counts the offer missed by itself.
OFFER_GRACE = 5.0


@dataclass(slots=True)
class _Agent:
    extension: str
    status: str = "logged_out"
    state: str = "idle"  # idle, ringing, in_call, wrap_up
    call_id: str = ""
    queue: str = ""
    idle_since: float = 0.0
    wrap_until: float = 0.0
    answered_at: float = 0.0
    missed_in_row: int = 0
    calls: int = 0
    talk: float = 0.0


@dataclass(slots=True)
class _Caller:
    call_id: str
    queue: str
    entered: float
    seq: int
    deadline: float | None  # queue ring timeout
    offers: dict[str, float] = field(default_factory=dict)  # agent -> ring deadline
    tried: set[str] = field(default_factory=set)  # this round
    # Callback: the caller hung up keeping their place (``away``); `number` to call back;
    # a call back is ringing (``calling``); tries so far; no new try before ``retry_at``.
    away: bool = False
    number: str = ""
    calling: bool = False
    attempts: int = 0
    retry_at: float = 0.0


class QueueEngine:
    """Callers and agents of one tenant's queues (see the module docstring)."""

    def __init__(
        self, tenant: str, queues: Sequence[CallQueue], rng: random.Random | None = None
    ) -> None:
        self.tenant = tenant
        self.rng = rng or random.Random()
        self.queues: dict[str, CallQueue] = {}
        self.agents: dict[str, _Agent] = {}
        self.callers: dict[str, _Caller] = {}
        self._last_offered: dict[str, tuple[int, str]] = {}  # queue -> round robin mark
        self._handled: dict[str, deque[float]] = {}  # queue -> recent handle times
        # queue -> its agents by extension (a queue's agent list is scanned per offer else)
        self._roster: dict[str, dict[str, QueueAgent]] = {}
        self._seq = 0
        self.reconfigure(queues)

    # -- inputs ------------------------------------------------------------------------

    def reconfigure(self, queues: Sequence[CallQueue]) -> list[Action]:
        """New queue settings; agents keep their status, callers of a removed queue leave."""
        self.queues = {q.name: q for q in queues}
        self._roster = {q.name: {a.extension: a for a in q.agents} for q in queues}
        for q in queues:
            for a in q.agents:
                self.agents.setdefault(a.extension, _Agent(a.extension))
        out: list[Action] = []
        for caller in list(self.callers.values()):
            if caller.queue not in self.queues:
                out += self._leave(caller, 0.0, "shutdown", None, log=False)
        return out

    def restore_status(self, agent: str, status: str, since: float) -> None:
        """An agent's status as the log last had it (at start-up; not logged again)."""
        record = self.agents.get(agent)
        if record is not None:
            record.status = status.partition(":")[0]
            record.idle_since = since

    def caller_arrived(self, call_id: str, queue: str, now: float) -> list[Action]:
        """A caller enters `queue` (or is turned away: full, no agents)."""
        config = self.queues.get(queue)
        if config is None:
            raise ValueError(f"queue: no queue {queue!r}")
        if call_id in self.callers:
            raise ValueError(f"call_id: {call_id!r} is already waiting")
        out: list[Action] = [self._event("entered", now, queue, call_id)]
        refusal = ""
        if config.require_agents and not any(
            self.agents[a.extension].status != "logged_out" for a in config.agents
        ):
            refusal = "no_agents"
        waiting = sum(1 for c in self.callers.values() if c.queue == queue)
        if config.max_length is not None and waiting >= config.max_length:
            refusal = "full"
        if config.max_expected_wait is not None and not refusal:
            expected = self._estimate(queue, waiting + 1)
            if expected is not None and expected > config.max_expected_wait:
                refusal = "full"  # guide 002: too long a wait is a full queue
        if refusal:
            target = config.unavailable_to
            reason = "forwarded" if target is not None else refusal
            return [
                *out,
                self._event("exited", now, queue, call_id, reason=reason),
                Exit(call_id, queue, reason, target),
            ]
        self._seq += 1
        deadline = now + config.ring_timeout if config.ring_timeout is not None else None
        self.callers[call_id] = _Caller(call_id, queue, now, self._seq, deadline)
        return out + self._dispatch(now)

    def caller_left(self, call_id: str, now: float) -> list[Action]:
        """The caller hung up: abandoned while waiting, or the end of their conversation."""
        caller = self.callers.get(call_id)
        if caller is not None:
            return self._leave(caller, now, "abandoned", None) + self._dispatch(now)
        return self.call_ended(call_id, now)

    def caller_exited(
        self, call_id: str, now: float, reason: str, target: str | None
    ) -> list[Action]:
        """The caller left by their own choice (exit key, callback): logged with `reason`."""
        caller = self.callers.get(call_id)
        if caller is None:
            return []
        return self._leave(caller, now, reason, target) + self._dispatch(now)

    def callback_requested(self, call_id: str, number: str, now: float) -> list[Action]:
        """The waiting caller asked to be called back at `number` and hangs up: they keep
        their place (logged as an ``exited`` with reason callback)."""
        caller = self.callers.get(call_id)
        if caller is None or caller.away:
            return []
        config = self.queues[caller.queue]
        if config.callback_key is None:
            raise ValueError(f"queue: {caller.queue} offers no callback")
        if not number:
            raise ValueError("number: a callback needs the caller's number")
        out = self._cancel_offers(caller, "caller_left")
        caller.away, caller.number, caller.deadline = True, number, None
        caller.tried.clear()
        out.append(self._event("exited", now, caller.queue, call_id, reason="callback"))
        return out + self._dispatch(now)

    def callback_answered(self, call_id: str, now: float) -> list[Action]:
        """The caller answered their call back: back in the queue in their old place."""
        caller = self.callers.get(call_id)
        if caller is None or not caller.calling:
            return []
        caller.away = caller.calling = False
        out: list[Action] = [
            self._event("callback", now, caller.queue, call_id, reason="answered"),
            self._event("entered", now, caller.queue, call_id, reason="callback"),
        ]
        return out + self._dispatch(now)

    def callback_failed(self, call_id: str, now: float, reason: str) -> list[Action]:
        """The call back was not answered (`reason`): another try later, or given up."""
        caller = self.callers.get(call_id)
        if caller is None or not caller.calling:
            return []
        config = self.queues[caller.queue]
        caller.calling = False
        out: list[Action] = [self._event("callback", now, caller.queue, call_id, reason=reason)]
        if caller.attempts >= config.callback_attempts:
            del self.callers[call_id]
            out.append(self._event("callback", now, caller.queue, call_id, reason="given_up"))
        else:
            caller.retry_at = now + config.callback_retry
        return out + self._dispatch(now)

    def offer_answered(self, call_id: str, agent: str, now: float) -> list[Action]:
        """`agent` answered the offer of `call_id`: the first answer wins."""
        caller = self.callers.get(call_id)
        record = self.agents.get(agent)
        if caller is None or record is None or agent not in caller.offers:
            return [Cancel(call_id, agent, "gone")]
        del caller.offers[agent]
        out: list[Action] = self._cancel_offers(caller, "answered_elsewhere")
        del self.callers[call_id]
        record.state, record.call_id, record.queue = "in_call", call_id, caller.queue
        record.answered_at, record.missed_in_row = now, 0
        record.calls += 1
        out += [
            self._event("answered", now, caller.queue, call_id, agent),
            Connect(call_id, caller.queue, agent),
        ]
        return out + self._dispatch(now)

    def offer_failed(self, call_id: str, agent: str, now: float, reason: str) -> list[Action]:
        """Ringing `agent` for `call_id` ended without an answer (`reason`: no_answer,
        rejected, busy, unreachable)."""
        caller = self.callers.get(call_id)
        if caller is None or agent not in caller.offers:
            return []
        del caller.offers[agent]
        caller.tried.add(agent)
        return self._missed(caller, agent, now, reason) + self._dispatch(now)

    def call_ended(self, call_id: str, now: float) -> list[Action]:
        """The conversation of `call_id` with its agent ended: wrap-up, then idle."""
        record = next(
            (a for a in self.agents.values() if a.state == "in_call" and a.call_id == call_id),
            None,
        )
        if record is None:
            return []
        queue = self.queues.get(record.queue)
        record.talk += max(0.0, now - record.answered_at)
        out: list[Action] = [self._event("completed", now, record.queue, call_id, record.extension)]
        wrap = queue.wrap_up_of(record.extension) if queue is not None else 0.0
        recent = self._handled.setdefault(record.queue, deque(maxlen=_HANDLE_HISTORY))
        recent.append(max(0.0, now - record.answered_at) + wrap)
        if wrap > 0:
            record.state, record.wrap_until = "wrap_up", now + wrap
            out.append(self._event("wrapup_start", now, record.queue, call_id, record.extension))
        else:
            self._idle(record, now)
        return out + self._dispatch(now)

    def set_status(
        self, agent: str, status: str, now: float, reason: str = "", log: bool = True
    ) -> list[Action]:
        """A person sets `agent`'s status: available, on_break (with `reason`), logged_out
        (`log` False: the change is in the log already, as one made by the CLI)."""
        record = self.agents.get(agent)
        if record is None:
            raise ValueError(f"agent: {agent} is not an agent of any queue")
        if status not in ("available", "on_break", "logged_out"):
            raise ValueError(f"status: {status!r} is not available, on_break or logged_out")
        out = self._set_status(record, status, reason, now)
        if not log:
            out = [a for a in out if not isinstance(a, QueueEvent)]
        return out + self._dispatch(now)

    def tick(self, now: float) -> list[Action]:
        """Time has passed: ring timeouts, cascade steps, wrap-ups and queue timeouts."""
        out: list[Action] = []
        for record in self.agents.values():
            if record.state == "wrap_up" and record.wrap_until <= now:
                out.append(
                    self._event("wrapup_end", now, record.queue, record.call_id, record.extension)
                )
                self._idle(record, now)
        for caller in sorted(self.callers.values(), key=lambda c: c.seq):
            if caller.away:
                continue  # waits for its call back, without a queue timeout
            config = self.queues[caller.queue]
            for agent, deadline in list(caller.offers.items()):
                if deadline <= now:
                    del caller.offers[agent]
                    caller.tried.add(agent)
                    out += self._missed(caller, agent, now, "no_answer")
            if caller.offers and caller.deadline is not None and caller.deadline <= now:
                continue  # an offer rings: if unanswered applies once it ends
            if caller.deadline is not None and caller.deadline <= now:
                if config.if_unanswered is IfUnanswered.STAY:
                    caller.deadline = None
                else:
                    reason = (
                        "forwarded" if config.if_unanswered is IfUnanswered.FORWARD else "voicemail"
                    )
                    out += self._leave(caller, now, reason, config.forward_to)
        return out + self._dispatch(now)

    def next_deadline(self) -> float | None:
        """When `tick` has something to do next (None: nothing timed is pending)."""
        times = [a.wrap_until for a in self.agents.values() if a.state == "wrap_up"]
        for caller in self.callers.values():
            if caller.away:
                if not caller.calling and caller.retry_at:
                    times.append(caller.retry_at)
                continue
            times += list(caller.offers.values())
            if caller.deadline is not None and not caller.offers:
                times.append(caller.deadline)
        return min(times) if times else None

    # -- state for status displays and tests --------------------------------------------

    def waiting(self) -> list[tuple[str, str, float, tuple[str, ...]]]:
        """(queue, call_id, entered, agents ringing) per waiting caller, oldest first."""
        return [
            (c.queue, c.call_id, c.entered, tuple(sorted(c.offers)))
            for c in sorted(self.callers.values(), key=lambda c: (c.entered, c.seq))
        ]

    def position(self, call_id: str) -> tuple[int, float | None] | None:
        """A waiting caller's place in their queue (1: next) and the estimated wait in
        seconds: the queue's recent mean handle time, times the place, shared among its
        agents who are logged in (None until the queue has handled calls)."""
        caller = self.callers.get(call_id)
        if caller is None:
            return None
        place = 1 + sum(
            1
            for c in self.callers.values()
            if c.queue == caller.queue and (c.entered, c.seq) < (caller.entered, caller.seq)
        )
        return place, self._estimate(caller.queue, place)

    def _estimate(self, queue: str, place: int) -> float | None:
        """The expected wait of the caller `place` in `queue` (see `position`)."""
        recent = self._handled.get(queue)
        if not recent:
            return None
        config = self.queues[queue]
        staffed = sum(1 for a in config.agents if self.agents[a.extension].status != "logged_out")
        return place * (sum(recent) / len(recent)) / max(1, staffed)

    def agent_state(self, agent: str) -> tuple[str, str, str]:
        """(status, state, call_id) of an agent."""
        record = self.agents[agent]
        return record.status, record.state, record.call_id

    def check(self) -> None:
        """Assert the reservation invariants (tests): an agent rings for at most one caller,
        and exactly the agents in callers' offers are ringing."""
        ringing: dict[str, str] = {}
        for caller in self.callers.values():
            for agent in caller.offers:
                assert agent not in ringing, (
                    f"{agent} offered {ringing.get(agent)} and {caller.call_id}"
                )
                ringing[agent] = caller.call_id
        for record in self.agents.values():
            if record.state == "ringing":
                assert ringing.get(record.extension) == record.call_id, record
            else:
                assert record.extension not in ringing, record

    # -- the work -------------------------------------------------------------------------

    def _event(
        self,
        kind: str,
        at: float,
        queue: str = "",
        call_id: str = "",
        agent: str = "",
        reason: str = "",
    ) -> QueueEvent:
        return QueueEvent(self.tenant, kind, at, queue, call_id, agent, reason)

    def _idle(self, record: _Agent, now: float) -> None:
        record.state, record.call_id, record.queue, record.idle_since = "idle", "", "", now

    def _set_status(self, record: _Agent, status: str, reason: str, now: float) -> list[Action]:
        label = f"{status}:{reason}" if reason else status
        out: list[Action] = [self._event("agent_status", now, agent=record.extension, reason=label)]
        record.status = status
        if status == "available":
            record.missed_in_row = 0
        # An offer ringing now rings on to its end; the status decides the next offers.
        return out

    def _cancel_offers(self, caller: _Caller, reason: str) -> list[Action]:
        out: list[Action] = []
        for agent in sorted(caller.offers):
            out.append(Cancel(caller.call_id, agent, reason))
            record = self.agents[agent]
            record.state, record.call_id = "idle", ""
        caller.offers.clear()
        return out

    def _leave(
        self, caller: _Caller, now: float, reason: str, target: str | None, log: bool = True
    ) -> list[Action]:
        out = self._cancel_offers(caller, "caller_left")
        del self.callers[caller.call_id]
        if log:
            if reason == "abandoned":
                out.append(self._event("abandoned", now, caller.queue, caller.call_id))
            else:
                out.append(self._event("exited", now, caller.queue, caller.call_id, reason=reason))
        if reason != "abandoned":
            out.append(Exit(caller.call_id, caller.queue, reason, target))
        return out

    def _missed(self, caller: _Caller, agent: str, now: float, reason: str) -> list[Action]:
        record = self.agents[agent]
        record.state, record.call_id = "idle", ""
        out: list[Action] = [
            self._event("missed", now, caller.queue, caller.call_id, agent, reason)
        ]
        if reason in _NOT_MISSED:
            return out
        record.missed_in_row += 1
        config = self.queues[caller.queue]
        if config.missed_limit is not None and record.missed_in_row >= config.missed_limit:
            if config.missed_action is MissedAction.LOGOUT:
                out += self._set_status(record, "logged_out", "missed", now)
            else:
                out += self._set_status(record, "on_break", "missed", now)
            record.missed_in_row = 0
        return out

    def _candidates(
        self, config: CallQueue, free: list[QueueAgent], blocked: set[str]
    ) -> list[Candidate]:
        found = []
        for a in free:
            if a.extension in blocked:
                continue
            record = self.agents[a.extension]
            found.append(
                Candidate(a.extension, a.order, record.idle_since, record.calls, record.talk)
            )
        return found

    def _offer(
        self, caller: _Caller, config: CallQueue, agents: list[str], now: float, step: float
    ) -> list[Action]:
        """Offer `caller` to `agents` together, each `step` seconds after the one before
        (0: at once); the offers end together when the last has rung its timeout."""
        ring = config.agent_ring_timeout
        timeout = step * (len(agents) - 1) + ring
        out: list[Action] = []
        for i, agent in enumerate(agents):
            record = self.agents[agent]
            record.state, record.call_id = "ringing", caller.call_id
            caller.offers[agent] = now + timeout + OFFER_GRACE
            order = self._roster[config.name][agent].order
            self._last_offered[config.name] = (order, agent)
            out += [
                self._event(
                    "offered", now, config.name, caller.call_id, agent, config.strategy.value
                ),
                Offer(caller.call_id, config.name, agent, step * i, timeout),
            ]
        return out

    def _outranked(
        self, caller: _Caller, free: list[QueueAgent], same_second: list[_Caller]
    ) -> set[str]:
        """Of the queue's `free` agents, those who should rather take another caller that
        arrived in the same second (`same_second`), in a queue they give a better (lower)
        priority."""
        blocked: set[str] = set()
        for other in same_second:
            if other is caller or other.offers:
                continue
            theirs = self._roster[other.queue]
            for a in free:
                b = theirs.get(a.extension)
                if b is not None and b.priority < a.priority:
                    blocked.add(a.extension)
        return blocked

    def _dispatch(self, now: float) -> list[Action]:
        # Every input ends here, so its cost is what a busy queue pays per event: nothing
        # is looked at for a caller whose queue has no free agent (with every agent busy
        # and hundreds waiting, that is every caller), and agents are found by extension.
        free = {
            name for name, r in self.agents.items() if r.status == "available" and r.state == "idle"
        }
        if not free:
            self._no_candidates(now)
            return []
        out: list[Action] = []
        held: set[str] = set()  # queues waiting for a caller called back
        ordered = sorted(self.callers.values(), key=lambda c: (c.entered, c.seq))
        by_second: dict[int, list[_Caller]] = {}
        for caller in ordered:
            by_second.setdefault(math.floor(caller.entered), []).append(caller)
        for caller in ordered:
            if caller.calling:
                held.add(caller.queue)
            if caller.queue in held:
                continue  # a call back rings: the callers behind it keep their places
            if caller.offers or (caller.away and caller.retry_at > now):
                continue  # an offer (a ring-all or cascade round) is ringing
            config = self.queues[caller.queue]
            mine = [a for a in config.agents if a.extension in free] if free else []
            if not mine:
                caller.tried.clear()  # no candidate at all: the next round starts afresh
                continue
            strategy = config.strategy
            outranked = self._outranked(caller, mine, by_second[math.floor(caller.entered)])
            candidates = self._candidates(config, mine, caller.tried | outranked)
            if not candidates and caller.tried:
                caller.tried.clear()  # everyone had their turn: a new round
                candidates = self._candidates(config, mine, outranked)
            if not candidates:
                continue
            if caller.away:  # their turn: call them back, serve the others meanwhile
                caller.calling, caller.attempts = True, caller.attempts + 1
                held.add(caller.queue)
                out += [
                    self._event("callback", now, config.name, caller.call_id, reason="calling"),
                    Callback(caller.call_id, config.name, caller.number, config.agent_ring_timeout),
                ]
                continue
            if strategy in (Strategy.RING_ALL, Strategy.LINEAR_CASCADE):
                ranked = [
                    c.extension for c in sorted(candidates, key=lambda c: (c.order, c.extension))
                ]
                step = config.agent_ring_timeout if strategy is Strategy.LINEAR_CASCADE else 0.0
                out += self._offer(caller, config, ranked, now, step)
                free.difference_update(ranked)
            else:
                chosen = pick(
                    strategy, candidates, last_order=self._last_offered.get(config.name),
                    rng=self.rng,
                )  # fmt: skip
                if chosen is None:
                    continue
                out += self._offer(caller, config, [chosen.extension], now, 0.0)
                free.discard(chosen.extension)
        return out

    def _no_candidates(self, now: float) -> None:
        """What `_dispatch` does when no agent is free, without sorting the callers: every
        caller it would look at starts a new round (see `tried`)."""
        held: dict[str, tuple[float, int]] = {}  # queue -> first caller called back
        for c in self.callers.values():
            if c.calling and (c.entered, c.seq) < held.get(c.queue, (math.inf, 0)):
                held[c.queue] = (c.entered, c.seq)
        for c in self.callers.values():
            if c.offers or (c.away and c.retry_at > now) or not c.tried:
                continue
            if c.queue in held and (c.entered, c.seq) >= held[c.queue]:
                continue
            c.tried.clear()


def events_of(actions: Iterable[Action]) -> list[QueueEvent]:
    """The log entries among `actions`."""
    return [a for a in actions if isinstance(a, QueueEvent)]
