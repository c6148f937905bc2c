"""Notification settings: the SMTP server voicemail mail goes through (``[smtp]``) and the
bounds on SIP event subscriptions (``[subscriptions]``: busy lamps, message waiting)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["SmtpSettings", "SubscriptionSettings"]

_ADDRESS = re.compile(r"[^@\s\x00-\x1f\x7f<>,;]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


class SmtpSettings(BaseModel):
    """``[smtp]``: where notification mail is handed over.

    ``security``: "starttls" upgrades a plain connection (port 587), "tls" speaks TLS from
    the first byte (port 465), "none" sends in clear (a relay on the same host or LAN).
    ``username``/``password`` log in when given (both or neither). A temporary failure is
    retried ``retries`` times, the wait doubling from ``retry_delay`` seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = Field(default=None, min_length=1, max_length=256)
    password: SecretStr | None = None
    from_address: str = Field(max_length=254)
    from_name: str = Field(default="Voicemail", max_length=100)
    timeout: float = Field(default=30.0, gt=0, le=600)
    retries: int = Field(default=5, ge=0, le=20)
    retry_delay: float = Field(default=30.0, gt=0, le=3600)
    verify_certificate: bool = True

    @field_validator("from_address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _ADDRESS.fullmatch(value):
            raise ValueError(f"not an email address: {value!r}")
        return value

    @field_validator("from_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("must not contain control characters")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (both or neither)")
        return self


class SubscriptionSettings(BaseModel):
    """``[subscriptions]``: SUBSCRIBE policy (RFC 6665), seconds and counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_expires: int = Field(default=60, ge=1)
    max_expires: int = Field(default=3600, ge=1)
    per_subscriber: int = Field(default=100, ge=1, le=10_000)  # e.g. a sidecar of BLF keys
    total: int = Field(default=100_000, ge=1)
    # Out-of-dialog message-summary NOTIFYs to registered phones that do not subscribe.
    unsolicited_mwi: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> SubscriptionSettings:
        if self.max_expires < self.min_expires:
            raise ValueError("max_expires must not be smaller than min_expires")
        return self
