"""Call facts: everything about one call the routing engine may look at."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from types import MappingProxyType

_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CallFacts:
    """Who called what, when, and the state of the users involved.

    ``caller``: number or extension (None / "anonymous" when withheld). ``dialled``: an
    extension or a number. ``at``: aware datetime or epoch seconds. ``registered``: registered
    device count per extension (missing = 0). ``busy``: extensions already on a call.
    ``spam``: the call is marked as spam (e.g. a failed STIR/SHAKEN verification).
    ``from_trunk``: the call came from a carrier, so numbers outside the inventory are
    refused rather than dialled out.
    """

    caller: str | None
    dialled: str
    at: dt.datetime | float
    tenant: str = ""
    registered: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    busy: Set[str] = frozenset()
    spam: bool = False
    from_trunk: bool = False
