"""Answering rule models: what happens to a call for a user while a time frame is active."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from config.numbers import BlockList, Extension, to_e164

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: Ring times an admin may pick, in seconds (None = unlimited).
RING_TIMES: tuple[int, ...] = (
    *range(5, 91, 5),
    *range(120, 301, 30),
    1200,
)
_RING_TIME_SET = frozenset(RING_TIMES)


def _ring_time(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "unlimited"):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("ring time must be seconds or 'unlimited'")
    try:
        seconds = int(value)
    except ValueError:
        raise ValueError(f"ring time {value!r} is not a number of seconds") from None
    if seconds not in _RING_TIME_SET:
        raise ValueError(
            f"ring time {seconds}s not allowed: 5-90 s in 5 s steps, 90-300 s in 30 s steps, "
            "1200 s or unlimited"
        )
    return seconds


RingTime = Annotated[int | None, BeforeValidator(_ring_time)]


class ForwardKind(StrEnum):
    """Forward destination types."""

    USER = "user"  # that user's extension, following that user's answering rules
    PHONE = "phone"  # that user's devices, bypassing their answering rules
    VOICEMAIL = "voicemail"  # the voicemail box of an extension
    QUEUE = "queue"
    AUTO_ATTENDANT = "auto_attendant"
    CONFERENCE = "conference"
    OFFNET = "offnet"  # an outside (PSTN) number
    RING_GROUP = "ring_group"  # the members of a ring group (config.ringgroups)


class Destination(BaseModel):
    """A forward destination: an extension, or an E.164 number for ``offnet``."""

    model_config = _FROZEN
    kind: ForwardKind
    target: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _check(self) -> Destination:
        if self.kind is ForwardKind.OFFNET:
            object.__setattr__(self, "target", to_e164(self.target))
        elif self.target.startswith("+"):
            raise ValueError(f"{self.kind.value} destination must be an extension, not a number")
        return self


class DndMode(StrEnum):
    """Do-not-disturb sends every call to voicemail, or treats the user as busy."""

    VOICEMAIL = "voicemail"
    BUSY = "busy"


class Forwarding(BaseModel):
    """Call forwarding of one rule; ``always`` wins over everything else."""

    model_config = _FROZEN
    always: Destination | None = None
    on_active: Destination | None = None
    when_busy: Destination | None = None
    when_unanswered: Destination | None = None
    when_offline: Destination | None = None

    def destinations(self) -> list[tuple[str, Destination]]:
        """(condition, destination) for each condition that forwards."""
        return [(n, d) for n in _FORWARD_FIELDS if (d := getattr(self, n)) is not None]


_FORWARD_FIELDS = ("always", "on_active", "when_busy", "when_unanswered", "when_offline")


class SimRingLeg(BaseModel):
    """An extra simultaneous-ring destination, started ``delay`` seconds after the others."""

    model_config = _FROZEN
    kind: Literal["extension", "number"]
    target: str = Field(min_length=1, max_length=64)
    delay: int = Field(default=0, ge=0, le=300)

    @model_validator(mode="after")
    def _check(self) -> SimRingLeg:
        if self.kind == "number":
            object.__setattr__(self, "target", to_e164(self.target))
        elif self.target.startswith("+"):
            raise ValueError("an extension leg takes an extension; use kind 'number' for numbers")
        return self


class SimRing(BaseModel):
    """Simultaneous ring: which of the user's phones ring, plus extra destinations.

    ``answer_confirmation`` makes off-net legs ask the answerer to press 1, so a mobile's
    voicemail cannot win the call.
    """

    model_config = _FROZEN
    include_extension: bool = True
    ring_all_devices: bool = True
    extra: tuple[SimRingLeg, ...] = ()
    answer_confirmation: bool = False


class AnsweringRule(BaseModel):
    """One answering rule. ``time_frame`` None only for a user's default rule.

    ``simring`` None = "just ring the user's extension" (the main device only).
    """

    model_config = _FROZEN
    time_frame: str | None = None
    enabled: bool = True
    dnd: DndMode | None = None
    screening: bool = False
    forward: Forwarding = Forwarding()
    simring: SimRing | None = None


def _default_rule() -> AnsweringRule:
    return AnsweringRule(simring=SimRing())


class UserRouting(BaseModel):
    """A user's (or inbound routing user's) answering rules, ring time and lists.

    The active rule is the top-most enabled rule whose time frame is active; ``default_rule``
    applies when none is. ``voicemail`` says whether the user has a mailbox (the defined end of
    unanswered calls); ``ring_time`` None = unlimited.
    """

    model_config = _FROZEN
    name: str = Field(default="", max_length=120)
    rules: tuple[AnsweringRule, ...] = ()
    default_rule: AnsweringRule = Field(default_factory=_default_rule)
    ring_time: RingTime = 25
    voicemail: bool = True
    block: BlockList = BlockList()
    inbound_routing: bool = False

    @model_validator(mode="after")
    def _check(self) -> UserRouting:
        for i, rule in enumerate(self.rules, 1):
            if rule.time_frame is None:
                raise ValueError(f"rule {i}: an answering rule needs a time frame")
        if self.default_rule.time_frame is not None:
            raise ValueError("the default rule applies at all times; it takes no time frame")
        if not self.default_rule.enabled:
            raise ValueError("the default rule cannot be disabled")
        return self


__all__ = [
    "RING_TIMES",
    "AnsweringRule",
    "Destination",
    "DndMode",
    "Extension",
    "ForwardKind",
    "Forwarding",
    "RingTime",
    "SimRing",
    "SimRingLeg",
    "UserRouting",
]
