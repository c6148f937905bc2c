"""Which SRTP policy (``config.security_media``) governs one leg of a call.

A trunk's leg follows the trunk's policy; a phone's leg follows its user's policy when the
user has one, else the tenant's. An unknown tenant, user or trunk (a call placed while the
configuration changes) gets ``optional``: what every leg had before policies existed.
"""

from __future__ import annotations

from config.models import Tenant
from config.security_media import SrtpPolicy

__all__ = ["phone_policy", "trunk_policy"]


def phone_policy(tenant: Tenant | None, extension: str) -> SrtpPolicy:
    """The policy of a leg to or from the phones of ``extension`` (the user's, else the
    tenant's)."""
    if tenant is None:
        return "optional"
    user = tenant.user_by_extension(extension)
    if user is not None and user.srtp is not None:
        return user.srtp
    return tenant.srtp


def trunk_policy(tenant: Tenant | None, trunk: str) -> SrtpPolicy:
    """The policy of a leg to or from the carrier trunk named ``trunk``."""
    if tenant is not None:
        for candidate in tenant.trunks:
            if candidate.name == trunk:
                return candidate.srtp
    return "optional"
