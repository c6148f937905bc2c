"""Sites of a tenant: the offices a tenant's users work at (guide 002's sites).

A site has an address, a time zone (its users' schedules and call history read in it) and
the caller ID sent with emergency calls from it. A user names its site (``User.site``); a
site manager's login reaches the users of one site. Names are unique within a tenant and a
user's site must exist: the tenant model checks both (``site_problems``).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config.locations import Loc
from config.numbers import E164

__all__ = ["Site", "site_problems"]


class Site(BaseModel):
    """One office of a tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    address: str = Field(default="", max_length=300)
    timezone: str | None = Field(default=None, description="IANA zone, e.g. Europe/Berlin")
    emergency_caller_id: E164 | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone (such as Europe/Berlin)") from None
        return value

    @field_validator("address")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(c) < 0x20 and c not in "\n" for c in value):
            raise ValueError("must not contain control characters")
        return value.strip()


def site_problems(sites: Sequence[Site], user_sites: Sequence[str | None]) -> list[tuple[Loc, str]]:
    """Duplicate site names, and users naming a site the tenant does not have."""
    items: list[tuple[Loc, str]] = []
    first: dict[str, int] = {}
    for i, site in enumerate(sites):
        if site.name in first:
            items.append((("sites", i, "name"), f"duplicate site {site.name!r}"))
        first.setdefault(site.name, i)
    for i, name in enumerate(user_sites):
        if name is not None and name not in first:
            items.append((("users", i, "site"), f"no site named {name!r} in this tenant"))
    return items
