"""Features whose entries are routing destinations without being listed under routing.

A conference bridge's extension, a queue's, an attendant's, a shared mailbox and the
feature codes route like a user's extension; a bridge's or attendant's direct number is a
DID sent to it. Each feature registers a step (`register`) that puts its entries into the
tenant's raw ``routing`` (a dict from a file or the API, or a `TenantRouting` already
validated) before `config.models.Tenant` validates it; `make_routable` runs them all.
Anything malformed is left as it is, for validation to name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from config.numbers import Did, NumberError, Treatment, to_e164
from config.routing import TenantRouting

__all__ = [
    "Step",
    "add_routable",
    "entry_targets",
    "make_routable",
    "register",
    "set_routing",
]

Step = Callable[[Any], Any]
"""A tenant's raw data in, the same with the feature's entries routable out."""

_STEPS: list[Step] = []
_SETS = list | tuple | set | frozenset


def register(step: Step) -> Step:
    """Run ``step`` in every tenant's validation (after the steps registered before)."""
    _STEPS.append(step)
    return step


def make_routable(data: Any) -> Any:
    """A tenant's raw data with every registered feature's entries routable."""
    for step in _STEPS:
        data = step(data)
    return data


def entry_targets(
    entries: Iterable[Any], model: type[BaseModel]
) -> tuple[set[str], dict[str, str]]:
    """The extensions of raw entries (dicts, or ``model`` instances) and their direct
    numbers (E.164 number -> extension); entries without a valid extension are skipped."""
    extensions: set[str] = set()
    dids: dict[str, str] = {}
    for entry in entries:
        raw = entry.model_dump() if isinstance(entry, model) else entry
        if not isinstance(raw, dict):
            continue  # the entry's own validation names the problem
        ext, did = raw.get("extension"), raw.get("did")
        if isinstance(ext, int) and not isinstance(ext, bool):
            ext = str(ext)
        if not (isinstance(ext, str) and ext.isascii() and ext.isdigit()):
            continue
        extensions.add(ext)
        if isinstance(did, str):
            with contextlib.suppress(NumberError):
                dids[to_e164(did)] = ext
    return extensions, dids


def add_routable(
    data: dict[str, Any],
    field: str,
    extensions: set[str],
    dids: Mapping[str, str] | None = None,
    treatment: Treatment | None = None,
    *,
    dids_first: bool = False,
) -> dict[str, Any]:
    """``data`` with ``extensions`` added to ``routing.<field>`` and each of ``dids`` (number
    -> extension) not listed yet added to ``routing.dids`` with ``treatment``: before the
    listed ones with ``dids_first``, else after them."""
    routing = data.get("routing")
    if routing is None:
        routing = {}
    added_dids = dict(dids or {})
    if isinstance(routing, TenantRouting):
        current = getattr(routing, field)
        update: dict[str, Any] = {field: current | extensions}
        if added_dids and treatment is not None:
            listed = {d.number for d in routing.dids}
            added = tuple(
                Did(number=n, treatment=treatment, destination=e)
                for n, e in added_dids.items()
                if n not in listed
            )
            update["dids"] = added + routing.dids if dids_first else routing.dids + added
        routing = routing.model_copy(update=update)
    elif isinstance(routing, dict):
        pool, routed = routing.get(field, ()), routing.get("dids", [])
        if not isinstance(pool, _SETS) or (
            treatment is not None and not isinstance(routed, list | tuple)
        ):
            return data  # routing's own validation names the problem
        routing = {**routing, field: sorted(set(pool) | extensions)}
        if added_dids and treatment is not None:
            listed = set()
            for d in routed:
                number = d.get("number") if isinstance(d, dict) else getattr(d, "number", None)
                if isinstance(number, str):
                    with contextlib.suppress(NumberError):
                        listed.add(to_e164(number))
            rows = [
                {"number": n, "treatment": treatment.value, "destination": e}
                for n, e in added_dids.items()
                if n not in listed
            ]
            routing["dids"] = [*rows, *routed] if dids_first else [*routed, *rows]
    else:
        return data
    return {**data, "routing": routing}


def set_routing(data: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """``data`` with ``routing.<field>`` set to ``value`` (codes dialled like extensions)."""
    routing = data.get("routing")
    if routing is None:
        routing = {}
    if isinstance(routing, TenantRouting):
        if getattr(routing, field) != value:
            routing = routing.model_copy(update={field: value})
    elif isinstance(routing, dict):
        routing = {**routing, field: value}
    return {**data, "routing": routing}
