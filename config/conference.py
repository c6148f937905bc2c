"""Conference bridges and live-call monitoring settings of a tenant.

A bridge is reached by its extension, its optional direct number (DID) or from an auto
attendant.  PINs are optional, but as on hosted-PBX portals a bridge has both a leader and
a participant PIN or neither, and "require a leader" needs them.  Cross-checks against the
rest of the tenant (unique names and extensions, owner is a user, extensions not taken by
users) are done by the tenant model, which knows them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from config.locations import Loc, format_location
from config.numbers import E164

__all__ = ["ConferenceBridge", "MonitorCodes"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _located(items: list[tuple[Loc, str]]) -> PydanticCustomError:
    # the multi-location error shape of config.models, so the loader names each field
    summary = "; ".join(f"{format_location(loc)}: {msg}" for loc, msg in items)
    return PydanticCustomError("switch_config", "{summary}", {"summary": summary, "items": items})


def _digits(value: Any, low: int, high: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)  # TOML `extension = 6000`
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise ValueError("must be digits")
    if not low <= len(value) <= high:
        raise ValueError(f"must be {low} to {high} digits")
    return value


class ConferenceBridge(BaseModel):
    """One conference bridge as an admin configures it.

    ``owner`` is the extension of the user who owns the bridge; None makes it a dedicated
    bridge.  ``min_participants``: callers hear music on hold until that many are in (and,
    with ``require_leader``, until a leader has entered the leader PIN).  ``announce``
    plays a tone when someone joins or leaves; ``record_names`` asks each caller to say
    their name, which is played to the conference on join (and with the leave tone).
    """

    model_config = _FROZEN
    name: str = Field(min_length=1, max_length=64)
    extension: str
    did: E164 | None = None
    leader_pin: str | None = None
    participant_pin: str | None = None
    max_participants: int = Field(default=50, ge=2, le=1000)
    min_participants: int = Field(default=1, ge=1, le=1000)
    require_leader: bool = False
    announce: bool = False
    record_names: bool = False
    owner: str | None = None

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or not value.strip():
            raise ValueError("must be printable text")
        return value.strip()

    @field_validator("extension", "owner", mode="before")
    @classmethod
    def _extension(cls, value: Any) -> str | None:
        return None if value is None else _digits(value, 2, 8)

    @field_validator("leader_pin", "participant_pin", mode="before")
    @classmethod
    def _pin(cls, value: Any) -> str | None:
        return None if value is None else _digits(value, 3, 12)

    @model_validator(mode="after")
    def _pins_and_limits(self) -> ConferenceBridge:
        items: list[tuple[Loc, str]] = []
        leader, participant = self.leader_pin, self.participant_pin
        if (leader is None) != (participant is None):
            missing = "participant_pin" if participant is None else "leader_pin"
            items.append(((missing,), "required when the other PIN is set (both or neither)"))
        elif leader is not None and leader == participant:
            items.append((("participant_pin",), "must differ from leader_pin"))
        if self.require_leader and leader is None:
            items.append((("require_leader",), "needs leader_pin and participant_pin"))
        if self.min_participants > self.max_participants:
            items.append((("min_participants",), "must not exceed max_participants"))
        if items:
            raise _located(items)
        return self

    @property
    def has_pins(self) -> bool:
        """Whether callers are asked for a PIN."""
        return self.leader_pin is not None


class MonitorCodes(BaseModel):
    """Feature codes a supervisor dials, followed by the agent's extension, to monitor a
    live call in listen-only, whisper or barge mode (e.g. ``*51`` + ``100``)."""

    model_config = _FROZEN
    listen: str = "*51"
    whisper: str = "*52"
    barge: str = "*53"

    @field_validator("listen", "whisper", "barge")
    @classmethod
    def _code(cls, value: str) -> str:
        if not 2 <= len(value) <= 8 or not all(c in "0123456789*#" for c in value):
            raise ValueError("must be 2 to 8 of the keys 0-9, * and #")
        return value

    @model_validator(mode="after")
    def _distinct_prefixes(self) -> MonitorCodes:
        codes = [("listen", self.listen), ("whisper", self.whisper), ("barge", self.barge)]
        items: list[tuple[Loc, str]] = []
        for i, (name, code) in enumerate(codes):
            for other, prefix in codes[:i]:
                if code.startswith(prefix) or prefix.startswith(code):
                    items.append(((name,), f"clashes with {other} code {prefix!r}"))
        if items:
            raise _located(items)
        return self

    def parse(self, dialed: str) -> tuple[str, str] | None:
        """(mode, extension) for a dialed monitor code, None if ``dialed`` is not one."""
        for mode in ("listen", "whisper", "barge"):
            code: str = getattr(self, mode)
            rest = dialed[len(code) :]
            if dialed.startswith(code) and rest.isascii() and rest.isdigit():
                return mode, rest
        return None
