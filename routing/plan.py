"""The routing plan: what a call should do, as a small immutable tree.

A plan is a tree of nodes. A ``RingGroup`` rings its targets in parallel (each leg may start
after a delay and have its own timeout); when the whole group fails the call follows the
fallback for that outcome (busy / no answer / unreachable / offline) -- a chain of fallbacks
is sequential hunting. A ``Final`` node hands the call to something that answers by itself
(voicemail, a queue, an auto attendant, a conference, fax) or rejects it with a status.

Nodes are frozen and built bottom-up, so a plan cannot contain a cycle; ``RoutingPlan.walk``
still bounds its traversal. The plan also records the decision path that produced it, for
``route explain``. The call layer executes plans; it never decides routing itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class TargetKind(StrEnum):
    """What a leg or final destination is."""

    USER_DEVICES = "user_devices"  # the registered devices of ``ref`` (rules already applied)
    EXTENSION = "extension"  # ``ref``'s answering rules still to apply (the executor re-plans)
    EXTERNAL = "external"  # an E.164 number via the outbound route
    VOICEMAIL = "voicemail"  # the mailbox of extension ``ref``
    QUEUE = "queue"
    AUTO_ATTENDANT = "auto_attendant"
    CONFERENCE = "conference"
    FAX = "fax"
    REJECT = "reject"  # answer ``status``/``reason``; ends the call


class DiversionReason(StrEnum):
    """Why a user's call went on to somewhere else (the reasons of RFC 5806 / Q.732)."""

    UNCONDITIONAL = "unconditional"  # forward always, DID and disaster forwards, sim-ring legs
    BUSY = "user-busy"
    NO_ANSWER = "no-answer"
    UNAVAILABLE = "unavailable"  # no registered device
    DO_NOT_DISTURB = "do-not-disturb"


#: Kinds that ring (legs of a RingGroup); the others answer by themselves (Final).
RINGING_KINDS = frozenset({TargetKind.USER_DEVICES, TargetKind.EXTENSION, TargetKind.EXTERNAL})


class Outcome(StrEnum):
    """How a ring group can fail."""

    BUSY = "busy"  # a leg answered 486/600 (the user pressed reject)
    NO_ANSWER = "no_answer"  # the group's ring time ran out
    UNREACHABLE = "unreachable"  # every leg failed (timeouts, 5xx, transport errors)
    OFFLINE = "offline"  # no leg had a registered contact when the group started

    @property
    def status(self) -> int:
        """The SIP status the caller gets when no fallback handles this outcome."""
        return _OUTCOME_STATUS[self]


_OUTCOME_STATUS = {
    Outcome.BUSY: 486,
    Outcome.NO_ANSWER: 480,
    Outcome.UNREACHABLE: 480,
    Outcome.OFFLINE: 480,
}


@dataclass(frozen=True, slots=True)
class Target:
    """One leg (in a RingGroup) or one final destination.

    ``delay`` and ``timeout`` are seconds from the start of the group (``timeout`` None = the
    group's). ``answer_confirmation``: the answerer must press 1 before the leg wins (off-net
    legs, so a mobile's voicemail cannot take the call). ``screening``: the caller records a
    name that the callee hears and accepts. ``all_devices`` False rings only the user's main
    device. ``diverted_by`` lists the extensions (or numbers) that forwarded the call here,
    oldest first, and ``diversion_reasons`` why each did (empty = all unconditional), for
    Diversion / History-Info.
    """

    kind: TargetKind
    ref: str = ""
    delay: int = 0
    timeout: int | None = None
    answer_confirmation: bool = False
    screening: bool = False
    all_devices: bool = True
    status: int = 0
    reason: str = ""
    diverted_by: tuple[str, ...] = ()
    diversion_reasons: tuple[DiversionReason, ...] = ()

    def __post_init__(self) -> None:
        if self.kind is TargetKind.REJECT:
            if not 400 <= self.status <= 699:
                raise ValueError(f"reject needs a 4xx-6xx status, got {self.status}")
        elif not self.ref and self.kind is not TargetKind.FAX:
            raise ValueError(f"{self.kind.value} target needs a ref")
        if self.delay < 0 or (self.timeout is not None and self.timeout <= 0):
            raise ValueError("delay must be >= 0 and timeout > 0")
        if self.diversion_reasons and len(self.diversion_reasons) != len(self.diverted_by):
            raise ValueError("diversion_reasons must match diverted_by, one reason each")

    def diversions(self) -> tuple[tuple[str, DiversionReason], ...]:
        """(who forwarded, why) for each forward, oldest first."""
        reasons = self.diversion_reasons or (DiversionReason.UNCONDITIONAL,) * len(self.diverted_by)
        return tuple(zip(self.diverted_by, reasons, strict=True))

    def describe(self) -> str:
        if self.kind is TargetKind.REJECT:
            return f"reject {self.status} {self.reason}".rstrip()
        text = f"{self.kind.value} {self.ref}".rstrip()
        if self.kind is TargetKind.USER_DEVICES and not self.all_devices:
            text += " (main device)"
        extras = []
        if self.delay:
            extras.append(f"after {self.delay}s")
        if self.timeout is not None:
            extras.append(f"for {self.timeout}s")
        if self.answer_confirmation:
            extras.append("press 1 to accept")
        if self.screening:
            extras.append("screened")
        if self.diverted_by:
            extras.append("forwarded by " + ">".join(self.diverted_by))
        return text + (f" [{', '.join(extras)}]" if extras else "")


@dataclass(frozen=True, slots=True)
class Final:
    """A destination that answers (or rejects) by itself; the end of a branch."""

    target: Target
    label: str = ""

    def __post_init__(self) -> None:
        if self.target.kind in RINGING_KINDS:
            raise ValueError(f"{self.target.kind.value} rings; put it in a RingGroup")


@dataclass(frozen=True, slots=True)
class Fallbacks:
    """Where the call goes when a ring group fails; None = answer the outcome's status."""

    on_busy: Node | None = None
    on_no_answer: Node | None = None
    on_unreachable: Node | None = None
    on_offline: Node | None = None

    def get(self, outcome: Outcome) -> Node | None:
        return getattr(self, _FALLBACK_ATTR[outcome])

    def items(self) -> Iterator[tuple[Outcome, Node]]:
        for outcome, attr in _FALLBACK_ATTR.items():
            node = getattr(self, attr)
            if node is not None:
                yield outcome, node


_FALLBACK_ATTR = {
    Outcome.BUSY: "on_busy",
    Outcome.NO_ANSWER: "on_no_answer",
    Outcome.UNREACHABLE: "on_unreachable",
    Outcome.OFFLINE: "on_offline",
}

NO_FALLBACKS = Fallbacks()


@dataclass(frozen=True, slots=True)
class RingGroup:
    """Ring ``targets`` in parallel for up to ``timeout`` seconds (None = unlimited)."""

    targets: tuple[Target, ...]
    timeout: int | None = None
    fallbacks: Fallbacks = NO_FALLBACKS
    label: str = ""

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("a ring group needs at least one target")
        for target in self.targets:
            if target.kind not in RINGING_KINDS:
                raise ValueError(f"{target.kind.value} does not ring; use a Final node")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("ring group timeout must be > 0")


Node = RingGroup | Final


class Decision(NamedTuple):
    """One step of the decision path: ``stage`` (disaster, did, block, rule, ...) and text."""

    stage: str
    detail: str

    def __str__(self) -> str:
        return f"{self.stage}: {self.detail}"


#: Bound on traversal; a plan from ``plan_call`` is far smaller.
MAX_PLAN_NODES = 10_000


@dataclass(frozen=True, slots=True)
class RoutingPlan:
    """The routing decision for one call: a node tree plus how it was reached.

    ``caller_id_prefix`` is prepended to the caller's display name (from the dialled DID).
    """

    root: Node
    caller_id_prefix: str = ""
    decisions: tuple[Decision, ...] = field(default=())

    def walk(self) -> Iterator[tuple[int, Outcome | None, Node]]:
        """Depth-first (depth, outcome that led here, node); bounded by MAX_PLAN_NODES."""
        stack: list[tuple[int, Outcome | None, Node]] = [(0, None, self.root)]
        seen = 0
        while stack:
            depth, outcome, node = stack.pop()
            seen += 1
            if seen > MAX_PLAN_NODES:
                raise ValueError("routing plan too large")
            yield depth, outcome, node
            if isinstance(node, RingGroup):
                children = list(node.fallbacks.items())
                for child_outcome, child in reversed(children):
                    stack.append((depth + 1, child_outcome, child))

    def targets(self) -> Iterator[Target]:
        """Every target anywhere in the plan."""
        for _, _, node in self.walk():
            if isinstance(node, RingGroup):
                yield from node.targets
            else:
                yield node.target

    @property
    def depth(self) -> int:
        return max(d for d, _, _ in self.walk())

    def describe(self) -> list[str]:
        """The tree as indented lines, for people."""
        lines = []
        for depth, outcome, node in self.walk():
            pad = "  " * depth
            head = f"{pad}on {outcome.value}: " if outcome else pad
            label = f" ({node.label})" if node.label else ""
            if isinstance(node, RingGroup):
                ring = "unlimited" if node.timeout is None else f"{node.timeout}s"
                legs = "; ".join(t.describe() for t in node.targets)
                lines.append(f"{head}ring {ring}: {legs}{label}")
            else:
                lines.append(f"{head}{node.target.describe()}{label}")
        return lines
