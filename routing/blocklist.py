"""Block and allow lists: may this caller reach this user (or tenant), and how.

Order: an allow entry (user or tenant) lets the call through untouched; then a blocked
number rejects (603 Decline); then anonymous blocking rejects (433 Anonymity Disallowed,
RFC 5079); then, for calls marked as spam, the spam treatment (user's, else tenant's).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from config.numbers import BlockList, SpamTreatment


class Screening(StrEnum):
    """The verdict on a caller."""

    RING = "ring"  # route normally
    REJECT = "reject"
    VOICEMAIL = "voicemail"  # straight to the callee's voicemail
    SCREEN = "screen"  # route normally with call screening


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Screening
    status: int = 0
    reason: str = ""


RING = Verdict(Screening.RING, reason="not on any list")


class CompiledList:
    """Exact entries in a set, prefix entries ("+1900*") in a tuple."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, entries: frozenset[str]) -> None:
        self.exact = frozenset(e for e in entries if not e.endswith("*"))
        self.prefixes = tuple(sorted(e[:-1] for e in entries if e.endswith("*")))

    def match(self, caller: str | None) -> str | None:
        """The entry that matches ``caller`` (None if none does)."""
        if caller is None:
            return None
        if caller in self.exact:
            return caller
        for prefix in self.prefixes:
            if caller.startswith(prefix):
                return prefix + "*"
        return None

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)


class CompiledBlockList:
    """A BlockList ready for matching; ``scope`` names it in explanations."""

    __slots__ = ("allowed", "block_anonymous", "blocked", "scope", "spam")

    def __init__(self, block: BlockList, scope: str) -> None:
        self.scope = scope
        self.blocked = CompiledList(block.blocked)
        self.allowed = CompiledList(block.allowed)
        self.block_anonymous = block.block_anonymous
        self.spam = block.spam


def screen_caller(
    caller: str | None,
    anonymous: bool,
    spam: bool,
    lists: tuple[CompiledBlockList, ...],
) -> Verdict:
    """Apply ``lists`` (most specific last, e.g. tenant then user) to a caller.

    ``caller`` is the caller's normalised number or extension (None when anonymous or
    unreadable).
    """
    for lst in lists:
        entry = lst.allowed.match(caller)
        if entry is not None:
            return Verdict(Screening.RING, reason=f"{entry} on the {lst.scope} allow list")
    for lst in lists:
        entry = lst.blocked.match(caller)
        if entry is not None:
            return Verdict(Screening.REJECT, 603, f"{entry} on the {lst.scope} block list")
    if anonymous:
        for lst in lists:
            if lst.block_anonymous:
                return Verdict(Screening.REJECT, 433, f"anonymous callers blocked ({lst.scope})")
    if spam:
        treatment = SpamTreatment.RING
        scope = "default"
        for lst in lists:  # the most specific list with a treatment wins
            if lst.spam is not None:
                treatment, scope = lst.spam, lst.scope
        why = f"marked as spam: {treatment.value} ({scope})"
        if treatment is SpamTreatment.DROP:
            return Verdict(Screening.REJECT, 603, why)
        if treatment is SpamTreatment.VOICEMAIL:
            return Verdict(Screening.VOICEMAIL, reason=why)
        if treatment is SpamTreatment.SCREEN:
            return Verdict(Screening.SCREEN, reason=why)
        return Verdict(Screening.RING, reason=why)
    return RING
