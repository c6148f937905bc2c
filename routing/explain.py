"""``route explain``: the decision path of a call, for "why did my phone not ring?"."""

from __future__ import annotations

from config.routing import TenantRouting
from routing.engine import CompiledRouting, plan_with_details
from routing.facts import CallFacts
from routing.plan import RoutingPlan


def explain_plan(config: TenantRouting | CompiledRouting, facts: CallFacts) -> RoutingPlan:
    """The plan with a detailed decision path (skipped rules included)."""
    return plan_with_details(config, facts)


def explain(config: TenantRouting | CompiledRouting, facts: CallFacts) -> list[str]:
    """Lines saying which disaster plan, DID treatment and rule applied and why, then the plan.

    A call time that cannot be read gives a single line saying so instead of raising.
    """
    try:
        plan = plan_with_details(config, facts)
    except ValueError as exc:
        return [f"error: {exc}"]
    lines = [str(d) for d in plan.decisions]
    if plan.caller_id_prefix:
        lines.append(f"caller-ID prefix: {plan.caller_id_prefix}")
    lines.append("plan:")
    lines.extend("  " + line for line in plan.describe())
    return lines
