"""Voicemail settings: mailboxes, the inbox's keys, and how a mailbox tells its owner
about new messages by email.

``[voicemail]`` (:class:`VoicemailSettings`) says where audio is kept; each tenant's
``[tenants.voicemail]`` (:class:`TenantVoicemail`) its PIN, limits and key layout and its
mailboxes' settings. The email part is shared with the notifier (:mod:`softswitch.notify`),
which only reads it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.routable import add_routable
from config.routing import FeatureCode

__all__ = [
    "MENU_KEYS",
    "EmailNotification",
    "Greeting",
    "InboxKeys",
    "Mailbox",
    "TenantVoicemail",
    "VoicemailSettings",
    "routable_mailboxes",
]

# Deliberately simple: one @, no spaces or control characters, a dotted domain. Real
# validation of a mailbox is the SMTP server's answer.
_ADDRESS = re.compile(r"[^@\s\x00-\x1f\x7f<>,;]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


class EmailNotification(BaseModel):
    """``email`` of a mailbox: who is told of a new message, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: tuple[str, ...] = Field(min_length=1, max_length=10)
    attach_audio: bool = True  # the message as a WAV attachment
    delete_after_email: bool = False  # only with attach_audio: the mail is the message
    # Remind every N minutes while new messages stay unheard (0 = no reminders).
    reminder_minutes: int = Field(default=0, ge=0, le=10_080)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not _ADDRESS.fullmatch(address):
                raise ValueError(f"not an email address: {address!r}")
        return value

    @field_validator("delete_after_email")
    @classmethod
    def _only_with_audio(cls, value: bool, info: object) -> bool:
        data = getattr(info, "data", {})
        if value and not data.get("attach_audio", True):
            raise ValueError("delete_after_email needs attach_audio (the mail is the message)")
        return value


# --------------------------------------------------------------------------- mailboxes

_FROZEN = ConfigDict(extra="forbid", frozen=True)
_PIN = r"[0-9]{4,12}"
_KEY = re.compile(r"[0-9*#]")


class Greeting(StrEnum):
    """A mailbox's greetings; ``temporary``, while set, replaces both unavailable and busy."""

    UNAVAILABLE = "unavailable"
    BUSY = "busy"
    TEMPORARY = "temporary"
    NAME = "name"  # the recorded name, said in the default greetings and the envelope


class Mailbox(BaseModel):
    """``[tenants.voicemail.mailboxes.<extension>]``: one mailbox's settings.

    Every user has a mailbox (``routing.users.<ext>.voicemail`` false turns it off); a table
    here only changes its settings. An extension that is not a user's is a shared mailbox
    (a company's general box): reached as a DID treatment, a forward or a menu option, and
    listened to by dialling in with its PIN; ``lamp_users`` light their lamps for it.
    """

    model_config = _FROZEN

    name: str = Field(default="", max_length=100)  # said when no name is recorded
    pin: str | None = Field(default=None, pattern=_PIN)  # None: the tenant's default_pin
    email: EmailNotification | None = None
    operator: str | None = Field(default=None, pattern=r"[0-9+*#]{1,32}")  # key 0
    newest_first: bool = False  # the order messages are played in
    max_messages: int | None = Field(default=None, ge=1, le=10_000)  # quota
    max_message_seconds: int | None = Field(default=None, ge=5, le=3600)
    lamp_users: tuple[str, ...] = ()  # extensions that light their lamps (besides the owner)
    # Greetings as text, spoken by text-to-speech; a recorded or uploaded one wins.
    greetings: dict[Greeting, str] = Field(default_factory=dict)

    @field_validator("greetings")
    @classmethod
    def _texts(cls, value: dict[Greeting, str]) -> dict[Greeting, str]:
        for kind, text in value.items():
            if not text.strip() or len(text) > 1000:
                raise ValueError(f"{kind.value}: the text must be 1-1000 characters")
        return value


class InboxKeys(BaseModel):
    """The keys of the inbox by phone, as users know them from Asterisk's voicemail.

    Main menu: ``new`` and ``saved`` messages, mailbox ``options``, ``exit``. After each
    message: ``repeat``, ``previous``, ``next``, ``delete`` (on a deleted message: undelete),
    ``save``, ``forward`` to another mailbox, ``envelope`` (caller and time), ``callback``
    and ``main_menu``. Mailbox options: record the ``unavailable``, ``busy``, ``name`` and
    ``temporary`` greetings, change the ``password``, ``back`` to the main menu.
    """

    model_config = _FROZEN

    new: str = "1"
    saved: str = "2"
    options: str = "0"
    exit: str = "#"

    repeat: str = "5"
    previous: str = "4"
    next: str = "6"
    delete: str = "7"
    forward: str = "8"
    save: str = "9"
    envelope: str = "3"
    callback: str = "2"
    main_menu: str = "*"

    unavailable: str = "1"
    busy: str = "2"
    name: str = "3"
    temporary: str = "4"
    password: str = "5"
    back: str = "*"

    @model_validator(mode="after")
    def _distinct(self) -> InboxKeys:
        for menu, fields in MENU_KEYS.items():
            seen: dict[str, str] = {}
            for field in fields:
                key = getattr(self, field)
                if not _KEY.fullmatch(key):
                    raise ValueError(f"{field}: {key!r} is not a key (0-9, * or #)")
                if key in seen:
                    raise ValueError(
                        f"{field}: key {key!r} is already {seen[key]!r} in the {menu} menu"
                    )
                seen[key] = field
        return self


#: The fields of each menu of :class:`InboxKeys` (keys must differ within a menu).
MENU_KEYS: dict[str, tuple[str, ...]] = {
    "main": ("new", "saved", "options", "exit"),
    "message": (
        "repeat", "previous", "next", "delete", "forward", "save", "envelope", "callback",
        "main_menu",
    ),
    "options": ("unavailable", "busy", "name", "temporary", "password", "back"),
}  # fmt: skip


class TenantVoicemail(BaseModel):
    """``[tenants.voicemail]``: a tenant's voicemail rules and its mailboxes' settings."""

    model_config = _FROZEN

    mailboxes: dict[str, Mailbox] = Field(default_factory=dict)
    default_pin: str | None = Field(default=None, pattern=_PIN)  # None: no PIN, no login
    pin_attempts: int = Field(default=3, ge=1, le=20)  # wrong PINs in a row before lockout
    # How long a locked mailbox stays locked; 0 = until `softswitch voicemail unlock`.
    lockout_minutes: int = Field(default=30, ge=0, le=10_080)
    max_messages: int = Field(default=100, ge=1, le=10_000)
    max_message_seconds: int = Field(default=180, ge=5, le=3600)
    min_message_seconds: float = Field(default=2.0, ge=0, le=60)  # shorter: nothing is kept
    operator: str | None = Field(default=None, pattern=r"[0-9+*#]{1,32}")  # key 0
    # Feature codes: your own mailbox (from your phone) and any mailbox (asks its number).
    check_code: str = Field(default="*97", pattern=r"\*[0-9]{1,4}")
    access_code: str = Field(default="*98", pattern=r"\*[0-9]{1,4}")
    timezone: str = "UTC"  # times said in the envelope
    keys: InboxKeys = Field(default_factory=InboxKeys)

    @field_validator("mailboxes")
    @classmethod
    def _extensions(cls, value: dict[str, Mailbox]) -> dict[str, Mailbox]:
        for ext in value:
            if not (ext.isascii() and ext.isdigit() and 2 <= len(ext) <= 8):
                raise ValueError(f"mailbox {ext!r}: an extension is 2 to 8 digits")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _codes(self) -> TenantVoicemail:
        if self.check_code == self.access_code:
            raise ValueError("check_code and access_code must differ")
        return self

    def feature_codes(self) -> dict[str, FeatureCode]:
        """The inbox codes as routing's feature codes (application nodes)."""
        return {
            self.check_code: FeatureCode(kind="voicemail_inbox", own=True),
            self.access_code: FeatureCode(kind="voicemail_inbox"),
        }

    def problems(
        self, users: set[str], shared: frozenset[str], disabled: set[str]
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-references against the tenant: (location under voicemail, message)."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        for ext, box in self.mailboxes.items():
            if ext in disabled:
                out.append((("mailboxes", ext), "the user's voicemail is turned off"))
            elif ext not in users and ext not in shared:
                out.append(
                    (("mailboxes", ext), "not a user: add it to routing.mailboxes as a shared box")
                )
            for i, lamp in enumerate(box.lamp_users):
                if lamp not in users:
                    out.append((("mailboxes", ext, "lamp_users", i), "not a user of this tenant"))
        return out


class VoicemailSettings(BaseModel):
    """``[voicemail]``: where messages and greetings are kept (metadata is in the Store)."""

    model_config = _FROZEN

    directory: Path = Path("data/voicemail")


def routable_mailboxes(data: Any) -> Any:
    """A tenant's raw data with its shared mailboxes (``voicemail.mailboxes`` that are not
    users) listed in ``routing.mailboxes``, so they are routing destinations without
    repeating them there (as conference bridges are)."""
    if not isinstance(data, dict):
        return data
    vm = data.get("voicemail")
    boxes = vm.mailboxes if isinstance(vm, TenantVoicemail) else (vm or {}).get("mailboxes")
    if not isinstance(boxes, dict) or not boxes:
        return data
    users = set()
    for user in data.get("users") or ():
        ext = user.get("extension") if isinstance(user, dict) else getattr(user, "extension", None)
        users.add(str(ext))
    shared = {str(ext) for ext in boxes if str(ext) not in users}
    if not shared:
        return data
    return add_routable(data, "mailboxes", shared)
