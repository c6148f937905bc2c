"""The callflow tree: what a call should do, as a small immutable tree of nodes.

Three kinds of node:

- ``Ring`` rings its targets (users' devices, numbers via the outbound route) in parallel;
  each leg may start after a delay and have its own timeout, the node as a whole a ring
  time. A chain of ring nodes is sequential hunting.
- ``Application`` hands the call to something that answers by itself (a conference, live-call
  monitoring, and voicemail, a queue, an auto attendant, fax as their modules arrive), or,
  ``HANG_UP``, ends it with a SIP status (the cause).
- ``Branches`` hang under a node, keyed by how it ended: busy, no answer, unreachable,
  offline (the "unavailable" of the forwarding rules), rejected with a given SIP status (a
  6xx decline, an application refusing the call), and ``otherwise`` for any outcome without
  its own branch (but a 6xx decline: it follows only a branch for its own status, RFC 3261
  16.7). An outcome with no branch ends the call with the outcome's status.
  Answered ends the callflow: the call is bridged, or the application runs to the end.

Routing builds the tree (``routing.engine``); ``softswitch.calls.executor`` runs it and never
decides routing itself. Nodes are frozen and built bottom-up, so a tree cannot contain a
cycle; ``Callflow.walk`` still bounds its traversal. The callflow also records the decision
path that produced it, for ``route explain``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class TargetKind(StrEnum):
    """What a ring leg dials, or which application an application node runs."""

    USER_DEVICES = "user_devices"  # the registered devices of ``ref`` (rules already applied)
    EXTERNAL = "external"  # an E.164 number via the outbound route
    EMERGENCY = "emergency"  # an emergency number as dialled, via the emergency route
    VOICEMAIL = "voicemail"  # the mailbox of extension ``ref``
    QUEUE = "queue"
    AUTO_ATTENDANT = "auto_attendant"
    CONFERENCE = "conference"
    MONITOR = "monitor"  # listen to the live call of extension ``ref``, in ``mode``
    VOICEMAIL_INBOX = "voicemail_inbox"  # the inbox of mailbox ``ref`` (empty: asked for)
    QUEUE_AGENT = "queue_agent"  # the calling agent sets their queue status to ``ref``
    FAX = "fax"
    HANG_UP = "hang_up"  # end the call with ``status``/``reason`` (the cause)
    PARK = "park"  # park in orbit ``ref`` or retrieve from it (the park code: first free)
    PICKUP = "pickup"  # take the call ringing extension ``ref`` ("group": the picker's groups)
    RING_GROUP = "ring_group"  # ring group ``ref``, answered first (announcement, music)
    PROMPT_RECORD = "prompt_record"  # record prompt ``ref`` by phone (empty: asked for)


class DiversionReason(StrEnum):
    """Why a user's call went on to somewhere else (the reasons of RFC 5806 / Q.732)."""

    UNCONDITIONAL = "unconditional"  # forward always, DID and disaster forwards, sim-ring legs
    BUSY = "user-busy"
    NO_ANSWER = "no-answer"
    UNAVAILABLE = "unavailable"  # no registered device
    DO_NOT_DISTURB = "do-not-disturb"


#: How a MONITOR target joins the agent's call: the supervisor hears both parties
#: (listen), is heard by the agent alone (whisper), or by both (barge).
MONITOR_MODES = ("listen", "whisper", "barge")

#: Kinds whose application may ask the caller what it acts on (an empty ``ref``).
_ASKED_FOR = frozenset({TargetKind.FAX, TargetKind.VOICEMAIL_INBOX, TargetKind.PROMPT_RECORD})

#: Application kinds no module serves yet: the caller hears 480 with this reason phrase
#: (softswitch.calls.registry), and ``route explain`` says so.
NOT_SERVED: dict[TargetKind, str] = {TargetKind.FAX: "Fax Not Available"}

#: Kinds that ring (legs of a Ring node).
RINGING_KINDS = frozenset({TargetKind.USER_DEVICES, TargetKind.EXTERNAL, TargetKind.EMERGENCY})

#: Kinds whose legs leave through a trunk.
OFFNET_KINDS = frozenset({TargetKind.EXTERNAL, TargetKind.EMERGENCY})

#: Kinds of application node: the call is answered (or, HANG_UP, ended) without ringing.
APPLICATION_KINDS = frozenset(TargetKind) - RINGING_KINDS


class Outcome(StrEnum):
    """How a node ended."""

    ANSWERED = "answered"  # a leg won or the application took the call: the callflow ends
    BUSY = "busy"  # a leg answered 486/600 (the user pressed reject)
    NO_ANSWER = "no_answer"  # the ring time ran out
    UNREACHABLE = "unreachable"  # every leg failed (timeouts, 5xx, transport errors)
    OFFLINE = "offline"  # no leg had a registered contact when the node started
    REJECTED = "rejected"  # a 6xx decline, or the application refused the call (its status)

    @property
    def status(self) -> int:
        """The SIP status the caller gets when no branch handles a ring node's outcome
        (busy, no answer, unreachable, offline; a rejection carries its own)."""
        status = _OUTCOME_STATUS.get(self)
        if status is None:
            raise ValueError(f"{self.value} has no status of its own")
        return status


_OUTCOME_STATUS = {
    Outcome.BUSY: 486,
    Outcome.NO_ANSWER: 480,
    Outcome.UNREACHABLE: 480,
    Outcome.OFFLINE: 480,
}


@dataclass(frozen=True, slots=True)
class Target:
    """One leg of a Ring node, or what an Application node serves.

    ``delay`` and ``timeout`` are seconds from the start of the ring node (``timeout`` None =
    the node's). ``answer_confirmation``: the answerer must press 1 before the leg wins
    (off-net legs, so a mobile's voicemail cannot take the call). ``screening``: the caller
    records a name that the callee hears and accepts. ``auto_answer``: the INVITE asks the
    phone to answer by itself (a queue agent's setting). ``all_devices`` False rings only the
    user's main device. ``status``/``reason``: the cause of a HANG_UP. ``mode``: how a MONITOR
    joins the agent's call (listen, whisper or barge). ``diverted_by`` lists
    the extensions (or numbers) that forwarded the call here, oldest first, and
    ``diversion_reasons`` why each did (empty = all unconditional), for Diversion /
    History-Info.
    """

    kind: TargetKind
    ref: str = ""
    delay: int = 0
    timeout: int | None = None
    answer_confirmation: bool = False
    screening: bool = False
    all_devices: bool = True
    auto_answer: bool = False
    status: int = 0
    reason: str = ""
    diverted_by: tuple[str, ...] = ()
    diversion_reasons: tuple[DiversionReason, ...] = ()
    mode: str = ""

    def __post_init__(self) -> None:
        if self.kind is TargetKind.HANG_UP:
            if not 400 <= self.status <= 699:
                raise ValueError(f"hang up needs a 4xx-6xx status, got {self.status}")
        elif self.kind is TargetKind.MONITOR and self.mode not in MONITOR_MODES:
            raise ValueError(f"monitor mode must be one of {', '.join(MONITOR_MODES)}")
        elif not self.ref and self.kind not in _ASKED_FOR:
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
        if self.kind is TargetKind.HANG_UP:
            return f"hang up {self.status} {self.reason}".rstrip()
        text = f"{self.kind.value} {self.ref}".rstrip()
        if self.kind is TargetKind.USER_DEVICES and not self.all_devices:
            text += " (main device)"
        extras = [self.mode] if self.mode else []
        if self.delay:
            extras.append(f"after {self.delay}s")
        if self.timeout is not None:
            extras.append(f"for {self.timeout}s")
        if self.answer_confirmation:
            extras.append("press 1 to accept")
        if self.screening:
            extras.append("screened")
        if self.auto_answer:
            extras.append("auto answer")
        if self.diverted_by:
            extras.append("forwarded by " + ">".join(self.diverted_by))
        return text + (f" [{', '.join(extras)}]" if extras else "")


@dataclass(frozen=True, slots=True)
class Branches:
    """Where the call goes after a node, by outcome (see the module docstring).

    ``on_rejected`` pairs a SIP status with its branch; ``otherwise`` takes every outcome
    (answered aside) that has no branch of its own. None everywhere: each outcome ends the
    call with its status.
    """

    on_busy: Node | None = None
    on_no_answer: Node | None = None
    on_unreachable: Node | None = None
    on_offline: Node | None = None
    on_rejected: tuple[tuple[int, Node], ...] = ()
    otherwise: Node | None = None

    def __post_init__(self) -> None:
        statuses = [status for status, _ in self.on_rejected]
        for status in statuses:
            if not 300 <= status <= 699:
                raise ValueError(f"a rejected branch needs a 3xx-6xx status, got {status}")
        if len(set(statuses)) != len(statuses):
            raise ValueError("one rejected branch per status")

    def get(self, outcome: Outcome, status: int = 0) -> Node | None:
        """The branch for ``outcome`` (REJECTED: with SIP ``status``), else ``otherwise``."""
        if outcome is Outcome.ANSWERED:
            return None
        if outcome is Outcome.REJECTED:
            branch = self.rejected(status)
            return branch if branch is not None else self.otherwise
        node: Node | None = getattr(self, _BRANCH_ATTR[outcome])
        return node if node is not None else self.otherwise

    def rejected(self, status: int) -> Node | None:
        """The branch for exactly a rejection with ``status`` (``otherwise`` not included)."""
        for rejected, branch in self.on_rejected:
            if rejected == status:
                return branch
        return None

    def items(self) -> Iterator[tuple[str, Node]]:
        """(what leads there, node) for each distinct branch, outcomes sharing one node named
        together ("no answer, unreachable, offline")."""
        named: list[tuple[list[str], Node]] = []
        for outcome, attr in _BRANCH_ATTR.items():
            node = getattr(self, attr)
            if node is None:
                continue
            for names, seen in named:
                if seen is node:
                    names.append(_OUTCOME_TEXT[outcome])
                    break
            else:
                named.append(([_OUTCOME_TEXT[outcome]], node))
        for status, node in self.on_rejected:
            named.append(([f"rejected {status}"], node))
        if self.otherwise is not None:
            named.append((["anything else"], self.otherwise))
        for names, node in named:
            yield ", ".join(names), node

    def __bool__(self) -> bool:
        return any(True for _ in self.items())


_BRANCH_ATTR = {
    Outcome.BUSY: "on_busy",
    Outcome.NO_ANSWER: "on_no_answer",
    Outcome.UNREACHABLE: "on_unreachable",
    Outcome.OFFLINE: "on_offline",
}

_OUTCOME_TEXT = {outcome: outcome.value.replace("_", " ") for outcome in Outcome}

NO_BRANCHES = Branches()


@dataclass(frozen=True, slots=True)
class Ring:
    """Ring ``targets`` in parallel for up to ``timeout`` seconds (None = unlimited)."""

    targets: tuple[Target, ...]
    timeout: int | None = None
    branches: Branches = NO_BRANCHES
    label: str = ""

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("a ring node needs at least one target")
        for target in self.targets:
            if target.kind not in RINGING_KINDS:
                raise ValueError(f"{target.kind.value} does not ring; use an Application node")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("ring node timeout must be > 0")


@dataclass(frozen=True, slots=True)
class Application:
    """A destination that answers by itself, or (HANG_UP) ends the call with a cause.

    ``branches`` are taken when the application refuses the call (rejected with its status).
    """

    target: Target
    label: str = ""
    branches: Branches = NO_BRANCHES

    def __post_init__(self) -> None:
        if self.target.kind in RINGING_KINDS:
            raise ValueError(f"{self.target.kind.value} rings; put it in a Ring node")
        if self.target.kind is TargetKind.HANG_UP and self.branches:
            raise ValueError("hang up ends the call: it has no branches")


Node = Ring | Application


class Decision(NamedTuple):
    """One step of the decision path: ``stage`` (disaster, did, block, rule, ...) and text."""

    stage: str
    detail: str

    def __str__(self) -> str:
        return f"{self.stage}: {self.detail}"


#: Bound on traversal; a callflow from ``plan_call`` is far smaller.
MAX_CALLFLOW_NODES = 10_000


@dataclass(frozen=True, slots=True)
class Callflow:
    """The routing decision for one call: a callflow tree plus how it was reached.

    ``caller_id_prefix`` is prepended to the caller's display name (from the dialled DID).
    """

    root: Node
    caller_id_prefix: str = ""
    decisions: tuple[Decision, ...] = field(default=())

    def walk(self) -> Iterator[tuple[int, str, Node]]:
        """Depth-first (depth, the branch that led here or "", node); bounded by
        MAX_CALLFLOW_NODES. A node several outcomes share is visited once under them."""
        stack: list[tuple[int, str, Node]] = [(0, "", self.root)]
        seen = 0
        while stack:
            depth, branch, node = stack.pop()
            seen += 1
            if seen > MAX_CALLFLOW_NODES:
                raise ValueError("callflow too large")
            yield depth, branch, node
            children = list(node.branches.items())
            for child_branch, child in reversed(children):
                stack.append((depth + 1, child_branch, child))

    def targets(self) -> Iterator[Target]:
        """Every target anywhere in the tree."""
        for _, _, node in self.walk():
            if isinstance(node, Ring):
                yield from node.targets
            else:
                yield node.target

    @property
    def depth(self) -> int:
        return max(d for d, _, _ in self.walk())

    def describe(self) -> list[str]:
        """The tree as indented lines, for people."""
        return [
            "  " * depth + (f"on {branch}: " if branch else "") + describe_node(node)
            for depth, branch, node in self.walk()
        ]


def describe_node(node: Node) -> str:
    """One node on one line (its branches not included)."""
    label = f" ({node.label})" if node.label else ""
    if isinstance(node, Ring):
        ring = "unlimited" if node.timeout is None else f"{node.timeout}s"
        legs = "; ".join(t.describe() for t in node.targets)
        return f"ring {ring}: {legs}{label}"
    return f"{node.target.describe()}{label}"
