"""``TenantRouting``: everything the routing engine needs to know about one tenant.

Meant to hang off the tenant model (``tenant.routing``). Users are keyed by extension. Cross
references (rule -> time frame, forward -> extension, DID -> destination) are checked here so
a bad configuration is refused with the field named, never half-applied.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.answering import Destination, ForwardKind, UserRouting
from config.numbers import BlockList, Did, DisasterPlan, Extension, Treatment
from config.timeframes import TimeFrame

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TenantRouting(BaseModel):
    """Routing configuration of a tenant.

    ``queues``, ``auto_attendants``, ``conferences`` and ``mailboxes`` (general voicemail
    boxes) name the extensions of those services so destinations can be checked.
    ``default_region`` reads national-format caller and dialled numbers.
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
    default_region: str = Field(default="US", min_length=2, max_length=2)
    max_forward_depth: int = Field(default=8, ge=1, le=32)

    @model_validator(mode="after")
    def _check(self) -> TenantRouting:
        problems = list(self.problems())
        if problems:
            raise ValueError("; ".join(problems))
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
        else:
            return None
        return None if ok else f"unknown {kind} destination {target!r}"

    def problems(self) -> Iterable[str]:
        """Every cross-reference problem, each naming where it is."""
        seen_frames: set[tuple[str | None, str]] = set()
        for frame in self.time_frames:
            key = (frame.owner, frame.name)
            if key in seen_frames:
                scope = "domain" if frame.owner is None else f"user {frame.owner}"
                yield f"time frame {frame.name!r} defined twice for {scope}"
            seen_frames.add(key)
            if frame.owner is not None and frame.owner not in self.users:
                yield f"time frame {frame.name!r}: owner {frame.owner!r} is not a user"
        for ext, user in self.users.items():
            rules = [*user.rules, user.default_rule]
            for i, rule in enumerate(rules, 1):
                where = f"user {ext} rule {i}" if rule.time_frame else f"user {ext} default rule"
                if rule.time_frame is not None and self.frame_for(ext, rule.time_frame) is None:
                    yield f"{where}: unknown time frame {rule.time_frame!r}"
                for cond, dest in rule.forward.destinations():
                    problem = self._dest_problem(dest)
                    if problem:
                        yield f"{where} forward {cond}: {problem}"
                if rule.simring:
                    for leg in rule.simring.extra:
                        if leg.kind == "extension" and leg.target not in self.users:
                            yield f"{where} simultaneous ring: unknown extension {leg.target!r}"
        numbers: set[str] = set()
        for did in self.dids:
            if did.number in numbers:
                yield f"DID {did.number} listed twice"
            numbers.add(did.number)
            problem = did_destination_problem(self, did)
            if problem:
                yield f"DID {did.number}: {problem}"
        names: set[str] = set()
        enabled: dict[str, str] = {}
        for plan in self.disaster_plans:
            if plan.name in names:
                yield f"disaster plan {plan.name!r} defined twice"
            names.add(plan.name)
            if plan.enabled:
                for entry in plan.numbers:
                    other = enabled.setdefault(entry.number, plan.name)
                    if other != plan.name:
                        yield (
                            f"{entry.number} is in enabled disaster plans {other!r} and "
                            f"{plan.name!r}"
                        )

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
}


def did_destination_problem(routing: TenantRouting, did: Did) -> str | None:
    """Why a DID's destination does not exist in ``routing`` (None if it does)."""
    kind = _TREATMENT_KIND.get(did.treatment)
    if kind is None:  # offnet numbers are validated by the model; fax is free text
        return None
    return routing.destination_problem(kind, did.destination)
