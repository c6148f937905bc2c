"""The registrations list of one tenant, paged without walking every binding per request.

The registrar keeps bindings by AOR (`softswitch.location`). `RegistrationIndex` keeps,
per tenant, the tenant's AORs grouped by extension and in extension order, each with the
registrar's own contact table, so a refresh (the bulk of REGISTERs) changes nothing here:
the index is rebuilt only when an AOR appears or goes (`LocationService.aor_changes`) or
the tenant's users change (provisioning gives a tenant with another user list). A page is
then a bisection to the cursor and `limit` rows; `extension=` is one look-up. The total
still counts the tenant's unexpired bindings (expiry moves with the clock), in one pass
with no string work.

Rows come in (extension, contact) order and the cursor is the last row's key, so pages
follow each other as the offset pages of the whole sorted list did.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.models import Tenant
from storage.base import Binding

if TYPE_CHECKING:
    from softswitch.location import LocationService

__all__ = ["RegistrationIndex", "RegistrationRows"]

Contacts = dict[str, Binding]  # the registrar's contacts of one AOR


@dataclass(frozen=True, slots=True)
class RegistrationRows:
    """One page: the total matching, the rows (extension, binding), the next page's key."""

    total: int
    rows: list[tuple[str, Binding]]
    next_key: tuple[str, str] | None


@dataclass(slots=True)
class _TenantRows:
    changes: int  # the location's aor_changes it was built at
    tenant: Tenant  # the users it mapped AORs with
    extensions: list[str]  # sorted
    tables: list[tuple[Contacts, ...]]  # per extension, the contact tables of its AORs


class RegistrationIndex:
    """Each tenant's AORs in extension order (used on the switch's loop only)."""

    def __init__(self) -> None:
        self._changes = -1
        self._by_domain: dict[str, list[tuple[str, Contacts]]] = {}  # domain -> (user, table)
        self._tenants: dict[str, _TenantRows] = {}

    def page(
        self,
        location: LocationService,
        tenant: Tenant,
        now: float,
        *,
        sees: Callable[[str], bool] | None = None,
        extension: str | None = None,
        reachable: bool | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 50,
    ) -> RegistrationRows:
        """The unexpired bindings of `tenant` (those of extensions `sees` allows; only
        `extension`'s; only with `reachable` as given), in (extension, contact) order:
        how many there are, and the `limit` after the row keyed `after`."""
        rows = self._rows(location, tenant)
        exts, tables = rows.extensions, rows.tables
        if extension is not None:
            at = bisect.bisect_left(exts, extension)
            span = range(at, at + 1 if at < len(exts) and exts[at] == extension else at)
        else:
            span = range(len(exts))
        total = 0
        for i in span:
            if sees is not None and not sees(exts[i]):
                continue
            for table in tables[i]:
                for b in table.values():
                    if b.expires_at > now and (reachable is None or b.reachable is reachable):
                        total += 1
        out: list[tuple[str, Binding]] = []
        start = span.start
        if after is not None:
            start = max(start, bisect.bisect_left(exts, after[0]))
        more = False
        for i in range(start, span.stop):
            ext = exts[i]
            if sees is not None and not sees(ext):
                continue
            for b in _sorted_contacts(tables[i]):
                if b.expires_at <= now or (reachable is not None and b.reachable is not reachable):
                    continue
                if after is not None and (ext, b.contact) <= after:
                    continue
                if len(out) == limit:
                    more = True
                    break
                out.append((ext, b))
            if more:
                break
        next_key = (out[-1][0], out[-1][1].contact) if more and out else None
        return RegistrationRows(total, out, next_key)

    def _rows(self, location: LocationService, tenant: Tenant) -> _TenantRows:
        changes = location.aor_changes
        if changes != self._changes:
            self._by_domain = _by_domain(location.contacts_by_aor())
            self._tenants = {}
            self._changes = changes
        held = self._tenants.get(tenant.name)
        if held is not None and held.tenant is not tenant:
            if held.tenant.users is tenant.users and held.tenant.domain == tenant.domain:
                # A change that left the users alone (a number re-pointed): the same rows.
                held.tenant = tenant
            else:
                held = None
        if held is None:
            held = _tenant_rows(changes, tenant, self._by_domain.get(tenant.domain.lower(), []))
            self._tenants[tenant.name] = held
        return held


def _by_domain(table: dict[str, Contacts]) -> dict[str, list[tuple[str, Contacts]]]:
    """The AORs by lower-case domain, each as (user part, contacts)."""
    out: dict[str, list[tuple[str, Contacts]]] = {}
    for aor, contacts in table.items():
        user, at, domain = aor.removeprefix("sip:").rpartition("@")
        if at:
            out.setdefault(domain.lower(), []).append((user, contacts))
    return out


def _tenant_rows(changes: int, tenant: Tenant, aors: list[tuple[str, Contacts]]) -> _TenantRows:
    grouped: dict[str, list[Contacts]] = {}
    for user, contacts in aors:
        # The registrar's AORs name the extension; older ones may name the username.
        found = tenant.user_by_extension(user) or tenant.user_by_username(user)
        grouped.setdefault(found.extension if found is not None else user, []).append(contacts)
    extensions = sorted(grouped)
    return _TenantRows(changes, tenant, extensions, [tuple(grouped[e]) for e in extensions])


def _sorted_contacts(tables: tuple[Contacts, ...]) -> Iterator[Binding]:
    if len(tables) == 1:
        table = tables[0]
        if len(table) == 1:
            yield from table.values()
            return
        for contact in sorted(table):
            yield table[contact]
        return
    yield from sorted((b for t in tables for b in t.values()), key=lambda b: b.contact)
