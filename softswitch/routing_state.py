"""Run-time routing state: which disaster plans are enabled, as stored, for the call path.

Disaster plans (their numbers and forward-to numbers) come from the configuration; whether
a plan is enabled lives in the store, so `softswitch disaster enable NAME` on any node takes
effect for new calls on every node without a restart. `DisasterState` polls the store
(one small query a second) and hands the call path a `TenantRouting` with the stored
statuses merged in:

    state = DisasterState(store)
    await state.refresh()          # before taking calls
    state.start()                  # refresh every `interval` seconds in the background
    plan = plan_call(state.routing_for(tenant), facts)
    ...
    await state.stop()

`routing_for` is a dictionary lookup while nothing changes, and returns the same object for
the same state, so the engine's per-configuration compile cache keeps hitting.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import structlog

from config.models import Tenant
from config.numbers import DisasterEvent, DisasterPlan, DisasterStatus
from config.routing import TenantRouting
from routing.disaster import DisasterError, execute_plan, get_plan, revert_plan
from storage.base import DisasterPlanEvent, DisasterPlanState, StorageError, Store

__all__ = [
    "DisasterState",
    "apply_disaster_states",
    "current_routing",
    "set_disaster_plan",
    "to_disaster_event",
]

log = structlog.get_logger(__name__)

_MAX_BY = 120  # DisasterEvent.by's limit


def to_disaster_event(event: DisasterPlanEvent) -> DisasterEvent:
    """A stored event as the configuration model's history entry."""
    return DisasterEvent(
        action="execute" if event.action == "execute" else "revert",
        by=(event.changed_by.strip() or "?")[:_MAX_BY],
        at=dt.datetime.fromtimestamp(event.changed_at, dt.UTC),
    )


def apply_disaster_states(
    routing: TenantRouting,
    states: Iterable[DisasterPlanState],
    events: Iterable[DisasterPlanEvent] = (),
) -> tuple[TenantRouting, list[str]]:
    """`routing` with each disaster plan's status (and history) taken from the store.

    A plan without a stored state keeps its configured status; stored states of plans the
    configuration does not have are ignored. Should two enabled plans share a number (enabled
    on different nodes at once, or a configuration changed since), the plan enabled first
    wins and the other stays saved; `problems` says so. Returns `routing` itself when nothing
    differs.
    """
    by_plan = {s.plan: s for s in states}
    history: dict[str, list[DisasterEvent]] = {}
    for event in events:
        history.setdefault(event.plan, []).append(to_disaster_event(event))

    def enabled_since(index: int, plan: DisasterPlan) -> tuple[float, int]:
        state = by_plan.get(plan.name)
        return (-math.inf if state is None else state.changed_at, index)

    wanted = {
        plan.name: (by_plan[plan.name].enabled if plan.name in by_plan else plan.enabled)
        for plan in routing.disaster_plans
    }
    taken: dict[str, str] = {}
    problems: list[str] = []
    enabled: set[str] = set()
    order = sorted(enumerate(routing.disaster_plans), key=lambda item: enabled_since(*item))
    for _, plan in order:
        if not wanted[plan.name]:
            continue
        clash = next((taken[n.number] for n in plan.numbers if n.number in taken), None)
        if clash is not None:
            problems.append(
                f"disaster plan {plan.name!r} stays disabled: it shares numbers with the "
                f"enabled plan {clash!r}"
            )
            continue
        enabled.add(plan.name)
        taken.update((n.number, plan.name) for n in plan.numbers)

    plans: list[DisasterPlan] = []
    changed = False
    for plan in routing.disaster_plans:
        status = DisasterStatus.ENABLED if plan.name in enabled else DisasterStatus.SAVED
        update: dict[str, object] = {}
        if status is not plan.status:
            update["status"] = status
        if plan.name in history:
            update["history"] = (*plan.history, *history[plan.name])
        if update:
            changed = True
            plan = plan.model_copy(update=update)
        plans.append(plan)
    if not changed:
        return routing, problems
    # The statuses were checked above (no number in two enabled plans), which is the only
    # rule of TenantRouting a status change can break, so no full re-validation is needed.
    return routing.model_copy(update={"disaster_plans": tuple(plans)}), problems


async def current_routing(store: Store, tenant: Tenant) -> tuple[TenantRouting, list[str]]:
    """The tenant's routing with the stored disaster plan statuses (and history) applied,
    read from the store now; plus any conflicts (see `apply_disaster_states`)."""
    states = await store.load_disaster_plans(tenant.name)
    events = await store.load_disaster_events(tenant.name, limit=1000)
    return apply_disaster_states(tenant.routing, states, events)


async def set_disaster_plan(
    store: Store,
    tenant: Tenant,
    name: str,
    enable: bool,
    by: str,
    at: dt.datetime | None = None,
) -> DisasterPlan:
    """Execute (enable) or revert (disable) a plan and record who and when: the operation
    behind `softswitch disaster enable|disable` and the admin API.

    Checked against the current state first (unknown plan, already enabled / not enabled,
    no numbers, a number already forwarded by another enabled plan), then written atomically;
    raises DisasterError saying why when refused (also when another operator made the same
    change meanwhile), StorageError when the store fails. Returns the plan as it is now.
    """
    at = dt.datetime.now(dt.UTC) if at is None else at
    configured = next((p for p in tenant.routing.disaster_plans if p.name == name), None)
    if configured is None:
        known = ", ".join(repr(p.name) for p in tenant.routing.disaster_plans) or "none"
        raise DisasterError(f"no disaster plan {name!r} (plans: {known})")
    routing, _ = await current_routing(store, tenant)
    changed = (execute_plan if enable else revert_plan)(routing, name, by, at)
    event = await store.change_disaster_plan(
        tenant.name, name, enable, by, at.timestamp(), default_enabled=configured.enabled
    )
    if event is None:
        raise DisasterError(
            f"plan {name!r} was {'enabled' if enable else 'disabled'} meanwhile by someone else"
        )
    log.info("routing.disaster_plan", tenant=tenant.name, plan=name, action=event.action, by=by)
    return get_plan(changed, name)


class DisasterState:
    """Stored disaster plan statuses, refreshed from the store, merged per tenant.

    `history` is how many recent events per plan are merged into the plans' history (for
    status displays); the call path does not need them.
    """

    def __init__(self, store: Store, *, interval: float = 1.0, history: int = 20) -> None:
        if not interval > 0:
            raise ValueError("interval must be > 0 seconds")
        self.store = store
        self.interval = interval
        self.history = history
        self.version = 0
        self._states: tuple[DisasterPlanState, ...] = ()
        self._by_tenant: dict[str, tuple[DisasterPlanState, ...]] = {}
        self._events: dict[str, tuple[DisasterPlanEvent, ...]] = {}
        # tenant name -> (base routing, version, merged routing)
        self._merged: dict[str, tuple[TenantRouting, int, TenantRouting]] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def refresh(self) -> bool:
        """Reload the statuses from the store; True when they changed. Raises StorageError."""
        states = tuple(await self.store.load_disaster_plans())
        if states == self._states and self.version:
            return False
        events = await self.store.load_disaster_events(
            limit=min(100_000, max(1, self.history * max(1, len(states))))
        )
        self._states = states
        self._by_tenant = _group(states, lambda s: s.tenant)
        per_plan: dict[tuple[str, str], list[DisasterPlanEvent]] = {}
        for event in events:
            per_plan.setdefault((event.tenant, event.plan), []).append(event)
        kept = [e for evs in per_plan.values() for e in evs[-self.history :]]
        kept.sort(key=lambda e: e.id)
        self._events = _group(kept, lambda e: e.tenant)
        self.version += 1
        log.info(
            "routing.disaster_state",
            version=self.version,
            enabled=[f"{s.tenant}/{s.plan}" for s in states if s.enabled],
        )
        return True

    def routing_for(self, tenant: Tenant) -> TenantRouting:
        """The tenant's routing with the stored disaster plan statuses applied."""
        base = tenant.routing
        hit = self._merged.get(tenant.name)
        if hit is not None and hit[0] is base and hit[1] == self.version:
            return hit[2]
        merged, problems = apply_disaster_states(
            base, self._by_tenant.get(tenant.name, ()), self._events.get(tenant.name, ())
        )
        for problem in problems:
            log.warning("routing.disaster_conflict", tenant=tenant.name, problem=problem)
        self._merged[tenant.name] = (base, self.version, merged)
        return merged

    def states(self, tenant: str | None = None) -> Sequence[DisasterPlanState]:
        """The stored statuses last loaded (of one tenant, or all)."""
        return self._states if tenant is None else self._by_tenant.get(tenant, ())

    async def run(self) -> None:
        """Refresh every `interval` seconds until cancelled; a failing store keeps the last
        known state (logged once per outage)."""
        while True:
            try:
                await self.refresh()
                if self._failing:
                    log.info("routing.disaster_state_recovered")
                self._failing = False
            except StorageError as exc:
                if not self._failing:
                    log.warning("routing.disaster_state_unavailable", error=str(exc))
                self._failing = True
            await asyncio.sleep(self.interval)

    def start(self) -> asyncio.Task[None]:
        """Start `run()` as a background task (once)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name="disaster-state-refresh"
            )
        return self._task

    async def stop(self) -> None:
        """Stop the background refresh; safe to call when not started."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


_T = TypeVar("_T")


def _group(items: Iterable[_T], key: Callable[[_T], str]) -> dict[str, tuple[_T, ...]]:
    out: dict[str, list[_T]] = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return {k: tuple(v) for k, v in out.items()}
