"""The authenticated caller of a request: a login's role, scope and permissions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from config.models import Tenant
from softswitch.api.roles import Area, Role, effective_permissions, rank
from storage.logins import ApiLogin

__all__ = ["Principal", "user_site"]


def user_site(tenant: Tenant, extension: str) -> str | None:
    """The site a user belongs to. The provisioning model gives users a ``site``; a
    configuration without one puts every user outside any site."""
    user = tenant.user_by_extension(extension)
    site = getattr(user, "site", None) if user is not None else None
    return site if isinstance(site, str) else None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, and how far they may reach.

    ``tenants`` is empty for an operator (every tenant). A site manager reaches the users
    of ``site`` within its tenant; a basic user only ``extension``.
    """

    login: str
    role: Role
    tenants: frozenset[str]
    site: str | None
    extension: str | None
    permissions: dict[Area, str]
    token_id: str

    @classmethod
    def of(cls, login: ApiLogin, token_id: str) -> Principal:
        role = Role(login.role)
        return cls(
            login=login.name,
            role=role,
            tenants=frozenset(login.tenants),
            site=login.site,
            extension=login.extension,
            permissions=effective_permissions(role, login.permissions),
            token_id=token_id,
        )

    def may(self, area: Area, action: str) -> bool:
        """True when the login may do ``action`` (one of c, r, u, d) in ``area``."""
        return action in self.permissions.get(area, "")

    def sees_tenant(self, tenant: str) -> bool:
        return self.role is Role.OPERATOR or tenant in self.tenants

    def visible_tenants(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if self.sees_tenant(name)]

    def extensions(self, tenant: Tenant) -> frozenset[str] | None:
        """The extensions of ``tenant`` this caller may see objects of, or None for all."""
        if self.role is Role.USER:
            return frozenset((self.extension,)) if self.extension else frozenset()
        if self.role is Role.SITE_MANAGER:
            return frozenset(
                u.extension for u in tenant.users if user_site(tenant, u.extension) == self.site
            )
        return None

    def outranks(self, role: Role) -> bool:
        """May manage logins of ``role``: a lower one (operators manage operators too)."""
        return rank(self.role) > rank(role) or self.role is Role.OPERATOR
