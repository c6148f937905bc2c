"""Ring groups of a tenant: an extension that rings several members, then a final destination.

Names follow the hosted-PBX guides and Kazoo's ring groups: ``strategy`` ``simultaneous``
rings every member at once (each after its own ``delay``, for its own ``timeout``);
``sequence`` rings one member after another in the listed order, each for its ``timeout``
after waiting its ``delay``. A member is a user of the tenant (all their registered devices
ring) or an outside number (E.164, through the outbound route). ``skip_busy`` leaves out
users already on a call; ``caller_id_prefix`` is put before the caller's name on the members'
phones, so they can tell a group call from a direct one; ``final`` is where the call goes when
nobody answered (any forward destination: voicemail, a user, a queue, an outside number...),
else the caller gets 480. ``announcement`` (a prompt of the tenant's library) is played to
the caller before the members ring, and ``ringback`` ``music`` plays the tenant's music on
hold instead of a ringing tone while they ring: either way the switch answers the caller
first (the ring-group application) and connects it to the members.

Routing (``routing.engine``) turns a ring group into ring nodes of the callflow tree: the
existing executor rings it. Cross checks with the rest of the tenant are done by
`check_ring_groups`, which ``TenantRouting`` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.answering import Destination
from config.locations import Loc
from config.numbers import Extension, to_e164

__all__ = [
    "GroupAudio",
    "MemberKind",
    "RingGroup",
    "RingGroupMember",
    "RingStrategy",
    "check_ring_groups",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class RingStrategy(StrEnum):
    """How a ring group rings its members."""

    SIMULTANEOUS = "simultaneous"  # all at once (each after its delay); the first to answer
    SEQUENCE = "sequence"  # one after another, in the listed order


class GroupAudio(StrEnum):
    """What a ring group's caller hears while the members ring."""

    RINGBACK = "ringback"  # a ringing tone (the phones' own 180, unless announced first)
    MUSIC = "music"  # the tenant's music on hold


class MemberKind(StrEnum):
    """What a member is."""

    USER = "user"  # a user's extension: their registered devices ring
    NUMBER = "number"  # an outside number, through the outbound route


class RingGroupMember(BaseModel):
    """One member of a ring group."""

    model_config = _FROZEN
    kind: MemberKind = MemberKind.USER
    target: str = Field(min_length=1, max_length=64)
    # Seconds before this member starts ringing (simultaneous: from the start of the group;
    # sequence: from the moment the previous member gave up).
    delay: int = Field(default=0, ge=0, le=300)
    timeout: int = Field(default=20, ge=1, le=600)  # seconds this member rings

    @field_validator("target", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> RingGroupMember:
        if self.kind is MemberKind.NUMBER:
            object.__setattr__(self, "target", to_e164(self.target))
        elif not (self.target.isascii() and self.target.isdigit() and 2 <= len(self.target) <= 8):
            raise ValueError("a user member's target must be an extension (2 to 8 digits)")
        return self


class RingGroup(BaseModel):
    """One ring group as an admin configures it."""

    model_config = _FROZEN
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    extension: Extension
    strategy: RingStrategy = RingStrategy.SIMULTANEOUS
    members: tuple[RingGroupMember, ...] = Field(min_length=1, max_length=64)
    skip_busy: bool = True  # users already on a call are not rung
    caller_id_prefix: str = Field(default="", max_length=32)
    final: Destination | None = None  # nobody answered: here (None: the caller gets 480)
    # A prompt of the tenant's library played to the caller before any member rings ("" none).
    announcement: str = Field(default="", max_length=64, pattern=r"^([a-z0-9][a-z0-9_.-]*)?$")
    ringback: GroupAudio = GroupAudio.RINGBACK  # what the caller hears while members ring

    @model_validator(mode="after")
    def _consistent(self) -> RingGroup:
        seen: set[tuple[MemberKind, str]] = set()
        for member in self.members:
            key = (member.kind, member.target)
            if key in seen:
                raise ValueError(f"member {member.target} is listed twice")
            seen.add(key)
        return self

    def answered_first(self) -> bool:
        """Whether the switch answers the caller itself (for the announcement or the music)
        before the members ring: the ring-group application (``softswitch.apps.ringgroup``)."""
        return bool(self.announcement) or self.ringback is GroupAudio.MUSIC

    def ring_time(self) -> int:
        """Seconds the whole group rings: simultaneous, until the last member's timeout;
        sequence, the sum of every member's delay and timeout."""
        if self.strategy is RingStrategy.SIMULTANEOUS:
            return max(m.delay + m.timeout for m in self.members)
        return sum(m.delay + m.timeout for m in self.members)


def check_ring_groups(
    groups: Sequence[RingGroup],
    users: Iterable[str],
    taken: dict[str, str],
    destination_problem: Callable[[Destination], str | None],
) -> list[tuple[Loc, str]]:
    """Problems of a tenant's ring groups: names and extensions unique, extensions not used
    by users or services (``taken``: extension -> what), user members are users, final
    destinations exist (``destination_problem`` says why one does not)."""
    users = set(users)
    items: list[tuple[Loc, str]] = []
    names: set[str] = set()
    exts: set[str] = set()
    for i, group in enumerate(groups):
        if group.name in names:
            items.append((("ring_groups", i, "name"), f"duplicate ring group {group.name!r}"))
        names.add(group.name)
        ext = group.extension
        if ext in exts:
            items.append((("ring_groups", i, "extension"), f"duplicate extension {ext}"))
        exts.add(ext)
        if ext in users or ext in taken:
            what = "a user" if ext in users else taken[ext]
            items.append((("ring_groups", i, "extension"), f"{ext} is already {what}"))
        for j, member in enumerate(group.members):
            if member.kind is MemberKind.USER and member.target not in users:
                items.append(
                    (("ring_groups", i, "members", j, "target"), f"{member.target} is not a user")
                )
        if group.final is not None:
            problem = destination_problem(group.final)
            if problem:
                items.append((("ring_groups", i, "final", "target"), problem))
    return items
