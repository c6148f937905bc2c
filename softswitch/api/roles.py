"""Roles, areas and create/read/update/delete permissions (the guides' "c r u d" per area).

A role sets the ceiling of what a login may do in each area; a login's own permissions
can only narrow it. The scope (which tenants, which site, which extension) is separate:
see `softswitch.api.principal`.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIONS",
    "Area",
    "Role",
    "check_permissions",
    "effective_permissions",
    "rank",
    "role_ceiling",
]

ACTIONS = "crud"  # create, read, update, delete


class Role(StrEnum):
    """Who a login is, highest first."""

    OPERATOR = "operator"  # runs the switch: everything, every tenant
    RESELLER = "reseller"  # its customers' tenants
    OFFICE_MANAGER = "office_manager"  # one tenant
    SITE_MANAGER = "site_manager"  # one site of a tenant
    SUPERVISOR = "supervisor"  # a call centre: live calls, monitoring, reports
    USER = "user"  # one extension: its own settings and call history


class Area(StrEnum):
    """What a permission is about (one per group of endpoints)."""

    TENANTS = "tenants"
    ADMINS = "admins"  # logins and their tokens
    USERS = "users"
    NUMBERS = "numbers"
    ROUTING = "routing"  # time frames, answering rules, route explain
    DISASTER_PLANS = "disaster_plans"
    REGISTRATIONS = "registrations"
    CALLS = "calls"  # live calls (delete: hang up)
    MONITORING = "monitoring"  # listen / whisper / barge (create: start)
    CONFERENCES = "conferences"
    CALL_HISTORY = "call_history"
    ANALYTICS = "analytics"
    EVENTS = "events"
    METRICS = "metrics"
    AUDIT = "audit"
    SITES = "sites"  # a tenant's offices (provisioning)
    QUEUES = "queues"  # call queues and their agents
    VOICEMAIL = "voicemail"  # mailboxes


_RANK = {role: len(Role) - i for i, role in enumerate(Role)}

_ALL = {area: ACTIONS for area in Area}
_TENANT_ADMIN = {
    **{area: ACTIONS for area in Area},
    Area.TENANTS: "r",
    Area.METRICS: "",
    Area.AUDIT: "r",
}
_CEILINGS: dict[Role, dict[Area, str]] = {
    Role.OPERATOR: _ALL,
    Role.RESELLER: {**_TENANT_ADMIN, Area.TENANTS: "cru"},
    Role.OFFICE_MANAGER: _TENANT_ADMIN,
    Role.SITE_MANAGER: {
        Area.TENANTS: "r",
        Area.SITES: "r",
        Area.USERS: "cru",
        Area.NUMBERS: "r",
        Area.ROUTING: "crud",
        Area.DISASTER_PLANS: "r",
        Area.REGISTRATIONS: "r",
        Area.CALLS: "rd",
        Area.MONITORING: "c",
        Area.CONFERENCES: "cru",
        Area.CALL_HISTORY: "r",
        Area.ANALYTICS: "r",
        Area.EVENTS: "r",
    },
    Role.SUPERVISOR: {
        Area.TENANTS: "r",
        Area.QUEUES: "ru",
        Area.USERS: "r",
        Area.REGISTRATIONS: "r",
        Area.CALLS: "r",
        Area.MONITORING: "c",
        Area.CONFERENCES: "r",
        Area.CALL_HISTORY: "r",
        Area.ANALYTICS: "r",
        Area.EVENTS: "r",
    },
    Role.USER: {
        Area.TENANTS: "r",
        Area.USERS: "ru",
        Area.VOICEMAIL: "ru",
        Area.ROUTING: "cru",
        Area.REGISTRATIONS: "r",
        Area.CALLS: "r",
        Area.CALL_HISTORY: "r",
        Area.EVENTS: "r",
    },
}


def rank(role: Role) -> int:
    """Higher ranks may manage logins of lower ones (an operator also other operators)."""
    return _RANK[role]


def role_ceiling(role: Role) -> dict[Area, str]:
    """The most a role may do, per area (missing or "" = nothing)."""
    return _CEILINGS[role]


def check_permissions(role: Role, permissions: dict[str, str]) -> dict[str, str]:
    """Validate a login's own permissions against its role; ValueError names the area.

    Letters are normalised to "crud" order; an area may only keep what the role allows.
    """
    ceiling = role_ceiling(role)
    out: dict[str, str] = {}
    for name, letters in permissions.items():
        try:
            area = Area(name)
        except ValueError:
            known = ", ".join(a.value for a in Area)
            raise ValueError(f"permissions.{name}: unknown area (areas: {known})") from None
        if not isinstance(letters, str) or set(letters) - set(ACTIONS):
            raise ValueError(f"permissions.{name}: must be letters of 'crud'")
        beyond = set(letters) - set(ceiling.get(area, ""))
        if beyond:
            raise ValueError(
                f"permissions.{name}: role {role.value} may not have "
                f"{''.join(a for a in ACTIONS if a in beyond)!r} there"
            )
        out[area.value] = "".join(a for a in ACTIONS if a in letters)
    return out


def effective_permissions(role: Role, permissions: dict[str, str]) -> dict[Area, str]:
    """What a login may do per area: the role's ceiling, narrowed where it says so."""
    result: dict[Area, str] = {}
    for area, allowed in role_ceiling(role).items():
        own = permissions.get(area.value)
        letters = allowed if own is None else "".join(a for a in allowed if a in own)
        if letters:
            result[area] = letters
    return result
