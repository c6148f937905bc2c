"""``[tenants.calling]`` and ``[tenants.users.calling]``: calling permissions by number
class and country, toll-fraud caps, and the emergency trunk and caller ID.

A call to an outside number must be allowed by the tenant's settings *and* the user's (a
user's settings can only narrow the tenant's). Emergency numbers (911, 112, 999 and the
tenant's ``routing.emergency_numbers``) are never refused, capped or limited: they go to
``emergency_trunk`` (else the outbound route) presenting the user's
``emergency_caller_id`` (else the tenant's), the number the emergency service sees and
has the address of (softswitch.security.tollfraud, softswitch.security.emergency).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

from config.numbers import NumberError, to_e164

__all__ = [
    "ALL_CLASSES",
    "DEFAULT_CLASSES",
    "NumberClass",
    "TenantCalling",
    "UserCalling",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class NumberClass(StrEnum):
    """What kind of number a call goes to (softswitch.security.tollfraud_classes)."""

    INTERNAL = "internal"  # an extension, service or number of the tenant itself
    LOCAL = "local"  # a geographic number in the caller's own area code
    NATIONAL = "national"  # any other number of the home country
    MOBILE = "mobile"  # a mobile number of the home country
    TOLL_FREE = "toll_free"
    SHARED_COST = "shared_cost"
    PREMIUM_RATE = "premium_rate"  # in any country
    INTERNATIONAL = "international"  # another country (NANP countries included)
    SATELLITE = "satellite"  # +870 Inmarsat, +881 GMSS, +882 international networks


ALL_CLASSES: frozenset[NumberClass] = frozenset(NumberClass)
#: Allowed when nothing is configured: everything but premium rate and satellite numbers,
#: which serve toll fraud far more often than customers.
DEFAULT_CLASSES: frozenset[NumberClass] = ALL_CLASSES - {
    NumberClass.PREMIUM_RATE,
    NumberClass.SATELLITE,
}


def _classes(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValueError("must be a list of number classes")
    out = set()
    for item in value:
        try:
            out.add(NumberClass(str(item).strip().lower().replace("-", "_").replace(" ", "_")))
        except ValueError:
            known = ", ".join(c.value for c in NumberClass)
            raise ValueError(f"{item!r} is not a number class ({known})") from None
    return frozenset(out)


def _countries(value: Any) -> Any:
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValueError("must be a list of ISO 3166 country codes such as GB")
    out = set()
    for item in value:
        code = str(item).strip().upper()
        if code != "001" and code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{item!r} is not a country code phonenumbers knows (e.g. GB, DE)")
        out.add(code)
    return frozenset(out)


def _caller_id(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return to_e164(value)
    except NumberError as exc:
        raise ValueError(str(exc)) from None


class _Calling(BaseModel):
    """What tenants and users share: permissions, caps, an emergency caller ID.

    ``allowed_classes``: number classes that may be called (None: the tenant's, for a
    tenant ``DEFAULT_CLASSES``); ``allowed_countries``: when not empty, calls to other
    countries go only to these (ISO codes, ``001`` for non-geographic numbers);
    ``blocked_countries``: never. Caps (None: none): ``max_outbound_calls`` simultaneous
    calls to outside numbers, ``max_international_per_hour`` international calls started
    in any hour, ``max_minutes_per_day`` minutes of answered outside calls in a UTC day.
    """

    model_config = _FROZEN
    allowed_classes: frozenset[NumberClass] | None = None
    allowed_countries: frozenset[str] = frozenset()
    blocked_countries: frozenset[str] = frozenset()
    max_outbound_calls: int | None = Field(default=None, ge=0, le=1_000_000)
    max_international_per_hour: int | None = Field(default=None, ge=0, le=1_000_000)
    max_minutes_per_day: int | None = Field(default=None, ge=0, le=100_000_000)
    # The number the emergency service sees (and has the street address of).
    emergency_caller_id: str | None = None

    @field_validator("allowed_classes", mode="before")
    @classmethod
    def _valid_classes(cls, value: Any) -> Any:
        return _classes(value)

    @field_validator("allowed_countries", "blocked_countries", mode="before")
    @classmethod
    def _valid_countries(cls, value: Any) -> Any:
        return _countries(value)

    @field_validator("emergency_caller_id", mode="before")
    @classmethod
    def _valid_caller_id(cls, value: Any) -> Any:
        return _caller_id(value)

    def classes(self, inherited: frozenset[NumberClass]) -> frozenset[NumberClass]:
        return inherited if self.allowed_classes is None else self.allowed_classes


class UserCalling(_Calling):
    """A user's own permissions and caps (see ``_Calling``), within the tenant's."""


class TenantCalling(_Calling):
    """A tenant's permissions and caps (see ``_Calling``) and its emergency trunk: the
    trunk emergency calls go out through first (the outbound route follows it; none set:
    the outbound route alone)."""

    emergency_trunk: str | None = Field(default=None, min_length=1, max_length=64)

    def allowed(self) -> frozenset[NumberClass]:
        return self.classes(DEFAULT_CLASSES)
