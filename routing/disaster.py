"""Disaster plans: adding numbers, execute and revert, as pure state transitions.

Each function takes a ``TenantRouting`` and returns a new one (validated; the input is not
touched). Execute/revert append who and when to the plan's history; persisting the result is
the caller's job. While a plan is enabled the engine forwards its numbers before any rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydantic import ValidationError

from config.numbers import (
    DisasterEvent,
    DisasterNumber,
    DisasterPlan,
    DisasterStatus,
    NumberError,
    NumberType,
    is_toll_free,
    to_e164,
)
from config.routing import TenantRouting


class DisasterError(ValueError):
    """A disaster-plan operation that cannot be applied; the message says why."""


def _plan_index(routing: TenantRouting, name: str) -> int:
    for i, plan in enumerate(routing.disaster_plans):
        if plan.name == name:
            return i
    raise DisasterError(f"no disaster plan named {name!r}")


def get_plan(routing: TenantRouting, name: str) -> DisasterPlan:
    return routing.disaster_plans[_plan_index(routing, name)]


def _with_plans(routing: TenantRouting, plans: list[DisasterPlan]) -> TenantRouting:
    data = {name: getattr(routing, name) for name in TenantRouting.model_fields}
    data["disaster_plans"] = tuple(plans)
    try:
        return TenantRouting.model_validate(data)
    except ValidationError as exc:
        raise DisasterError(_first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def _replace(routing: TenantRouting, plan: DisasterPlan) -> TenantRouting:
    plans = list(routing.disaster_plans)
    plans[_plan_index(routing, plan.name)] = plan
    return _with_plans(routing, plans)


def create_plan(
    routing: TenantRouting, name: str, region: str = "", number_type: NumberType = NumberType.DID
) -> TenantRouting:
    """Add an empty, saved plan."""
    if any(p.name == name for p in routing.disaster_plans):
        raise DisasterError(f"a disaster plan named {name!r} already exists")
    try:
        plan = DisasterPlan(name=name, region=region, number_type=number_type)
    except ValidationError as exc:
        raise DisasterError(_first_error(exc)) from None
    return _with_plans(routing, [*routing.disaster_plans, plan])


def number_problem(
    routing: TenantRouting, plan: DisasterPlan, number: str, forward_to: str
) -> tuple[str, str, str | None]:
    """(number, forward_to, reason) with numbers normalised; reason None when acceptable."""
    try:
        number = to_e164(number)
    except NumberError as exc:
        return number, forward_to, f"invalid number: {exc.reason}"
    try:
        forward_to = to_e164(forward_to)
    except NumberError as exc:
        return number, forward_to, f"invalid forward-to number: {exc.reason}"
    if number == forward_to:
        return number, forward_to, "number forwards to itself"
    if all(d.number != number for d in routing.dids):
        return number, forward_to, "not in the number inventory"
    if is_toll_free(number) != (plan.number_type is NumberType.TOLL_FREE):
        kind = "toll-free" if is_toll_free(number) else "not toll-free"
        return number, forward_to, f"number is {kind}; plan is {plan.number_type.value}"
    if any(n.number == number for n in plan.numbers):
        return number, forward_to, "already in this plan"
    return number, forward_to, None


def add_number(routing: TenantRouting, name: str, number: str, forward_to: str) -> TenantRouting:
    """Add one number and its forward-to number to a plan."""
    plan = get_plan(routing, name)
    number, forward_to, reason = number_problem(routing, plan, number, forward_to)
    if reason is not None:
        raise DisasterError(f"{number}: {reason}")
    entry = DisasterNumber(number=number, forward_to=forward_to)
    return _replace(routing, plan.model_copy(update={"numbers": (*plan.numbers, entry)}))


def add_numbers(
    routing: TenantRouting, name: str, entries: tuple[DisasterNumber, ...]
) -> TenantRouting:
    """Add already-validated numbers (an import) to a plan in one step."""
    plan = get_plan(routing, name)
    updated = plan.model_copy(update={"numbers": (*plan.numbers, *entries)})
    try:
        updated = DisasterPlan.model_validate(updated.model_dump())
    except ValidationError as exc:
        raise DisasterError(_first_error(exc)) from None
    return _replace(routing, updated)


def remove_number(routing: TenantRouting, name: str, number: str) -> TenantRouting:
    """Take a number out of a plan."""
    plan = get_plan(routing, name)
    kept = tuple(n for n in plan.numbers if n.number != number)
    if len(kept) == len(plan.numbers):
        raise DisasterError(f"{number} is not in plan {name!r}")
    return _replace(routing, plan.model_copy(update={"numbers": kept}))


def _check_when(at: dt.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise DisasterError("the time of an execute/revert must carry a timezone")


def execute_plan(routing: TenantRouting, name: str, by: str, at: dt.datetime) -> TenantRouting:
    """Enable a plan: from now on its numbers forward to their forward-to numbers."""
    _check_when(at)
    plan = get_plan(routing, name)
    if plan.enabled:
        raise DisasterError(f"plan {name!r} is already enabled")
    if not plan.numbers:
        raise DisasterError(f"plan {name!r} has no numbers")
    event = DisasterEvent(action="execute", by=by, at=at)
    return _replace(
        routing,
        plan.model_copy(
            update={"status": DisasterStatus.ENABLED, "history": (*plan.history, event)}
        ),
    )


def revert_plan(routing: TenantRouting, name: str, by: str, at: dt.datetime) -> TenantRouting:
    """Disable a plan: its numbers return to their normal routing."""
    _check_when(at)
    plan = get_plan(routing, name)
    if not plan.enabled:
        raise DisasterError(f"plan {name!r} is not enabled")
    event = DisasterEvent(action="revert", by=by, at=at)
    return _replace(
        routing,
        plan.model_copy(update={"status": DisasterStatus.SAVED, "history": (*plan.history, event)}),
    )


@dataclass(frozen=True, slots=True)
class PlanStatus:
    """One line of ``disaster status``."""

    name: str
    region: str
    number_type: str
    status: str
    numbers: int
    last_event: DisasterEvent | None

    def __str__(self) -> str:
        last = ""
        if self.last_event is not None:
            e = self.last_event
            last = f", last {e.action} by {e.by} at {e.at.isoformat()}"
        region = f" [{self.region}]" if self.region else ""
        return (
            f"{self.name}{region}: {self.status}, {self.numbers} {self.number_type} number(s){last}"
        )


def plan_status(routing: TenantRouting) -> list[PlanStatus]:
    """The state of every plan, in configuration order."""
    return [
        PlanStatus(
            p.name,
            p.region,
            p.number_type.value,
            p.status.value,
            len(p.numbers),
            p.history[-1] if p.history else None,
        )
        for p in routing.disaster_plans
    ]
