"""``route explain``: the decision path of a call and the callflow tree it produced, for
"why did my phone not ring?"."""

from __future__ import annotations

from config.routing import TenantRouting
from routing.engine import CompiledRouting, plan_with_details
from routing.facts import CallFacts
from routing.plan import Callflow


def explain_callflow(config: TenantRouting | CompiledRouting, facts: CallFacts) -> Callflow:
    """The callflow with a detailed decision path (skipped rules included)."""
    return plan_with_details(config, facts)


def explain(config: TenantRouting | CompiledRouting, facts: CallFacts) -> list[str]:
    """Lines saying which disaster plan, DID treatment and rule applied and why (the
    branches routing took), then the callflow tree with the branch for each outcome.

    A call time that cannot be read gives a single line saying so instead of raising.
    """
    try:
        callflow = plan_with_details(config, facts)
    except ValueError as exc:
        return [f"error: {exc}"]
    lines = [str(d) for d in callflow.decisions]
    if callflow.caller_id_prefix:
        lines.append(f"caller-ID prefix: {callflow.caller_id_prefix}")
    lines.append("callflow:")
    lines.extend("  " + line for line in callflow.describe())
    return lines
