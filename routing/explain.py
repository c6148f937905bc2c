"""``route explain``: the decision path of a call and the callflow tree it produced, for
"why did my phone not ring?".

Routing resolved everything it could from the facts (time, registrations, lists); what is
left are the outcomes of ringing, which only the call will know. Explain follows the tree
as if each ring node on the way ended with the outcome given for it (by default: nobody
answers), marks the branches taken with ``*`` and sums the path up in one line.
"""

from __future__ import annotations

from collections.abc import Sequence

from config.routing import TenantRouting
from routing.engine import CompiledRouting, plan_with_details
from routing.facts import CallFacts
from routing.plan import Node, Outcome, Ring, TargetKind, describe_node

#: Outcomes a what-if may assume for a ring node (answered ends the callflow; a rejection
#: depends on its status).
ASSUMABLE_OUTCOMES = (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.UNREACHABLE, Outcome.OFFLINE)


def explain(
    config: TenantRouting | CompiledRouting,
    facts: CallFacts,
    outcomes: Sequence[Outcome] = (),
) -> list[str]:
    """Lines saying which disaster plan, DID treatment and rule applied and why, then the
    callflow tree with the branches taken when the ring nodes on the way end with
    ``outcomes`` in turn (then: no answer), and that path in one line.

    A call time that cannot be read gives a single line saying so instead of raising.
    """
    for outcome in outcomes:
        if outcome not in ASSUMABLE_OUTCOMES:
            raise ValueError(f"cannot assume a ring node ends {outcome.value!r}")
    try:
        callflow = plan_with_details(config, facts)
    except ValueError as exc:
        return [f"error: {exc}"]
    lines = [str(d) for d in callflow.decisions]
    if callflow.caller_id_prefix:
        lines.append(f"caller-ID prefix: {callflow.caller_id_prefix}")
    assumed = ", then ".join(o.value.replace("_", " ") for o in outcomes)
    assumed = f"ring nodes end {assumed}, then no answer" if assumed else "nobody answers"
    lines.append(f"callflow (* the branches taken when {assumed}):")
    path: list[str] = []
    _describe(callflow.root, 1, "", list(outcomes), path, lines)
    lines.append("path: " + " -> ".join(path))
    return lines


def _describe(
    node: Node,
    depth: int,
    branch: str,
    outcomes: list[Outcome] | None,
    path: list[str],
    lines: list[str],
) -> None:
    """Append ``node`` and its branches; ``outcomes`` is None off the path taken."""
    on_path = outcomes is not None
    head = f"on {branch}: " if branch else ""
    lines.append("  " * depth + ("* " if on_path else "  ") + head + describe_node(node))
    taken: Node | None = None
    if outcomes is not None:
        if isinstance(node, Ring):
            outcome = outcomes.pop(0) if outcomes else Outcome.NO_ANSWER
            taken = node.branches.get(outcome)
            who = ", ".join(t.ref for t in node.targets)
            path.append(f"ring {who} ({outcome.value.replace('_', ' ')})")
            if taken is None:
                path.append(f"caller hears {outcome.status}")
        elif node.target.kind is TargetKind.HANG_UP:
            path.append(f"caller hears {node.target.status}")
        else:
            path.append(f"{node.target.kind.value} {node.target.ref}".rstrip())
    for child_branch, child in node.branches.items():
        follows = taken is not None and child is taken
        if follows:
            taken = None  # one branch only, should two outcomes name the same node
        _describe(child, depth + 1, child_branch, outcomes if follows else None, path, lines)
