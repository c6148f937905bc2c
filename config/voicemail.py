"""Voicemail settings: how a mailbox tells its owner about new messages by email.

The mailbox model itself grows here with the voicemail application; the email part is
shared with the notifier (:mod:`softswitch.notify`), which only reads it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["EmailNotification"]

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
