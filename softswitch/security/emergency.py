"""Emergency calls on the call layer: which trunks they leave by and who they say calls.

Routing decides that a dialled number is an emergency call (``routing.engine``: before
disaster plans, block lists and answering rules) and hands the call layer an ``emergency``
target; admission lets it past the tenant's limits and the toll-fraud permissions and caps.
Here: the route (the tenant's emergency trunk, then the rest of its outbound route, so an
emergency call still gets out when that trunk fails) and the identity (the user's
emergency caller ID, else the tenant's, else the caller IDs other calls present), always
asserted and never withheld: the emergency service needs the number it has the caller's
address for.
"""

from __future__ import annotations

from config.models import Tenant, User
from config.trunks import Trunk
from routing.numbers import clean
from softswitch.sip.headers import quote_display_name

__all__ = [
    "describe_emergency",
    "emergency_caller_id",
    "emergency_identity",
    "emergency_route",
    "is_emergency",
]


def is_emergency(tenant: Tenant, dialled: str) -> bool:
    """Whether ``dialled`` (as a user dialled it) is an emergency call in ``tenant``."""
    return clean(dialled) in tenant.routing.emergency()


def emergency_route(tenant: Tenant) -> tuple[Trunk, ...]:
    """The trunks an emergency call tries, in order: the emergency trunk first."""
    outbound = tenant.outbound_route()
    name = tenant.calling.emergency_trunk
    if name is None:
        return outbound
    first = [t for t in tenant.trunks if t.name == name]
    return (*first, *(t for t in outbound if t.name != name))


def _site_caller_id(tenant: Tenant, user: User | None) -> str | None:
    """The emergency caller ID of the site (office) the user works at (guide 002 names the
    number per location: the emergency service dispatches to the site's address)."""
    if user is None or user.site is None:
        return None
    site = next((s for s in tenant.sites if s.name == user.site), None)
    return site.emergency_caller_id if site is not None else None


def emergency_caller_id(tenant: Tenant, user: User | None, trunk: Trunk | None) -> str | None:
    """The number an emergency call presents: the user's emergency caller ID, their site's,
    the tenant's, then the user's and the trunk's caller IDs (None: none is set)."""
    if user is not None and user.calling.emergency_caller_id:
        return user.calling.emergency_caller_id
    site = _site_caller_id(tenant, user)
    if site:
        return site
    if tenant.calling.emergency_caller_id:
        return tenant.calling.emergency_caller_id
    if user is not None and user.caller_id:
        return user.caller_id
    return trunk.caller_id if trunk is not None else None


def emergency_identity(
    tenant: Tenant, user: User | None, trunk: Trunk, host: str, *, number: str, name: str
) -> tuple[str, list[tuple[str, str]]]:
    """(From without tag, extra headers) of an emergency call's trunk leg: the emergency
    caller ID (else the caller's ``number``) in From and P-Asserted-Identity, whatever the
    trunk's caller-ID policy and the caller's privacy request."""
    number = emergency_caller_id(tenant, user, trunk) or number
    uri = f"<sip:{number}@{host}>"
    from_value = f"{quote_display_name(name)} {uri}" if name else uri
    return from_value, [("P-Asserted-Identity", uri)]


def describe_emergency(tenant: Tenant, user: User | None) -> list[str]:
    """How an emergency call of ``user`` leaves, for ``route explain``."""
    route = emergency_route(tenant)
    trunks = ", then ".join(t.name for t in route) or "none (no trunk: the call fails)"
    number = emergency_caller_id(tenant, user, route[0] if route else None)
    if user is not None and user.calling.emergency_caller_id:
        whose = f"user {user.extension}'s emergency caller ID"
    elif _site_caller_id(tenant, user):
        whose = f"the emergency caller ID of site {user.site if user else ''}"
    elif tenant.calling.emergency_caller_id:
        whose = "the tenant's emergency caller ID"
    else:
        whose = "no emergency caller ID set: the caller ID other calls present"
    return [
        f"emergency route: {trunks}",
        f"emergency caller ID: {number or 'the extension'} ({whose})",
    ]
