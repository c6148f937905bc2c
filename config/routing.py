"""``TenantRouting``: everything the routing engine needs to know about one tenant.

Meant to hang off the tenant model (``tenant.routing``). Users are keyed by extension. Cross
references (rule -> time frame, forward -> extension, DID -> destination) are checked here so
a bad configuration is refused with the field named, never half-applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from config.answering import AnsweringRule, Destination, ForwardKind, UserRouting
from config.conference import MonitorCodes
from config.locations import Loc, format_location
from config.numbers import BlockList, Did, DisasterPlan, Extension, Treatment
from config.ringgroups import RingGroup, check_ring_groups
from config.timeframes import TimeFrame

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: Numbers that are emergency calls in every tenant, whatever else it lists.
STANDARD_EMERGENCY_NUMBERS: frozenset[str] = frozenset({"911", "112", "999"})


class FeatureCode(BaseModel):
    """A code dialled from a user's phone that reaches an application, not a number."""

    model_config = _FROZEN
    kind: str  # the application node it makes (a routing TargetKind value)
    ref: str = ""  # what the application acts on
    own: bool = False  # it acts on the caller's own extension (ref ignored)


class TenantRouting(BaseModel):
    """Routing configuration of a tenant.

    ``queues``, ``auto_attendants``, ``conferences`` and ``mailboxes`` (general voicemail
    boxes) name the extensions of those services so destinations can be checked.
    ``default_region`` reads national-format caller and dialled numbers.
    ``monitor_codes`` are the tenant's live-call monitoring codes (``Tenant.monitor_codes``,
    copied here by the tenant's validation and left out of dumps): routing makes a monitor
    node of a call dialling one followed by an extension. ``feature_codes`` likewise hold
    the codes of the tenant's applications (the voicemail inbox, queue agents' status), each
    an application node of its own.
    ``ring_groups`` (config.ringgroups): extensions that ring several members; routing
    makes ring nodes of them.
    ``emergency_numbers``: dialled numbers that are emergency calls besides 911, 112 and
    999 (e.g. 933, 110, 17): routed to the emergency trunk before anything else.
    """

    model_config = _FROZEN
    time_frames: tuple[TimeFrame, ...] = ()
    users: dict[Extension, UserRouting] = Field(default_factory=dict)
    dids: tuple[Did, ...] = ()
    disaster_plans: tuple[DisasterPlan, ...] = ()
    block: BlockList = BlockList()
    queues: frozenset[Extension] = frozenset()
    auto_attendants: frozenset[Extension] = frozenset()
    conferences: frozenset[Extension] = frozenset()
    mailboxes: frozenset[Extension] = frozenset()
    monitor_codes: MonitorCodes = Field(default_factory=MonitorCodes, exclude=True)
    feature_codes: dict[str, FeatureCode] = Field(default_factory=dict, exclude=True)
    default_region: str = Field(default="US", min_length=2, max_length=2)
    max_forward_depth: int = Field(default=8, ge=1, le=32)
    emergency_numbers: frozenset[str] = frozenset()
    ring_groups: tuple[RingGroup, ...] = ()

    @field_validator("emergency_numbers", mode="before")
    @classmethod
    def _short_codes(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple | set | frozenset):
            raise ValueError('must be a list of numbers such as "933"')
        out = set()
        for item in value:
            text = str(item).strip()
            if not (text.isascii() and text.isdigit() and 2 <= len(text) <= 15):
                raise ValueError(f"{item!r} is not a dialled number (2 to 15 digits)")
            out.add(text)
        return frozenset(out)

    def emergency(self) -> frozenset[str]:
        """Every number that is an emergency call in this tenant."""
        return STANDARD_EMERGENCY_NUMBERS | self.emergency_numbers

    @model_validator(mode="after")
    def _check(self) -> TenantRouting:
        problems = list(self.located_problems())
        if problems:
            # The same multi-location error shape as config.models' validators, so the
            # loader names each field: tenants[0].routing.users.100.rules[2].time_frame.
            summary = "; ".join(f"{format_location(loc)}: {msg}" for loc, msg in problems)
            raise PydanticCustomError(
                "switch_config", "{summary}", {"summary": summary, "items": problems}
            )
        return self

    # -- lookups --------------------------------------------------------------------------

    def frame_for(self, extension: str, name: str) -> TimeFrame | None:
        """The frame a user's rule means by ``name``: the user's own, else the domain's."""
        domain = None
        for frame in self.time_frames:
            if frame.name == name:
                if frame.owner == extension:
                    return frame
                if frame.owner is None:
                    domain = frame
        return domain

    def extensions(self) -> frozenset[str]:
        """Every extension routing knows: users and services."""
        return frozenset(self.users).union(
            self.queues,
            self.auto_attendants,
            self.conferences,
            self.mailboxes,
            (g.extension for g in self.ring_groups),
        )

    def extension_kinds(self, extension: str) -> set[str]:
        kinds = set()
        if extension in self.users:
            kinds.add("user")
        for kind, pool in (
            ("queue", self.queues),
            ("auto_attendant", self.auto_attendants),
            ("conference", self.conferences),
            ("mailbox", self.mailboxes),
        ):
            if extension in pool:
                kinds.add(kind)
        if any(g.extension == extension for g in self.ring_groups):
            kinds.add("ring_group")
        return kinds

    def destination_problem(self, kind: str, target: str) -> str | None:
        """Why ``target`` is not a valid destination of ``kind`` (None if it is)."""
        if kind in (ForwardKind.USER, ForwardKind.PHONE, "user", "phone"):
            ok = target in self.users
        elif kind in (ForwardKind.VOICEMAIL, "voicemail"):
            user = self.users.get(target)
            ok = target in self.mailboxes or (user is not None and user.voicemail)
        elif kind in (ForwardKind.QUEUE, "queue"):
            ok = target in self.queues
        elif kind in (ForwardKind.AUTO_ATTENDANT, "auto_attendant"):
            ok = target in self.auto_attendants
        elif kind in (ForwardKind.CONFERENCE, "conference"):
            ok = target in self.conferences
        elif kind in (ForwardKind.RING_GROUP, "ring_group"):
            ok = any(g.extension == target for g in self.ring_groups)
        else:
            return None
        return None if ok else f"unknown {kind} destination {target!r}"

    def problems(self) -> Iterable[str]:
        """Every cross-reference problem as text, each naming where it is."""
        for loc, msg in self.located_problems():
            yield f"{format_location(loc)}: {msg}"

    def located_problems(self) -> Iterable[tuple[Loc, str]]:
        """Every cross-reference problem as (location relative to this model, message)."""
        seen_frames: dict[tuple[str | None, str], int] = {}
        for f, frame in enumerate(self.time_frames):
            key = (frame.owner, frame.name)
            if key in seen_frames:
                scope = "domain" if frame.owner is None else f"user {frame.owner}"
                yield (
                    ("time_frames", f, "name"),
                    f"time frame {frame.name!r} defined twice for {scope} "
                    f"(first at time_frames[{seen_frames[key]}])",
                )
            seen_frames.setdefault(key, f)
            if frame.owner is not None and frame.owner not in self.users:
                yield (
                    ("time_frames", f, "owner"),
                    f"time frame {frame.name!r}: owner {frame.owner!r} is not a user",
                )
        for ext, user in self.users.items():
            rules: list[tuple[Loc, AnsweringRule]] = [
                (("users", ext, "rules", i), rule) for i, rule in enumerate(user.rules)
            ]
            rules.append((("users", ext, "default_rule"), user.default_rule))
            for where, rule in rules:
                if rule.time_frame is not None and self.frame_for(ext, rule.time_frame) is None:
                    yield (*where, "time_frame"), f"unknown time frame {rule.time_frame!r}"
                for cond, dest in rule.forward.destinations():
                    problem = self._dest_problem(dest)
                    if problem:
                        yield (*where, "forward", cond, "target"), problem
                if rule.simring:
                    for i, leg in enumerate(rule.simring.extra):
                        if leg.kind == "extension" and leg.target not in self.users:
                            yield (
                                (*where, "simring", "extra", i, "target"),
                                f"simultaneous ring: unknown extension {leg.target!r}",
                            )
        numbers: dict[str, int] = {}
        for d, did in enumerate(self.dids):
            if did.number in numbers:
                yield (
                    ("dids", d, "number"),
                    f"DID {did.number} listed twice (first at dids[{numbers[did.number]}])",
                )
            numbers.setdefault(did.number, d)
            problem = did_destination_problem(self, did)
            if problem:
                yield ("dids", d, "destination"), f"DID {did.number}: {problem}"
        for number in sorted(self.emergency() & set(self.extensions())):
            yield (
                ("emergency_numbers",),
                f"{number} is an emergency number and cannot also be an extension",
            )
        names: set[str] = set()
        enabled: dict[str, str] = {}
        for p, plan in enumerate(self.disaster_plans):
            if plan.name in names:
                yield ("disaster_plans", p, "name"), f"disaster plan {plan.name!r} defined twice"
            names.add(plan.name)
            if plan.enabled:
                for n, entry in enumerate(plan.numbers):
                    other = enabled.setdefault(entry.number, plan.name)
                    if other != plan.name:
                        yield (
                            ("disaster_plans", p, "numbers", n, "number"),
                            f"{entry.number} is in enabled disaster plans {other!r} and "
                            f"{plan.name!r}",
                        )
        if self.ring_groups:
            taken = {e: "a queue" for e in self.queues}
            taken.update({e: "an auto attendant" for e in self.auto_attendants})
            taken.update({e: "a conference bridge" for e in self.conferences})
            taken.update({e: "a mailbox" for e in self.mailboxes})
            yield from check_ring_groups(self.ring_groups, self.users, taken, self._dest_problem)

    def _dest_problem(self, dest: Destination) -> str | None:
        if dest.kind is ForwardKind.OFFNET:
            return None
        return self.destination_problem(dest.kind.value, dest.target)


_TREATMENT_KIND = {
    Treatment.USER: "user",
    Treatment.QUEUE: "queue",
    Treatment.CONFERENCE: "conference",
    Treatment.VOICEMAIL: "voicemail",
    Treatment.AUTO_ATTENDANT: "auto_attendant",
    Treatment.RING_GROUP: "ring_group",
}


def did_destination_problem(routing: TenantRouting, did: Did) -> str | None:
    """Why a DID's destination does not exist in ``routing`` (None if it does)."""
    kind = _TREATMENT_KIND.get(did.treatment)
    if kind is None:  # offnet numbers are validated by the model; fax is free text
        return None
    return routing.destination_problem(kind, did.destination)
