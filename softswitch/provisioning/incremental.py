"""The tenant-wide rules checked against indexes, for the writes that touch one object.

With 10,000 users, the tenant-wide rules (unique extensions, usernames and numbers,
references between objects, feature codes colliding with extensions) cost some 300 ms per
write when they walk the whole tenant again (issue 17). A `TenantIndex` is kept with a
tenant's validated model: who owns each username, which sites exist, every extension and
code something dials (`taken`), every string any object other than a user mentions (a rule
forwarding to 103, a queue's agent, a time frame's owner, a mailbox's key...) and every
number another object names (a bridge's or attendant's direct number, a disaster plan's).

`changed_tenant` proves one write clean against the index and builds the new tenant from
the kept one (`model_copy`, no validation of the untouched objects or the tenant-wide
rules). It only proves, never judges: whenever the write could break a tenant-wide rule
(the extension or username is taken, something names the deleted user, the tenant has
call park or pickup codes derived from its users...) it answers None and the caller
validates the tenant as a whole, which names the field and row exactly as before. So the
errors are always the whole-tenant validation's, and a clean write to one user or one
number costs what that object costs.

    index = TenantIndex.build(tenant, documents)       # once per kept model, O(tenant)
    tenant2 = changed_tenant(tenant, index, ("user", "201"), document)  # or None
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from config.answering import UserRouting
from config.models import Tenant, User
from config.numbers import Did
from config.routing import did_destination_problem
from softswitch.provisioning.model import ObjectKey

__all__ = ["TenantIndex", "changed_tenant"]

_DEFAULT_ANSWERING = UserRouting()


@dataclass(frozen=True, slots=True)
class TenantIndex:
    """What the tenant-wide rules look up, for one validated tenant and its documents."""

    usernames: Mapping[str, str]  # username -> extension of its user
    sites: frozenset[str]
    taken: frozenset[str]  # extensions and codes routing dials (users' included)
    mentions: Counter[str]  # strings in every document but users', and their keys
    numbers: frozenset[str]  # numbers named by bridges, attendants and disaster plans
    order: list[tuple[int, str]]  # the users' sort keys, in tenant.users' order

    @classmethod
    def build(cls, tenant: Tenant, documents: Mapping[ObjectKey, Any]) -> TenantIndex | None:
        """The index of a validated tenant (None: its users are not keyed by digits in
        the stored order, so nothing is proved and every write validates the whole tenant)."""
        order = [
            (int(u.extension), u.extension)
            for u in tenant.users
            if (u.extension.isascii() and u.extension.isdigit())
        ]
        if len(order) != len(tenant.users) or any(a >= b for a, b in itertools.pairwise(order)):
            return None  # not the stored order (digits, as numbers): nothing is proved
        routing = tenant.routing
        codes = routing.monitor_codes.model_dump().values()
        taken = (
            routing.extensions()
            | frozenset(routing.feature_codes)
            | frozenset(c for c in codes if isinstance(c, str))
            | routing.emergency()
        )
        mentions: Counter[str] = Counter()
        for (kind, key), doc in documents.items():
            if kind != "user":
                mentions[key] += 1
                _strings(doc, mentions)
        numbers = {b.did for b in tenant.conferences if b.did is not None}
        numbers.update(a.did for a in tenant.auto_attendants if a.did is not None)
        for plan in routing.disaster_plans:
            numbers.update(n.number for n in plan.numbers)
        return cls(
            usernames={u.username: u.extension for u in tenant.users},
            sites=frozenset(s.name for s in tenant.sites),
            taken=taken,
            mentions=mentions,
            numbers=frozenset(str(n) for n in numbers),
            order=order,
        )

    def moved(
        self,
        ident: ObjectKey,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        tenant: Tenant,
    ) -> TenantIndex:
        """This index once `changed_tenant` has written `ident` (`before` -> `after`
        documents), `tenant` the result."""
        kind, key = ident
        if kind == "user":
            usernames = {n: e for n, e in self.usernames.items() if e != key}
            user = tenant.user_by_extension(key)
            order = self.order
            if user is not None:
                usernames[user.username] = key
                if before is None:
                    order = list(order)
                    bisect.insort(order, (int(key), key))
            elif before is not None:
                order = [o for o in order if o[1] != key]
            taken = self.taken | {key} if _dialled(tenant, key) else self.taken - {key}
            return TenantIndex(usernames, self.sites, taken, self.mentions, self.numbers, order)
        mentions = Counter(self.mentions)
        if before is not None:
            mentions[key] -= 1
            mentions.subtract(_strings(before, Counter()))
        if after is not None:
            mentions[key] += 1
            _strings(after, mentions)
        mentions = +mentions  # drop what nothing mentions any more
        return TenantIndex(
            self.usernames, self.sites, self.taken, mentions, self.numbers, self.order
        )


def _dialled(tenant: Tenant, extension: str) -> bool:
    """Whether routing dials `extension` in `tenant` (what `TenantIndex.taken` holds)."""
    routing = tenant.routing
    return (
        extension in routing.users
        or extension in routing.queues
        or extension in routing.auto_attendants
        or extension in routing.conferences
        or extension in routing.mailboxes
        or any(g.extension == extension for g in routing.ring_groups)
        or extension in routing.feature_codes
        or extension in routing.monitor_codes.model_dump().values()
        or extension in routing.emergency()
    )


def _strings(value: Any, into: Counter[str]) -> Counter[str]:
    """Every string in a document (values and table keys) counted into `into`."""
    if isinstance(value, str):
        into[value] += 1
    elif isinstance(value, int) and not isinstance(value, bool):
        into[str(value)] += 1  # an extension written as a number
    elif isinstance(value, Mapping):
        for k, v in value.items():
            into[str(k)] += 1
            _strings(v, into)
    elif isinstance(value, list | tuple):
        for v in value:
            _strings(v, into)
    return into


def changed_tenant(
    tenant: Tenant,
    index: TenantIndex,
    ident: ObjectKey,
    doc: Mapping[str, Any] | None,
    objects: Container[ObjectKey],
) -> Tenant | None:
    """`tenant` with the one object `ident` written (`doc`, None: deleted), when the index
    proves no tenant-wide rule can fail; None when it cannot (validate the whole tenant).
    `objects` are the tenant's stored objects before the write."""
    kind, key = ident
    if kind == "user":
        return _user_changed(tenant, index, key, doc, objects)
    if kind == "number" and doc is not None:
        return _number_changed(tenant, index, key, doc)
    return None


def _user_changed(
    tenant: Tenant,
    index: TenantIndex,
    extension: str,
    doc: Mapping[str, Any] | None,
    objects: Container[ObjectKey],
) -> Tenant | None:
    if not (extension.isascii() and extension.isdigit()) or ("answering", extension) in objects:
        return None  # its answering rules name it (or make it routable without a user)
    old = tenant.user_by_extension(extension)
    users = tenant.users
    at = bisect.bisect_left(index.order, (int(extension), extension))
    if (old is not None) != (at < len(index.order) and index.order[at][1] == extension):
        return None  # the index does not hold this tenant's users as they are
    if doc is None:
        if old is None or index.mentions[extension] or tenant.pickup is not None:
            return None  # something names it (or pickup codes follow the users)
        new_users = users[:at] + users[at + 1 :]
    else:
        try:
            user = User.model_validate(doc)
        except ValidationError:
            return None  # validation of the whole tenant names the field
        if user.extension != extension or (user.site is not None and user.site not in index.sites):
            return None
        owner = index.usernames.get(user.username)
        if owner is not None and owner != extension:
            return None  # a duplicate username
        if old is None:
            if (
                extension in index.taken
                or index.mentions[extension]
                or tenant.park is not None
                or tenant.pickup is not None
            ):
                return None  # dialled otherwise, or codes that follow the users
            new_users = [*users[:at], user, *users[at:]]
        else:
            new_users = [*users[:at], user, *users[at + 1 :]]
    routing = tenant.routing
    if old is None or doc is None:
        # Every user has answering rules (the default ones without an object of its own),
        # in the users' order, then the extensions routed without a user.
        explicit = routing.users
        table = {u.extension: explicit.get(u.extension, _DEFAULT_ANSWERING) for u in new_users}
        if doc is None:
            explicit = {e: r for e, r in explicit.items() if e != extension}
        routing = routing.model_copy(update={"users": {**table, **explicit}})
    return _copy(tenant, {"users": new_users, "routing": routing})


def _number_changed(
    tenant: Tenant, index: TenantIndex, number: str, doc: Mapping[str, Any]
) -> Tenant | None:
    if number in index.numbers:
        return None  # a bridge, an attendant or a disaster plan names it
    dids = tenant.routing.dids
    at = next((i for i, d in enumerate(dids) if d.number == number), None)
    if at is None:
        return None  # a new number: its place among the derived ones is validation's
    try:
        did = Did.model_validate(doc)
    except ValidationError:
        return None
    if did.number != number or did_destination_problem(tenant.routing, did) is not None:
        return None
    routing = tenant.routing.model_copy(update={"dids": (*dids[:at], did, *dids[at + 1 :])})
    return _copy(tenant, {"routing": routing})


def _copy(tenant: Tenant, update: dict[str, Any]) -> Tenant:
    """The tenant with `update`, its look-up tables (model_post_init) rebuilt unless only
    the routing changed: none is built from it, and the copy has the kept tenant's (a
    number's change would otherwise index 10,000 users again)."""
    out = tenant.model_copy(update=update)
    if update.keys() != {"routing"}:
        out.model_post_init(None)
    return out
