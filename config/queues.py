"""Call queues (ACD) of a tenant: strategy, agents, timeouts, limits, what a caller hears.

Names follow the hosted-PBX guides and FreeSWITCH's mod_callcenter: the strategy decides
which available agent is offered the longest-waiting caller; ``agent_ring_timeout`` is how
long one offer rings, ``ring_timeout`` how long the queue tries before ``if_unanswered``;
``wrap_up`` is the agent's after-call time before the next offer. An agent is a user of
the tenant (their registered devices ring); ``order`` ranks agents for the linear
strategies, ``priority`` ranks this queue among the agent's queues (lower first). An agent
added "by phone" (``single_device``) rings only the user's main device. Cross
checks with the rest of the tenant (agents are users, extensions free) are done by
`check_queues`, which the tenant model calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.locations import Loc
from config.moh import MusicOnHold
from config.routable import add_routable
from config.routing import FeatureCode

__all__ = [
    "AGENT_FEATURE_CODES",
    "CallQueue",
    "IfUnanswered",
    "MissedAction",
    "QueueAgent",
    "QueueAudio",
    "Strategy",
    "agent_feature_codes",
    "check_queues",
    "queue_extensions",
    "route_queues",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: Agent feature codes: dialled from an agent's own phone, they set the agent's status.
AGENT_FEATURE_CODES: dict[str, str] = {"*71": "available", "*72": "logged_out", "*73": "on_break"}


def agent_feature_codes() -> dict[str, FeatureCode]:
    """The agents' codes as routing's feature codes (application nodes)."""
    return {
        code: FeatureCode(kind="queue_agent", ref=status)
        for code, status in AGENT_FEATURE_CODES.items()
    }


class Strategy(StrEnum):
    """How a queue picks the agent offered its next caller."""

    RING_ALL = "ring_all"  # every available agent at once; the first to answer takes it
    LINEAR_HUNT = "linear_hunt"  # by order, one at a time; a miss moves on to the next
    # by order; every agent_ring_timeout the next agent joins those already ringing
    LINEAR_CASCADE = "linear_cascade"
    ROUND_ROBIN = "round_robin"  # by order, starting after the agent offered last
    LONGEST_IDLE = "longest_idle"  # the agent idle the longest since their last queue call
    FEWEST_CALLS = "fewest_calls"  # the agent who answered the fewest queue calls today
    LEAST_TALK_TIME = "least_talk_time"  # the agent with the least queue talk time today
    RANDOM = "random"


class IfUnanswered(StrEnum):
    """What happens to a caller when ``ring_timeout`` passes."""

    STAY = "stay"  # keep waiting
    FORWARD = "forward"  # to ``forward_to``
    VOICEMAIL = "voicemail"  # to the mailbox ``forward_to``


class MissedAction(StrEnum):
    """What an agent's ``missed_limit`` consecutive missed offers do to their status."""

    BREAK = "break"  # on break, reason "missed"
    LOGOUT = "logout"


class QueueAudio(StrEnum):
    """What a waiting caller hears."""

    MUSIC = "music"  # the queue's music on hold (else the tenant's)
    RINGBACK = "ringback"  # a ringing tone


def _extension(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise ValueError("must be digits")
    if not 2 <= len(value) <= 8:
        raise ValueError("must be 2 to 8 digits")
    return value


class QueueAgent(BaseModel):
    """A user serving a queue."""

    model_config = _FROZEN
    extension: str
    order: int = Field(default=0, ge=0, le=10_000)
    priority: int = Field(default=1, ge=1, le=100)
    # After-call time of this agent in this queue; None = the queue's ``wrap_up``.
    wrap_up: float | None = Field(default=None, ge=0, le=3600)
    # The agent is a single device (guide 002's "add by phone"): only the user's main
    # registered device rings, not their other phones.
    single_device: bool = False
    # The agent hears a prompt and must press 1 before the caller is put through.
    request_confirmation: bool = False
    # The offer asks the phone to answer by itself (Call-Info answer-after=0, Alert-Info
    # auto answer); phones that do not honour it just ring.
    auto_answer: bool = False

    _ext = field_validator("extension", mode="before")(lambda cls, v: _extension(v))


class CallQueue(BaseModel):
    """One call queue as an admin configures it."""

    model_config = _FROZEN
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    extension: str
    strategy: Strategy = Strategy.RING_ALL
    agents: tuple[QueueAgent, ...] = ()
    # Seconds one offer rings an agent (every agent, for ring all).
    agent_ring_timeout: float = Field(default=20, ge=5, le=300)
    # Seconds a caller waits before ``if_unanswered``; None = for ever.
    ring_timeout: float | None = Field(default=None, ge=5, le=86_400)
    if_unanswered: IfUnanswered = IfUnanswered.STAY
    forward_to: str | None = None  # extension (or mailbox, for voicemail)
    wrap_up: float = Field(default=0, ge=0, le=3600)
    # Callers waiting at once; one more is sent to ``unavailable_to`` (or refused 486).
    max_length: int | None = Field(default=None, ge=1, le=10_000)
    # Callers are refused (``unavailable_to``) while no agent is logged in.
    require_agents: bool = False
    unavailable_to: str | None = None  # "forward if unavailable": an extension
    # Consecutive missed offers after which an agent is taken out (None = never).
    missed_limit: int | None = Field(default=None, ge=1, le=100)
    missed_action: MissedAction = MissedAction.BREAK
    # Answered within this many seconds counts towards the service level.
    service_level: float = Field(default=60, ge=1, le=3600)
    audio: QueueAudio = QueueAudio.MUSIC
    moh: MusicOnHold | None = None
    # Every this many seconds of waiting the caller hears their position and, once the
    # queue has answered calls to go by, the estimated wait (None: no announcements).
    announce_every: float | None = Field(default=None, ge=10, le=600)
    # Keys a waiting caller may press to leave the queue: key -> extension (an operator,
    # a mailbox, another queue).
    exit_keys: dict[str, str] = Field(default_factory=dict)
    # A caller whose estimated wait on arrival exceeds this many seconds goes to the
    # overflow destination ``unavailable_to`` (or is refused 486); None = no limit. The
    # estimate needs handled calls to go by: until then every caller enters.
    max_expected_wait: float | None = Field(default=None, ge=1, le=86_400)
    # The key a waiting caller presses to be called back: they hang up and keep their
    # place; when their turn comes the switch calls their number and, once they answer,
    # offers them to the next free agent. None = no callback.
    callback_key: str | None = None
    # Tries to reach a caller who asked to be called back, ``callback_retry`` seconds
    # apart; each rings for ``agent_ring_timeout``.
    callback_attempts: int = Field(default=2, ge=1, le=10)
    callback_retry: float = Field(default=60, ge=5, le=3600)

    _ext = field_validator("extension", mode="before")(lambda cls, v: _extension(v))

    @field_validator("exit_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise ValueError("must be a table of key = extension")
        keys = {}
        for key, target in value.items():
            if not isinstance(key, str) or len(key) != 1 or key not in "0123456789*#":
                raise ValueError(f"{key!r} is not a key (0-9, * or #)")
            keys[key] = _extension(target)
        return keys

    @field_validator("callback_key", mode="before")
    @classmethod
    def _callback_key(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) != 1 or value not in "0123456789*#":
            raise ValueError(f"{value!r} is not a key (0-9, * or #)")
        return value

    @field_validator("forward_to", "unavailable_to", mode="before")
    @classmethod
    def _target(cls, value: Any) -> str | None:
        return None if value is None else _extension(value)

    @model_validator(mode="after")
    def _consistent(self) -> CallQueue:
        if self.if_unanswered is not IfUnanswered.STAY:
            if self.ring_timeout is None:
                raise ValueError(f"if_unanswered {self.if_unanswered.value} needs ring_timeout")
            if self.forward_to is None:
                raise ValueError(f"if_unanswered {self.if_unanswered.value} needs forward_to")
        if self.callback_key is not None and self.callback_key in self.exit_keys:
            raise ValueError(f"callback_key {self.callback_key} is an exit key too")
        seen: set[str] = set()
        for agent in self.agents:
            if agent.auto_answer and self.strategy is Strategy.RING_ALL:
                raise ValueError(
                    f"agent {agent.extension}: auto_answer would make every phone of a "
                    "ring all queue answer at once"
                )
            if agent.extension in seen:
                raise ValueError(f"agent {agent.extension} is listed twice")
            seen.add(agent.extension)
        return self

    def agent(self, extension: str) -> QueueAgent | None:
        return next((a for a in self.agents if a.extension == extension), None)

    def wrap_up_of(self, extension: str) -> float:
        agent = self.agent(extension)
        if agent is not None and agent.wrap_up is not None:
            return agent.wrap_up
        return self.wrap_up


def queue_extensions(raw: Any) -> set[str]:
    """The extensions of a tenant's raw ``queues`` list (before validation), for routing."""
    found: set[str] = set()
    if not isinstance(raw, list | tuple):
        return found
    for entry in raw:
        value = entry.extension if isinstance(entry, CallQueue) else None
        if isinstance(entry, dict):
            value = entry.get("extension")
        try:
            found.add(_extension(value))
        except ValueError:
            continue  # the queue's own validation names the problem
    return found


def route_queues(data: Any) -> Any:
    """A tenant's raw data with its queues' extensions added to ``routing.queues`` (a
    queue's extension is a routing destination without listing it there too)."""
    if not isinstance(data, dict):
        return data
    extensions = queue_extensions(data.get("queues"))
    if not extensions:
        return data
    return add_routable(data, "queues", extensions)


def check_queues(
    queues: Sequence[CallQueue], users: set[str], taken: dict[str, str]
) -> list[tuple[Loc, str]]:
    """Problems of a tenant's queues: names and extensions unique, extensions not used by
    users or other services (`taken`: extension -> what), agents and targets are users or
    other known extensions."""
    items: list[tuple[Loc, str]] = []
    names: set[str] = set()
    exts: set[str] = set()
    for i, queue in enumerate(queues):
        if queue.name in names:
            items.append((("queues", i, "name"), f"duplicate queue name {queue.name!r}"))
        names.add(queue.name)
        if queue.extension in exts:
            items.append((("queues", i, "extension"), f"duplicate extension {queue.extension}"))
        exts.add(queue.extension)
        if queue.extension in users or queue.extension in taken:
            what = "a user" if queue.extension in users else taken[queue.extension]
            items.append((("queues", i, "extension"), f"{queue.extension} is already {what}"))
        for j, agent in enumerate(queue.agents):
            if agent.extension not in users:
                items.append(
                    (("queues", i, "agents", j, "extension"), f"{agent.extension} is not a user")
                )
    known = users | exts | set(taken)
    for i, queue in enumerate(queues):
        for name in ("forward_to", "unavailable_to"):
            target = getattr(queue, name)
            if target is not None and target not in known:
                items.append((("queues", i, name), f"{target} is no extension of the tenant"))
        for key, target in queue.exit_keys.items():
            if target not in known:
                items.append(
                    (("queues", i, "exit_keys", key), f"{target} is no extension of the tenant")
                )
    return items
