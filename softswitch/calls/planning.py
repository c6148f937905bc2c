"""A call's routing plan: the facts routing is given about a call (registered devices,
busy extensions) and asking the pure routing engine for the plan.

The busy table is kept here because it is one of those facts: an extension is busy while
it is on an answered call, or calling out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import structlog

from config.models import Tenant
from config.routing import TenantRouting
from routing.engine import plan_call
from routing.facts import CallFacts
from routing.plan import Callflow
from softswitch.calls.call import Call
from softswitch.location import LocationService

__all__ = ["CallPlanner"]

log = structlog.get_logger(__name__)


class _Registered(Mapping[str, int]):
    """Registered device counts per extension, read from the location service on demand."""

    __slots__ = ("_domain", "_location", "_tenant")

    def __init__(self, location: LocationService, tenant: Tenant, domain: str) -> None:
        self._location = location
        self._tenant = tenant
        self._domain = domain

    def __getitem__(self, extension: str) -> int:
        count = len(self._location.bindings(f"sip:{extension}@{self._domain}"))
        if not count:
            raise KeyError(extension)
        return count

    def __iter__(self) -> Iterator[str]:
        return (u.extension for u in self._tenant.users if u.extension in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class CallPlanner:
    """Plans calls with the tenant's routing as calls should see it now."""

    def __init__(
        self, location: LocationService, routing_for: Callable[[Tenant], TenantRouting]
    ) -> None:
        self.location = location
        # The configuration with the disaster plans' stored state merged in
        # (softswitch.routing_state.DisasterState).
        self.routing_for = routing_for
        self._busy: dict[str, dict[str, int]] = {}

    def mark_busy(self, tenant: str, extension: str, delta: int) -> None:
        """``extension`` is on one more (+1) or one fewer (-1) call."""
        busy = self._busy.setdefault(tenant, {})
        count = busy.get(extension, 0) + delta
        if count > 0:
            busy[extension] = count
        else:
            busy.pop(extension, None)

    def facts(
        self,
        tenant: Tenant,
        caller: str,
        dialled: str,
        at: float,
        *,
        from_trunk: bool = False,
        spam: bool = False,
    ) -> CallFacts:
        """What routing is told about a call of ``tenant`` now (registrations, busy;
        ``spam``: the carrier's caller-ID verification failed)."""
        return CallFacts(
            caller=caller,
            dialled=dialled,
            at=at,
            tenant=tenant.name,
            registered=_Registered(self.location, tenant, tenant.domain),
            busy=self._busy.setdefault(tenant.name, {}).keys(),
            from_trunk=from_trunk,
            spam=spam,
        )

    def plan(
        self,
        call: Call,
        tenant: Tenant,
        caller: str,
        *,
        from_trunk: bool = False,
        spam: bool = False,
    ) -> Callflow | None:
        """The plan for ``call`` as dialled by ``caller`` ('anonymous' for a withheld
        caller; ``spam``: the carrier's caller-ID verification failed); None when routing
        failed (the call is then failed with 500)."""
        facts = self.facts(
            tenant, caller, call.dialled, call.started_at, from_trunk=from_trunk, spam=spam
        )
        try:
            return plan_call(self.routing_for(tenant), facts)
        except ValueError:
            log.exception("routing_failed", call=call.id)
            call.fail(500, "Routing Failed")
            return None
