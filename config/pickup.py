"""Call pickup settings of a tenant (``Tenant.pickup``).

Directed pickup: a user dials ``directed_prefix`` + an extension (``**101``) and takes the
call ringing that extension (Asterisk's ``Pickup()``, FreeSWITCH's ``intercept``; a phone's
busy-lamp key on a ringing lamp dials the same code). Group pickup: a user dials
``group_code`` (``*8``, Asterisk's ``pickupexten``) and takes the call that has been
ringing longest at a member of any pickup group the user belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.numbers import Extension
from config.routing import FeatureCode

__all__ = [
    "GROUP_PICKUP",
    "PICKUP_KIND",
    "PickupGroup",
    "PickupSettings",
    "pickup_feature_codes",
    "pickup_problems",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: The routing node kind of the pickup codes (routing.plan TargetKind.PICKUP).
PICKUP_KIND = "pickup"

#: The ref of the group code's node: a call ringing any of the picker's groups.
GROUP_PICKUP = "group"


class PickupGroup(BaseModel):
    """Users who may pick up each other's ringing calls with the group code."""

    model_config = _FROZEN
    name: str = Field(min_length=1, max_length=64)
    members: tuple[Extension, ...] = Field(min_length=1)


class PickupSettings(BaseModel):
    """A tenant's pickup codes and groups (see the module docstring)."""

    model_config = _FROZEN
    directed_prefix: str = Field(default="**", pattern=r"^[*#][*#0-9]{0,3}$")
    group_code: str = Field(default="*8", pattern=r"^[*#][*#0-9]{0,4}$")
    groups: tuple[PickupGroup, ...] = ()

    @field_validator("groups")
    @classmethod
    def _unique(cls, groups: tuple[PickupGroup, ...]) -> tuple[PickupGroup, ...]:
        names = [g.name for g in groups]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"pickup group names must be unique: {', '.join(twice)}")
        return groups

    @model_validator(mode="after")
    def _codes_apart(self) -> PickupSettings:
        if self.group_code.startswith(self.directed_prefix):
            rest = self.group_code[len(self.directed_prefix) :]
            if rest.isascii() and rest.isdigit():
                raise ValueError(
                    f"group code {self.group_code!r} is the directed prefix plus {rest!r}"
                )
        return self

    def groups_of(self, extension: str) -> tuple[PickupGroup, ...]:
        """The groups ``extension`` belongs to."""
        return tuple(g for g in self.groups if extension in g.members)

    def colleagues(self, extension: str) -> frozenset[str]:
        """Everyone whose ringing calls ``extension`` may take with the group code."""
        return frozenset(m for g in self.groups_of(extension) for m in g.members) - {extension}


def pickup_feature_codes(
    pickup: PickupSettings | None, extensions: Iterable[str]
) -> dict[str, FeatureCode]:
    """Routing's feature codes of pickup: the directed prefix before each user's
    extension (ref the extension), and the group code (ref ``GROUP_PICKUP``)."""
    if pickup is None:
        return {}
    codes = {
        pickup.directed_prefix + ext: FeatureCode(kind=PICKUP_KIND, ref=ext) for ext in extensions
    }
    codes[pickup.group_code] = FeatureCode(kind=PICKUP_KIND, ref=GROUP_PICKUP)
    return codes


def pickup_problems(
    pickup: PickupSettings | None, users: frozenset[str], taken: frozenset[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with ``pickup`` in its tenant: members who are not users, codes
    dialled otherwise (``taken``: extensions and other feature codes)."""
    if pickup is None:
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for index, group in enumerate(pickup.groups):
        for member in group.members:
            if member not in users:
                problems.append(
                    (("pickup", "groups", index, "members"), f"{member} is not a user's extension")
                )
    if pickup.group_code in taken:
        problems.append(
            (("pickup", "group_code"), f"{pickup.group_code} already dialled otherwise")
        )
    clash = sorted(c for c in taken if c.startswith(pickup.directed_prefix))
    if clash:
        problems.append(
            (("pickup", "directed_prefix"), f"{', '.join(clash)} already dialled otherwise")
        )
    return problems
