"""Call park settings of a tenant (``Tenant.park``).

Orbits are a range of extensions (``7001-7010``): a call transferred to an orbit (or
dialling it) is parked there; a call dialling a parked orbit retrieves the parked caller.
The park code (``*70``, Asterisk's ``parkext``, FreeSWITCH's ``valet_park auto in``) parks
in the first free orbit and announces its number. A call nobody retrieves within
``timeout`` seconds rings the parker back for ``ring_back`` seconds, then goes to
``fallback`` (an extension or number dialled as the tenant's own; empty: hung up).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.numbers import Extension
from config.routing import FeatureCode

__all__ = ["FIRST_FREE", "PARK_KIND", "ParkSettings", "park_feature_codes"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: The routing node kind of park orbits and the park code (routing.plan TargetKind.PARK).
PARK_KIND = "park"

#: The ref of the park code's node: park in the first free orbit.
FIRST_FREE = "first-free"

#: At most this many orbits per tenant (each one a lamp phones may watch).
MAX_ORBITS = 100


class ParkSettings(BaseModel):
    """A tenant's park orbits (see the module docstring)."""

    model_config = _FROZEN
    orbits: str = "7001-7010"  # first-last, digits of the same length
    code: Extension = "*70"
    timeout: int = Field(default=120, ge=1, le=3600)  # seconds parked before ringing back
    ring_back: int = Field(default=20, ge=1, le=300)  # seconds the parker's phones ring
    fallback: str = ""  # where an unanswered ring-back goes: extension or number, or nothing
    announce: bool = True  # the park code speaks the orbit's number to the parker

    @field_validator("orbits")
    @classmethod
    def _range(cls, value: str) -> str:
        first, dash, last = value.strip().partition("-")
        last = last if dash else first
        if not (first.isascii() and first.isdigit() and last.isascii() and last.isdigit()):
            raise ValueError(f"{value!r} is not a range of extensions such as 7001-7010")
        if len(first) != len(last) or int(last) < int(first):
            raise ValueError(f"{value!r}: the last orbit must be >= the first, same length")
        if int(last) - int(first) + 1 > MAX_ORBITS:
            raise ValueError(f"{value!r}: at most {MAX_ORBITS} orbits")
        return f"{first}-{last}"

    @field_validator("fallback")
    @classmethod
    def _fallback(cls, value: str) -> str:
        value = value.strip()
        if value and not (value.lstrip("+").isascii() and value.lstrip("+").isalnum()):
            raise ValueError(f"{value!r} is not an extension or number")
        return value

    @model_validator(mode="after")
    def _code_apart(self) -> ParkSettings:
        if self.code in self.orbit_extensions():
            raise ValueError(f"park code {self.code!r} is one of the orbits")
        return self

    def orbit_extensions(self) -> tuple[str, ...]:
        """Every orbit, in order (the park code picks the first free one)."""
        first, _, last = self.orbits.partition("-")
        width = len(first)
        return tuple(str(n).zfill(width) for n in range(int(first), int(last) + 1))


def park_feature_codes(park: ParkSettings | None) -> dict[str, FeatureCode]:
    """Routing's feature codes of the park: each orbit, and the park code (ref
    ``FIRST_FREE``)."""
    if park is None:
        return {}
    codes = {orbit: FeatureCode(kind=PARK_KIND, ref=orbit) for orbit in park.orbit_extensions()}
    codes[park.code] = FeatureCode(kind=PARK_KIND, ref=FIRST_FREE)
    return codes
