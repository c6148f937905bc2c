"""The toll-fraud caps and the store: what the day's CDRs say was used (read back at start,
so a restart does not hand out a fresh day's minutes or hour's international calls), and
a snapshot of the use, calls in progress included, written every few seconds for
``softswitch security caps`` (the asyncio side of the caps).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog

from config.calling import NumberClass
from config.models import Tenant, User
from routing.numbers import clean, normalise_clean
from softswitch.security.tollfraud import TollFraudGuard, scope_keys
from softswitch.security.tollfraud_caps import DAY, HOUR
from storage.base import StorageError, Store
from storage.cdr import Cdr

__all__ = [
    "SNAPSHOT_KEY",
    "CapsKeeper",
    "offnet_number",
    "replay_cdrs",
    "usage_rows",
]

log = structlog.get_logger(__name__)

#: The store setting the running switch keeps its use in.
SNAPSHOT_KEY = "tollfraud_usage"
#: Seconds between snapshots.
SNAPSHOT_INTERVAL = 5.0


def offnet_number(cdr: Cdr) -> tuple[str, str] | None:
    """(number, who sent it out) of a CDR's first outside leg, None for a call that never
    left for a trunk (or an emergency call, which no cap counts)."""
    if cdr.emergency:
        return None
    for leg in cdr.legs:
        target = str(leg.get("target", ""))
        if target.startswith("external "):
            number, _, extras = target[len("external ") :].partition(" ")
            who = ""
            marker = "forwarded by "
            if marker in extras:
                who = extras.split(marker, 1)[1].rstrip("]").split(",")[0].split(">")[-1]
            return number, who
    return None


def replay_cdrs(guard: TollFraudGuard, cdrs: Iterable[Cdr], tenants: Sequence[Tenant]) -> int:
    """Count ended calls of the CDRs against the caps; returns how many counted."""
    by_name = {t.name: t for t in tenants}
    counted = 0
    for cdr in cdrs:
        tenant = by_name.get(cdr.tenant)
        found = offnet_number(cdr)
        if tenant is None or found is None:
            continue
        number, forwarder = found
        ext = forwarder or ("" if cdr.direction == "inbound" else cdr.caller_number)
        user = tenant.user_by_extension(ext) if ext else None
        e164 = normalise_clean(clean(number), tenant.routing.default_region) or number
        classified = guard.classify(tenant, user, e164)
        international = NumberClass.INTERNATIONAL in classified.classes
        for key in scope_keys(tenant.name, user.extension if user is not None else None):
            guard.caps.restore(key, cdr.start, cdr.answer, cdr.end, international)
        counted += 1
    return counted


def _has_caps(user: User) -> bool:
    settings = user.calling
    return (
        settings.max_outbound_calls is not None
        or settings.max_international_per_hour is not None
        or settings.max_minutes_per_day is not None
    )


# Per tenant name: (the tenant's user list, the extensions with caps of their own). A
# tenant's list is replaced, never changed, when it is provisioned anew, so its identity
# says whether the answer still holds: a snapshot every few seconds of a tenant of 10,000
# users then looks at the few with caps or use, not at every user.
_CAPPED: dict[str, tuple[Sequence[User], frozenset[str]]] = {}


def _capped_extensions(tenant: Tenant) -> frozenset[str]:
    cached = _CAPPED.get(tenant.name)
    if cached is not None and cached[0] is tenant.users:
        return cached[1]
    capped = frozenset(u.extension for u in tenant.users if _has_caps(u))
    _CAPPED[tenant.name] = (tenant.users, capped)
    return capped


def usage_rows(
    guard: TollFraudGuard, tenants: Sequence[Tenant], *, all_users: bool = False
) -> list[dict[str, Any]]:
    """One row per tenant, and per user with use or caps of their own: use and caps."""
    in_use: dict[str, set[str]] = {}
    for key in guard.caps.keys():  # noqa: SIM118 - a CapTable, not a dict
        if len(key) != 2:
            continue
        figures = guard.figures(key)
        if figures.outbound_calls or figures.minutes_today or figures.international_last_hour:
            in_use.setdefault(key[0], set()).add(key[1])
    rows: list[dict[str, Any]] = []
    for tenant in tenants:
        scopes: list[tuple[str | None, Any]] = [(None, tenant.calling)]
        wanted = _capped_extensions(tenant) | in_use.get(tenant.name, set())
        if all_users or wanted:
            scopes += [
                (user.extension, user.calling)
                for user in tenant.users
                if all_users or user.extension in wanted
            ]
        for ext, settings in scopes:
            figures = guard.figures((tenant.name,) if ext is None else (tenant.name, ext))
            rows.append(
                {
                    "tenant": tenant.name,
                    "user": ext,
                    "outbound_calls": figures.outbound_calls,
                    "max_outbound_calls": settings.max_outbound_calls,
                    "international_last_hour": figures.international_last_hour,
                    "max_international_per_hour": settings.max_international_per_hour,
                    "minutes_today": round(figures.minutes_today, 1),
                    "max_minutes_per_day": settings.max_minutes_per_day,
                }
            )
    return rows


async def load_day(store: Store, now: float) -> list[Cdr]:
    """The CDRs the caps need: since the start of the UTC day or the last hour."""
    since = min(now // DAY * DAY, now - HOUR)
    return await store.load_cdrs(since, now + 1)


class CapsKeeper:
    """Replays the day's CDRs into the caps at start, then keeps a snapshot in the store."""

    def __init__(
        self, guard: TollFraudGuard, store: Store, tenants: Callable[[], Sequence[Tenant]]
    ) -> None:
        self.guard = guard
        self.store = store
        self.tenants = tenants  # the tenants provisioned now
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        tenants = self.tenants()
        try:
            cdrs = await load_day(self.store, time.time())
        except StorageError as error:
            log.warning("tollfraud_restore_failed", error=str(error))
        else:
            counted = replay_cdrs(self.guard, cdrs, tenants)
            if counted:
                log.info("tollfraud_caps_restored", calls=counted)
        self._task = asyncio.create_task(self._run(), name="tollfraud-usage")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def snapshot(self) -> None:
        rows = usage_rows(self.guard, self.tenants())
        value = json.dumps({"at": time.time(), "rows": rows}, separators=(",", ":"))
        await self.store.set_setting(SNAPSHOT_KEY, value)

    async def _run(self) -> None:
        while True:
            try:
                await self.snapshot()
            except StorageError as error:
                log.warning("tollfraud_snapshot_failed", error=str(error))
            await asyncio.sleep(SNAPSHOT_INTERVAL)
