"""Carrier trunks of a tenant: gateways to send calls to, addresses allowed to send calls in,
number formats and caller ID.

A trunk either authenticates by address (``inbound_addresses``) or registers to the
carrier with digest credentials (``registration``), or both.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from config.numbers import NumberError, to_e164
from config.security_media import SrtpPolicy
from config.security_tls import TrunkTls

__all__ = ["Gateway", "Trunk"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Gateway(BaseModel):
    """One carrier SIP server. Lower ``priority`` is tried first; ``weight`` spreads calls
    between gateways of equal priority."""

    model_config = _FROZEN
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    priority: int = Field(default=0, ge=0, le=1000)
    weight: int = Field(default=1, ge=1, le=1000)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip().lower()
        bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        try:
            return str(ipaddress.ip_address(bare))
        except ValueError:
            pass
        if not all(part and (part.isalnum() or "-" in part) for part in value.split(".")):
            raise ValueError("must be a host name or IP address")
        return value


class Trunk(BaseModel):
    """A carrier connection.

    ``inbound_addresses``: addresses or CIDRs allowed to send calls in (IP authentication).
    ``number_format``: how numbers are written towards the carrier: ``e164`` (``+14155550100``)
    or ``national`` (national significant digits in ``region``); ``strip_prefix`` is removed
    from and ``add_prefix`` put before the result. ``caller_id`` is the number presented when
    the calling user has none of their own.

    Identity (RFC 3325): ``trust_identity`` makes the carrier part of our trust domain inbound:
    its P-Asserted-Identity names the caller (from anyone else PAI is ignored and never passed
    on). Outbound, ``caller_id_policy`` picks the number in From: ``user`` (the calling user's
    caller ID, else ``caller_id``) or ``trunk`` (always ``caller_id``); ``send_pai`` adds a
    P-Asserted-Identity with the user's own caller ID, which a withheld call (Privacy: id)
    needs so the carrier can still bill and route emergency calls.
    """

    model_config = _FROZEN
    name: str = Field(min_length=1, max_length=64)
    gateways: tuple[Gateway, ...] = Field(min_length=1)
    inbound_addresses: tuple[str, ...] = ()
    number_format: Literal["e164", "national"] = "e164"
    region: str = Field(default="US", min_length=2, max_length=2)
    strip_prefix: str = Field(default="", max_length=16, pattern=r"^\+?[0-9]*$")
    add_prefix: str = Field(default="", max_length=16, pattern=r"^\+?[0-9*#]*$")
    caller_id: str | None = None
    trust_identity: bool = False
    caller_id_policy: Literal["user", "trunk"] = "user"
    send_pai: bool = True
    max_calls: int | None = Field(default=None, ge=1, le=1_000_000)
    max_calls_per_second: float | None = Field(default=None, gt=0, le=100_000)
    # Outbound registration (RFC 3261 10.2) to the first gateway, refreshed before expiry.
    registration: bool = False
    username: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._~!$&'()*+,;=+-]+$"
    )
    password: SecretStr | None = None
    register_domain: str | None = Field(default=None, min_length=1, max_length=253)
    register_expires: int = Field(default=600, ge=30, le=86400)
    srtp: SrtpPolicy = "optional"  # SRTP on this trunk's legs (config/security_media.py)
    tls: TrunkTls = Field(default_factory=TrunkTls)  # mutual TLS (config/security_tls.py)

    @model_validator(mode="after")
    def _registration(self) -> Trunk:
        if self.registration and (self.username is None or self.password is None):
            raise ValueError("registration = true needs username and password")
        if self.caller_id_policy == "trunk" and self.caller_id is None:
            raise ValueError('caller_id_policy = "trunk" needs caller_id')
        return self

    @field_validator("inbound_addresses")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return tuple(out)

    @field_validator("caller_id")
    @classmethod
    def _caller_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return to_e164(value)
        except NumberError as exc:
            raise ValueError(str(exc)) from None

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n) for n in self.inbound_addresses]

    def format_number(self, e164: str) -> str:
        """An E.164 number as this carrier wants it in the Request-URI and To."""
        number = e164
        if self.number_format == "national":
            try:
                parsed = phonenumbers.parse(e164, None)
                number = str(phonenumbers.national_significant_number(parsed))
            except phonenumbers.NumberParseException:
                number = e164.lstrip("+")
        if self.strip_prefix and number.startswith(self.strip_prefix):
            number = number[len(self.strip_prefix) :]
        return self.add_prefix + number

    def gateway_order(self) -> list[Gateway]:
        """Gateways in the order to try them: by priority; equal priorities by weight."""
        # Weighted random order within a priority (Efraimidis-Spirakis): a gateway of weight
        # w comes first with probability w / (sum of weights).
        keys = {id(g): (g.priority, -(random.random() ** (1.0 / g.weight))) for g in self.gateways}
        return sorted(self.gateways, key=lambda g: keys[id(g)])
