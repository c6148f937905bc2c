"""Number models: E.164 numbers, the DID inventory, disaster plans and block/allow lists.

E.164 validation uses ``phonenumbers`` (a pure data library) so that a bad number is refused
where it enters the configuration, with the field named.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class NumberError(ValueError):
    """A number that is not a valid E.164 number; ``reason`` is for people."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{value!r}: {reason}")
        self.value = value
        self.reason = reason


def to_e164(value: str | int, region: str | None = None) -> str:
    """Validate ``value`` and return it as E.164 (``+<cc><number>``).

    Without ``region`` the number must carry its country code (``+``); with it, national
    formats of that region are accepted too. Spaces, dashes, dots and parentheses are ignored.
    Raises ``NumberError`` with a reason an admin understands.
    """
    if isinstance(value, bool):
        raise NumberError(str(value), "not a phone number")
    text = str(value).strip()
    if not text:
        raise NumberError(text, "empty number")
    if len(text) > 32:
        raise NumberError(text[:32], "too long for a phone number")
    if region is None and not text.startswith("+"):
        raise NumberError(text, "missing '+' and country code (E.164: +<country><area><number>)")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise NumberError(text, _PARSE_REASONS.get(exc.error_type, "not a phone number")) from None
    if not phonenumbers.is_possible_number(parsed):
        raise NumberError(text, "wrong length for its country")
    if not phonenumbers.is_valid_number(parsed):
        raise NumberError(text, "not a valid number in its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


def is_toll_free(e164: str) -> bool:
    """True for a toll-free number (e.g. +1 800...)."""
    parsed = phonenumbers.parse(e164, None)
    return phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.TOLL_FREE


def _e164(value: Any) -> str:
    if not isinstance(value, str | int):
        raise ValueError("a phone number must be a string")
    return to_e164(value)


E164 = Annotated[str, AfterValidator(_e164)]

_EXTENSION_RE = re.compile(r"^[0-9A-Za-z_.*#-]{1,32}$")


def _extension(value: str) -> str:
    if not _EXTENSION_RE.match(value) or value.startswith("+"):
        raise ValueError(f"invalid extension {value!r}")
    return value


Extension = Annotated[str, AfterValidator(_extension)]


class Treatment(StrEnum):
    """Where a DID sends its calls."""

    USER = "user"
    QUEUE = "queue"
    CONFERENCE = "conference"
    VOICEMAIL = "voicemail"
    AUTO_ATTENDANT = "auto_attendant"
    OFFNET = "offnet"
    FAX = "fax"
    RING_GROUP = "ring_group"


class Did(BaseModel):
    """A number in the inventory and its treatment.

    ``destination`` is an extension (user, queue, conference, voicemail box, auto attendant),
    an E.164 number (offnet) or a fax destination. ``caller_id_prefix`` is prepended to the
    caller's name so agents see which number was dialled.
    """

    model_config = _FROZEN
    number: E164
    treatment: Treatment = Treatment.USER
    destination: str = Field(default="", max_length=64)
    caller_id_prefix: str = Field(default="", max_length=32)
    notes: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _check(self) -> Did:
        if self.treatment is Treatment.OFFNET:
            object.__setattr__(self, "destination", to_e164(self.destination))
        elif self.treatment is not Treatment.FAX and not self.destination:
            raise ValueError(f"treatment {self.treatment.value} needs a destination")
        return self


class NumberType(StrEnum):
    DID = "did"
    TOLL_FREE = "toll_free"


class DisasterStatus(StrEnum):
    SAVED = "saved"
    ENABLED = "enabled"


class DisasterNumber(BaseModel):
    """One number of a disaster plan and the outside number it forwards to when enabled."""

    model_config = _FROZEN
    number: E164
    forward_to: E164

    @model_validator(mode="after")
    def _check(self) -> DisasterNumber:
        if self.number == self.forward_to:
            raise ValueError(f"{self.number} forwards to itself")
        return self


class DisasterEvent(BaseModel):
    """An execute or revert of a plan: who did it and when."""

    model_config = _FROZEN
    action: Literal["execute", "revert"]
    by: str = Field(min_length=1, max_length=120)
    at: dt.datetime

    @field_validator("at")
    @classmethod
    def _aware(cls, at: dt.datetime) -> dt.datetime:
        if at.tzinfo is None:
            raise ValueError("event time must carry a timezone")
        return at


class DisasterPlan(BaseModel):
    """A carrier-style disaster plan: while enabled its numbers forward to outside numbers."""

    model_config = _FROZEN
    name: str = Field(min_length=1, max_length=80)
    region: str = Field(default="", max_length=80)
    number_type: NumberType = NumberType.DID
    status: DisasterStatus = DisasterStatus.SAVED
    numbers: tuple[DisasterNumber, ...] = ()
    history: tuple[DisasterEvent, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> DisasterPlan:
        seen: set[str] = set()
        for entry in self.numbers:
            if entry.number in seen:
                raise ValueError(f"{entry.number} appears twice in plan {self.name!r}")
            seen.add(entry.number)
            toll_free = is_toll_free(entry.number)
            if toll_free != (self.number_type is NumberType.TOLL_FREE):
                kind = "toll-free" if toll_free else "not toll-free"
                raise ValueError(
                    f"{entry.number} is {kind} but plan {self.name!r} is {self.number_type.value}"
                )
        return self

    @property
    def enabled(self) -> bool:
        return self.status is DisasterStatus.ENABLED


class SpamTreatment(StrEnum):
    """What to do with a call marked as spam (e.g. by a STIR/SHAKEN verification result)."""

    RING = "ring"
    VOICEMAIL = "voicemail"
    DROP = "drop"
    SCREEN = "screen"


def _list_entry(value: str) -> str:
    # A trailing '*' makes a prefix entry ("+1900*"); anything else must be a number or an
    # extension so that typos are caught instead of silently never matching.
    text = value.strip()
    prefix = text.endswith("*")
    body = text[:-1] if prefix else text
    if body.startswith("+"):
        digits = body[1:]
        if not (digits.isascii() and digits.isdigit()) or (
            not prefix and not 7 <= len(digits) <= 15
        ):
            raise ValueError(f"invalid number {value!r} in block/allow list")
        if not prefix:
            body = to_e164(body)
    elif not body or not _EXTENSION_RE.match(body):
        raise ValueError(f"invalid entry {value!r} in block/allow list")
    return body + ("*" if prefix else "")


ListEntry = Annotated[str, AfterValidator(_list_entry)]


class BlockList(BaseModel):
    """Block and allow lists (per user or per tenant); an allow entry overrides a block.

    ``spam`` None inherits the tenant's treatment (or rings normally at tenant level).
    """

    model_config = _FROZEN
    blocked: frozenset[ListEntry] = frozenset()
    allowed: frozenset[ListEntry] = frozenset()
    block_anonymous: bool = False
    spam: SpamTreatment | None = None
