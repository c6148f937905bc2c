"""``[security]``: password guessing, scanners and floods (softswitch.security.guard)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DEFAULT_SCANNER_USER_AGENTS", "SecuritySettings"]

#: User-Agent fragments of well-known SIP scanners (matched case-insensitively anywhere in
#: the header): SIPVicious (svmap/svwar/svcrack: "friendly-scanner", newer "sipvicious"),
#: sipcli, sip-scan, VaxSIPUserAgent, sundayddr, iWar, SIParator's probe, smap, pplsip.
DEFAULT_SCANNER_USER_AGENTS: tuple[str, ...] = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "vaxsipuseragent",
    "sundayddr",
    "iwar",
    "sip-scanner",
    "smap",
    "pplsip",
)


class SecuritySettings(BaseModel):
    """Failed-digest counting and bans, allow lists, scanner and flood filtering.

    A source address is banned after ``max_failures`` failed digest authentications within
    ``failure_window`` seconds (a leaky count: each failure adds one, the count drains at
    ``max_failures / failure_window`` per second). An account that collects
    ``account_max_failures`` failures within ``account_window`` seconds, from addresses
    that never registered it, is *under attack*: every further failure for it bans its
    source at once (a slow guesser below the per-source rate is caught here); its own
    phones' addresses are never banned nor refused for it. The ban lasts ``ban_time``
    seconds, multiplied by ``ban_growth`` for every earlier ban of the same address (up
    to ``max_ban_time``); bans are stored and survive a restart.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    max_failures: int = Field(default=10, ge=1, le=10_000)
    failure_window: float = Field(default=60.0, gt=0, le=86_400)
    account_max_failures: int = Field(default=20, ge=1, le=100_000)
    account_window: float = Field(default=3600.0, gt=0, le=7 * 86_400)
    ban_time: float = Field(default=600.0, gt=0, le=365 * 86_400)
    ban_growth: float = Field(default=4.0, ge=1, le=100)
    max_ban_time: float = Field(default=7 * 86_400.0, gt=0, le=10 * 365 * 86_400)
    # A ban's earlier offences count towards the next one for this long after it ends.
    offence_memory: float = Field(default=7 * 86_400.0, ge=0, le=10 * 365 * 86_400)
    # "drop": no answer at all (cheapest, and a scanner learns nothing); "reject": 403.
    banned_answer: Literal["drop", "reject"] = "drop"
    # Addresses or CIDRs never banned nor rate limited (the office, the carriers); trunks'
    # inbound addresses and gateway IPs are added to it automatically.
    allow: tuple[str, ...] = ()
    # New OPTIONS/REGISTER/INVITE per source and second (token bucket of `burst`); 0 = off.
    rate: float = Field(default=50.0, ge=0, le=1_000_000)
    burst: int = Field(default=100, ge=1, le=1_000_000)
    # A source whose requests the rate limit dropped this many times in a row is banned.
    flood_ban_after: int = Field(default=1000, ge=0, le=100_000_000)  # 0 = never
    scanner_user_agents: tuple[str, ...] = DEFAULT_SCANNER_USER_AGENTS
    ban_scanners: bool = True  # a scanner's address is banned at its first request
    # Alarm when an account registers from a new address after this many recent failures.
    alarm_after_failures: int = Field(default=5, ge=1, le=100_000)
    # Bounds on the memory kept per source / account (least recently seen go first).
    max_tracked: int = Field(default=65_536, ge=16, le=10_000_000)
    # Seconds between reads of the stored bans (lifts and other nodes' bans take effect).
    sync_interval: float = Field(default=2.0, gt=0, le=3600)
    # Server (answers) / User-Agent (our requests) header; default: no version number.
    server_header: str = Field(default="softswitch", min_length=1, max_length=200)
    # CA (PEM) of trunks' client certificates when a trunk names none (config/security_tls).
    trunk_ca_file: Path | None = None

    @field_validator("allow", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list of addresses or CIDRs")
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return tuple(out)

    @field_validator("scanner_user_agents", mode="before")
    @classmethod
    def _fragments(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of strings")
        if any(not v.strip() for v in value):
            raise ValueError("an empty fragment would match every User-Agent")
        return tuple(v.strip().lower() for v in value)

    @field_validator("server_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if any(c in value for c in "\r\n\0"):
            raise ValueError("must be one line")
        return value.strip()

    @model_validator(mode="after")
    def _bans(self) -> SecuritySettings:
        if self.max_ban_time < self.ban_time:
            raise ValueError("max_ban_time must not be shorter than ban_time")
        if self.trunk_ca_file is not None and not self.trunk_ca_file.is_file():
            raise ValueError(f"trunk_ca_file {str(self.trunk_ca_file)!r} is not a readable file")
        return self
