"""Pydantic models of the switch configuration: runtime settings and provisioning.

One TOML file maps onto `SwitchConfig`. Every model forbids unknown keys so that a typo in
the file is an error instead of a silently ignored setting. Validators that check more than
one field at once (duplicates, TLS files) raise a `switch_config` error that carries the
exact locations in its context; `config.loader` expands it into one error per location.

Over 600 lines because it is the one schema of the configuration file: the runtime
settings and the provisioning model with their cross-field checks; each area with its own
rules (routing, trunks, media, MOH, prompts, security, API) already lives in its own module.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from config.answering import UserRouting
from config.api import ApiSettings
from config.attendant import AutoAttendant, routable_attendants, tenant_attendant_problems
from config.calling import TenantCalling, UserCalling
from config.conference import ConferenceBridge, MonitorCodes
from config.locations import Loc, format_location
from config.locations import config_error as _fail  # the name the validators below use
from config.media import MediaSettings
from config.moh import MusicOnHold
from config.numbers import Treatment
from config.park import ParkSettings, park_feature_codes
from config.pickup import PickupSettings, pickup_feature_codes, pickup_problems
from config.prompts import RECORD_KIND, PromptSettings, TenantPrompts
from config.queues import CallQueue, agent_feature_codes, check_queues, route_queues
from config.routable import add_routable, entry_targets, make_routable, register, set_routing
from config.routing import TenantRouting
from config.security import SecuritySettings
from config.security_media import SrtpPolicy
from config.sites import Site, site_problems
from config.smtp import SmtpSettings, SubscriptionSettings
from config.trunks import Trunk
from config.voicemail import TenantVoicemail, VoicemailSettings, routable_mailboxes

__all__ = [
    "DIGEST_ALGORITHMS",
    "AuthSettings",
    "ConferenceBridge",
    "DatabaseSettings",
    "Listener",
    "LoggingSettings",
    "MonitorCodes",
    "OverloadSettings",
    "RegistrarSettings",
    "Settings",
    "SipSettings",
    "SipTimers",
    "SwitchConfig",
    "Tenant",
    "User",
    "hold_music_for",
]


# Canonical spellings; digest algorithm tokens are case-insensitive on the wire.
DIGEST_ALGORITHMS = ("SHA-256", "MD5", "SHA-256-sess", "MD5-sess")
_CANONICAL_ALGORITHM = {name.upper(): name for name in DIGEST_ALGORITHMS}
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}

DigestAlgorithm = Literal["SHA-256", "MD5", "SHA-256-sess", "MD5-sess"]

_HEX = frozenset(string.hexdigits)
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
# Digest usernames travel as quoted-strings, but ':' would make H(username:realm:password)
# ambiguous and quotes/whitespace trip up real phones, so keep to URI user-part characters.
_USERNAME = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=@-]{1,64}")
_TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _has_control_chars(value: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def _check_host(value: Any, *, what: str = "host name or IP address") -> str:
    """Validate a host name, IPv4 or IPv6 address (IPv6 may be bracketed); return it lowered."""
    if not isinstance(value, str):
        raise ValueError(f"must be a {what}")
    host = value.strip().lower()
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        if bare is host and _HOSTNAME.fullmatch(host):
            return host
        raise ValueError(f"must be a {what}") from None
    return host


# --------------------------------------------------------------------------- runtime settings


class Listener(_Model):
    """One SIP listening socket. Port 0 lets the OS pick (tests)."""

    transport: Literal["udp", "tcp", "tls"]
    host: str = "0.0.0.0"
    port: int = Field(default=5060, ge=0, le=65535)

    @model_validator(mode="before")
    @classmethod
    def _default_tls_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and "port" not in data:
            transport = data.get("transport")
            if isinstance(transport, str) and transport.lower() == "tls":
                return {**data, "port": 5061}
        return data

    @field_validator("transport", mode="before")
    @classmethod
    def _lower_transport(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("host", mode="before")
    @classmethod
    def _valid_host(cls, value: Any) -> str:
        host = _check_host(value)
        return host[1:-1] if host.startswith("[") else host  # bind() wants a bare IPv6


def _default_listeners() -> list[Listener]:
    return [Listener(transport="udp"), Listener(transport="tcp")]


class SipTimers(_Model):
    """RFC 3261 17.1.1.1 timer values, seconds."""

    t1: float = Field(default=0.5, gt=0, le=60)
    t2: float = Field(default=4.0, gt=0, le=600)
    t4: float = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _t1_below_t2(self) -> SipTimers:
        if self.t1 > self.t2:
            raise _fail([(("t2",), "must not be smaller than t1")])
        return self


class SipSettings(_Model):
    """Transports and protocol limits."""

    listen: list[Listener] = Field(default_factory=_default_listeners, min_length=1)
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    public_host: str | None = None
    timers: SipTimers = Field(default_factory=SipTimers)
    max_message_size: int = Field(default=65535, ge=1024, le=16 * 1024 * 1024)

    @field_validator("public_host", mode="before")
    @classmethod
    def _valid_public_host(cls, value: Any) -> str | None:
        return None if value is None else _check_host(value)

    @model_validator(mode="after")
    def _check_listeners_and_tls(self) -> SipSettings:
        items: list[tuple[Loc, str]] = []
        seen: dict[tuple[str, str, int], int] = {}
        for i, lst in enumerate(self.listen):
            key = (lst.transport, lst.host, lst.port)
            if key in seen and lst.port != 0:
                items.append((("listen", i), f"duplicate listener (same as listen[{seen[key]}])"))
            seen.setdefault(key, i)
        if any(lst.transport == "tls" for lst in self.listen):
            for name in ("tls_certificate", "tls_private_key"):
                path: Path | None = getattr(self, name)
                if path is None:
                    items.append(((name,), "required when a tls listener is configured"))
                elif not path.is_file():
                    items.append(((name,), f"file not found: {path}"))
        if items:
            raise _fail(items)
        return self


class RegistrarSettings(_Model):
    """REGISTER policy (RFC 3261 10.3), seconds."""

    min_expires: int = Field(default=60, ge=1)
    max_expires: int = Field(default=3600, ge=1)
    default_expires: int = Field(default=3600, ge=1)
    qualify_interval: float = Field(default=0, ge=0)  # 0 = no OPTIONS pings

    @model_validator(mode="after")
    def _ordered(self) -> RegistrarSettings:
        items: list[tuple[Loc, str]] = []
        if self.max_expires < self.min_expires:
            items.append((("max_expires",), "must not be smaller than min_expires"))
        elif not self.min_expires <= self.default_expires <= self.max_expires:
            items.append((("default_expires",), "must lie between min_expires and max_expires"))
        if items:
            raise _fail(items)
        return self


def _default_algorithms() -> list[DigestAlgorithm]:
    # MD5 alone by default: phones on older SIP stacks (libre/baresip 1.x among them) give up
    # on a REGISTER when any challenge names an algorithm they do not know, even if another
    # challenge offers MD5. Operators whose phones all speak SHA-256 list it (first).
    return ["MD5"]


class AuthSettings(_Model):
    """Digest authentication (RFC 8760). `realm` None means: each tenant's domain."""

    realm: str | None = None
    nonce_lifetime: float = Field(default=300, gt=0, le=86400)
    algorithms: list[DigestAlgorithm] = Field(default_factory=_default_algorithms, min_length=1)
    # Absent -> the switch generates one and persists it; shared by all nodes of a cluster.
    secret: SecretStr | None = None

    @field_validator("realm")
    @classmethod
    def _valid_realm(cls, value: str | None) -> str | None:
        # Realms are quoted-strings; refuse what many phones would mangle.
        if value is not None and (
            not value or '"' in value or "\\" in value or _has_control_chars(value)
        ):
            raise ValueError("must be non-empty, without quotes, backslashes or control characters")
        return value

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("algorithms", mode="before")
    @classmethod
    def _canonical_algorithms(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                _CANONICAL_ALGORITHM.get(v.upper(), v) if isinstance(v, str) else v for v in value
            ]
        return value

    @field_validator("algorithms")
    @classmethod
    def _unique_algorithms(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists an algorithm twice")
        return value

    def secret_bytes(self) -> bytes | None:
        """The nonce secret as bytes, or None when the switch must generate one."""
        return None if self.secret is None else self.secret.get_secret_value().encode()


class DatabaseSettings(_Model):
    """`sqlite:///relative/path.db`, `sqlite:////absolute/path.db` or `postgresql://...`."""

    url: str = "sqlite:///data/softswitch.db"

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        if value.startswith("sqlite:"):
            if not value.startswith("sqlite:///") or len(value) == len("sqlite:///"):
                raise ValueError("sqlite URLs look like sqlite:///data/softswitch.db")
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("must start with sqlite:/// or postgresql://")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ValueError("has an invalid port") from None
        if not parts.path.strip("/"):
            raise ValueError("must name the database: postgresql://user:pw@host:port/db")
        return value

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.url.startswith("sqlite:") else "postgresql"

    @property
    def sqlite_path(self) -> Path | None:
        """File of a sqlite URL, None for PostgreSQL. `config.load_config` makes a relative
        path absolute, against the configuration file's folder."""
        return Path(self.url[len("sqlite:///") :]) if self.backend == "sqlite" else None


class LoggingSettings(_Model):
    """structlog output; `file = ""` logs to stderr only."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    file: Path | None = Path("data/softswitch.log")
    format: Literal["json", "console"] = "console"

    @field_validator("level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class OverloadSettings(_Model):
    """When the switch sheds new calls (503 with Retry-After) instead of letting them time
    out: too many calls still being set up, too many live transactions, or new requests
    waiting too long before the switch reads them (smoothed delay of a probe datagram sent
    to our own UDP listener every ``probe_interval`` seconds). In-dialog requests and calls
    already up are always served. A bound of 0 switches that check off."""

    max_calls_in_setup: int = Field(default=5000, ge=0)
    max_transactions: int = Field(default=200_000, ge=0)
    # Seconds; beyond T1 (0.5 s) every INVITE is retransmitted, doubling the load.
    max_queue_delay: float = Field(default=0.5, ge=0, le=60)
    probe_interval: float = Field(default=0.1, gt=0, le=10)  # seconds
    retry_after: int = Field(default=10, ge=1, le=3600)  # seconds, in the 503


class CollectorSettings(_Model):
    """Python's cyclic garbage collector (``softswitch.collector``): the young generation
    is collected every ``young_interval`` seconds and after ``young_threshold`` net new
    objects, the older ones every ``full_interval`` seconds (0 switches a schedule off)."""

    young_threshold: int = Field(default=10_000, ge=700, le=1_000_000)
    young_interval: float = Field(default=0.02, ge=0, le=60)
    full_interval: float = Field(default=300.0, ge=0, le=86_400)


class Settings(_Model):
    """Runtime settings: everything except the provisioning model."""

    # Where the provisioning model (tenants and everything in them) is kept: "database"
    # (the store is the truth and the admin API edits it; on the first start the file's
    # tenants seed it) or "file" (this file is the truth: `softswitch reload` or SIGHUP
    # applies its changes live and the API may only read).
    provisioning: Literal["database", "file"] = "database"
    sip: SipSettings = Field(default_factory=SipSettings)
    registrar: RegistrarSettings = Field(default_factory=RegistrarSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    overload: OverloadSettings = Field(default_factory=OverloadSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)  # the admin API (config/api.py)
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    voicemail: VoicemailSettings = Field(default_factory=VoicemailSettings)
    # Event subscriptions (busy lamps, message waiting) and notification mail (config/smtp.py).
    subscriptions: SubscriptionSettings = Field(default_factory=SubscriptionSettings)
    smtp: SmtpSettings | None = None


# --------------------------------------------------------------------------- provisioning


def _check_hex(value: Any, length: int, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != length or not _HEX.issuperset(value):
        raise ValueError(f"must be {length} hex digits ({what} of username:realm:password)")
    return value.lower()


class User(_Model):
    """A PBX user: an extension with SIP credentials.

    A stored HA1 is only valid for the realm it was computed with (the tenant's realm).
    """

    extension: str
    display_name: str = Field(default="", max_length=100)
    username: str = ""  # empty -> the extension
    password: SecretStr | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None
    caller_id: str | None = None
    record_calls: bool = False  # every answered call of this user is recorded
    # What a party this user puts on hold hears, instead of the tenant's playlist.
    moh: MusicOnHold | None = None
    # Supervisor permission: may listen to, whisper into and barge into the tenant's calls.
    can_monitor: bool = False
    site: str | None = None  # the tenant's site (office) the user works at
    # Calling permissions, toll-fraud caps and emergency caller ID (config/calling.py).
    calling: UserCalling = Field(default_factory=UserCalling)
    # SRTP on this user's phone legs (config/security_media.py); None: the tenant's policy.
    srtp: SrtpPolicy | None = None

    @field_validator("ha1_md5", mode="before")
    @classmethod
    def _md5_hex(cls, value: Any) -> str | None:
        return _check_hex(value, 32, "MD5")

    @field_validator("ha1_sha256", mode="before")
    @classmethod
    def _sha256_hex(cls, value: Any) -> str | None:
        return _check_hex(value, 64, "SHA-256")

    @field_validator("extension", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)  # TOML `extension = 100`
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise ValueError("must be digits")
        if not 2 <= len(value) <= 8:
            raise ValueError("must be 2 to 8 digits")
        return value

    @field_validator("password")
    @classmethod
    def _non_empty_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @field_validator("display_name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if _has_control_chars(value):
            raise ValueError("must not contain control characters")
        return value.strip()

    @field_validator("username", mode="before")
    @classmethod
    def _valid_username(cls, value: Any) -> Any:
        if isinstance(value, str) and value and not _USERNAME.fullmatch(value):
            raise ValueError("must be 1 to 64 letters, digits or . _ ~ ! $ & ' ( ) * + , ; = @ -")
        return value

    @field_validator("caller_id", mode="before")
    @classmethod
    def _e164(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.startswith("+"):
            raise ValueError("must be an E.164 number such as +14155550100")
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            raise ValueError("is not a phone number") from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError("is not a valid phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @model_validator(mode="after")
    def _credentials(self) -> User:
        if not self.username:
            object.__setattr__(self, "username", self.extension)  # frozen model, own init
        has_ha1 = self.ha1_md5 is not None or self.ha1_sha256 is not None
        if self.password is None and not has_ha1:
            raise _fail([((), "needs a password, ha1_md5 or ha1_sha256")])
        if self.password is not None and has_ha1:
            raise _fail([(("password",), "give either password or ha1_md5/ha1_sha256, not both")])
        return self

    def ha1(self, realm: str, algorithm: str) -> str | None:
        """HA1 hex for digest `algorithm` (MD5, SHA-256; -sess variants share the base HA1).

        Computed as H(username:realm:password) when a password is set, else the stored HA1
        (which must have been made with this realm). None if no credential fits.
        """
        base = algorithm.upper().removesuffix("-SESS")
        hasher = _HASHES.get(base)
        if hasher is None:
            return None
        if self.password is not None:
            a1 = f"{self.username}:{realm}:{self.password.get_secret_value()}"
            return hasher(a1.encode()).hexdigest()
        return self.ha1_md5 if base == "MD5" else self.ha1_sha256


def _duplicates(values: Sequence[str], loc: Any, what: str) -> list[tuple[Loc, str]]:
    """Errors for every repeat of a value; `loc(i)` gives the location of element i."""
    first: dict[str, int] = {}
    items: list[tuple[Loc, str]] = []
    for i, value in enumerate(values):
        if value in first:
            where = format_location(loc(first[value]))
            items.append((loc(i), f"duplicate {what} {value!r} (first at {where})"))
        else:
            first[value] = i
    return items


def _raw_extension(entry: Any) -> str | None:
    """The extension of a not yet validated user entry, None if it is not one."""
    value = (
        entry.extension
        if isinstance(entry, User)
        else (entry.get("extension") if isinstance(entry, dict) else None)
    )
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    return None


_DEFAULT_ROUTING = UserRouting()


def _routable_conferences(data: Any) -> Any:
    # Like users: a bridge's extension is a routing destination, and its direct number
    # a DID sent to it, without repeating them under routing.
    if not isinstance(data, dict) or not isinstance(data.get("conferences"), list):
        return data
    extensions, dids = entry_targets(data["conferences"], ConferenceBridge)
    return add_routable(data, "conferences", extensions, dids, Treatment.CONFERENCE)


def _routable_monitor_codes(data: Any) -> Any:
    # The monitor codes are dialled like extensions, so routing needs them (it makes a
    # monitor node of *51 + extension): the tenant's go into its routing.
    if not isinstance(data, dict):
        return data
    try:
        codes = MonitorCodes.model_validate(data.get("monitor_codes") or {})
    except ValidationError:
        return data  # the field's own validation names the problem
    return set_routing(data, "monitor_codes", codes)


def _routable_feature_codes(data: Any) -> Any:
    # Like the monitor codes: the inbox and queue-agent codes are dialled like
    # extensions, so routing makes application nodes of them.
    if not isinstance(data, dict):
        return data
    try:
        vm = data.get("voicemail")
        if not isinstance(vm, TenantVoicemail):
            vm = TenantVoicemail.model_validate(vm or {})
    except ValidationError:
        return data  # the field's own validation names the problem
    try:
        prompts = data.get("prompts")
        if not isinstance(prompts, TenantPrompts):
            prompts = TenantPrompts.model_validate(prompts or {})
    except ValidationError:
        return data  # the field's own validation names the problem
    # the recording codes first: another feature's code wins, and the check names it
    codes = prompts.feature_codes()
    codes.update(vm.feature_codes())
    if data.get("queues"):
        codes.update(agent_feature_codes())
    try:
        park = data.get("park")
        if park is not None and not isinstance(park, ParkSettings):
            park = ParkSettings.model_validate(park)
    except ValidationError:
        return data  # the field's own validation names the problem
    codes.update(park_feature_codes(park))
    try:
        pickup = data.get("pickup")
        if pickup is not None and not isinstance(pickup, PickupSettings):
            pickup = PickupSettings.model_validate(pickup)
    except ValidationError:
        return data  # the field's own validation names the problem
    users = data.get("users")
    users = users if isinstance(users, list) else []
    extensions = [e for e in map(_raw_extension, users) if e is not None]
    codes.update(
        {c: f for c, f in pickup_feature_codes(pickup, extensions).items() if c not in codes}
    )
    return set_routing(data, "feature_codes", codes)


# What Tenant's validation makes routable (config.routable), in this order.
for _step in (
    routable_mailboxes,
    routable_attendants,
    _routable_feature_codes,
    _routable_monitor_codes,
    _routable_conferences,
    route_queues,
):
    register(_step)


def _private(model: BaseModel, name: str) -> Any:
    """A private attribute of ``model`` read without pydantic's ``__getattr__``, which
    probes the attribute's declaration for ``__get__`` and so raises and catches an
    AttributeError on every read (~4.5 µs with pydantic 2.14, 40 times a field's read):
    the tenant lookups below run several times per call."""
    private = model.__pydantic_private__
    assert private is not None
    return private[name]


class Tenant(_Model):
    """A hosted PBX: a SIP domain and its users."""

    name: str
    domain: str
    users: list[User] = Field(default_factory=list)
    # Time frames, answering rules, DIDs, block lists and disaster plans. Every user gets
    # default answering rules (ring, then voicemail) unless routing.users.<ext> says more.
    routing: TenantRouting = Field(default_factory=TenantRouting)
    # Call admission control: calls of this tenant in progress at once (None = no limit);
    # one more is answered 503 with Retry-After.
    max_calls: int | None = Field(default=None, ge=1, le=1_000_000)
    # New calls per second (a token bucket holding one second's worth); None = no limit.
    max_calls_per_second: float | None = Field(default=None, gt=0, le=100_000)
    # The outbound route: trunk names in failover order (the next trunk is tried once every
    # gateway of one has failed); empty = every trunk, in the order they are listed.
    outbound_trunks: tuple[str, ...] = ()
    # Carrier trunks: inbound calls from their addresses to the tenant's DIDs, outbound calls
    # to numbers outside the tenant.
    trunks: tuple[Trunk, ...] = ()
    record_calls: bool = False  # every answered call of the tenant is recorded
    # Music on hold for the tenant's users and queues that have none of their own.
    moh: MusicOnHold | None = None

    # Conference bridges; their extensions are routable (routing.conferences) without
    # listing them there.
    conferences: list[ConferenceBridge] = Field(default_factory=list)
    # Feature codes for live-call monitoring by users with can_monitor.
    monitor_codes: MonitorCodes = Field(default_factory=MonitorCodes)
    prompts: TenantPrompts = Field(default_factory=TenantPrompts)
    sites: list[Site] = Field(default_factory=list)  # offices; users name theirs
    # Call queues (config.queues); their extensions are routable without listing them.
    queues: list[CallQueue] = Field(default_factory=list)
    # Auto attendants (IVR menus, config.attendant); routable by extension and DID.
    auto_attendants: list[AutoAttendant] = Field(default_factory=list)
    # Mailboxes (every user has one; shared boxes are listed here) and the inbox's rules.
    voicemail: TenantVoicemail = Field(default_factory=TenantVoicemail)
    # Calling permissions, toll-fraud caps, emergency trunk and caller ID (config/calling.py).
    calling: TenantCalling = Field(default_factory=TenantCalling)
    # SRTP on the legs of the tenant's phones (config/security_media.py).
    srtp: SrtpPolicy = "optional"
    park: ParkSettings | None = None  # call park orbits (None: no park)
    pickup: PickupSettings | None = None  # call pickup codes and groups (None: no pickup)

    _by_extension: dict[str, User] = PrivateAttr(default_factory=dict)
    _by_username: dict[str, User] = PrivateAttr(default_factory=dict)
    _conference_by_extension: dict[str, ConferenceBridge] = PrivateAttr(default_factory=dict)
    _conference_by_did: dict[str, ConferenceBridge] = PrivateAttr(default_factory=dict)
    _outbound: tuple[Trunk, ...] = PrivateAttr(default=())
    _attendants: dict[str, AutoAttendant] = PrivateAttr(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _TENANT_NAME.fullmatch(value):
            raise ValueError("must be 1 to 64 letters, digits, '.', '_' or '-', starting alnum")
        return value

    @field_validator("domain", mode="before")
    @classmethod
    def _valid_domain(cls, value: Any) -> str:
        return _check_host(value, what="SIP domain (host name or IP address)")

    @model_validator(mode="before")
    @classmethod
    def _default_user_routing(cls, data: Any) -> Any:
        # Runs before TenantRouting validates, so rules, forwards and DIDs may name any user
        # of the tenant without an empty [tenants.routing.users.<ext>] table for each.
        if not isinstance(data, dict) or not isinstance(data.get("users"), list):
            return data
        extensions = [ext for ext in map(_raw_extension, data["users"]) if ext is not None]
        if not extensions:
            return data
        routing = data.get("routing")
        if routing is None:
            return {**data, "routing": {"users": {ext: {} for ext in extensions}}}
        if isinstance(routing, TenantRouting):
            users = {ext: routing.users.get(ext) or _DEFAULT_ROUTING for ext in extensions}
            routing = routing.model_copy(update={"users": {**users, **routing.users}})
            return {**data, "routing": routing}
        if isinstance(routing, dict) and isinstance(routing.get("users", {}), dict):
            explicit = routing.get("users", {})
            users = {ext: explicit.get(ext, {}) for ext in extensions}
            return {**data, "routing": {**routing, "users": {**users, **explicit}}}
        return data

    @model_validator(mode="before")
    @classmethod
    def _routable(cls, data: Any) -> Any:
        return make_routable(data)

    @model_validator(mode="after")
    def _check_park(self) -> Tenant:
        if self.park is None:
            return self
        taken = self.routing.extensions() | {u.extension for u in self.users}
        clash = sorted(taken.intersection(park_feature_codes(self.park)))
        if clash:
            raise _fail([(("park", "orbits"), f"{', '.join(clash)} already dialled otherwise")])
        return self

    @model_validator(mode="after")
    def _check_pickup(self) -> Tenant:
        if self.pickup is None:
            return self
        users = frozenset(u.extension for u in self.users)
        ours = pickup_feature_codes(self.pickup, users)
        others = {c for c, f in self.routing.feature_codes.items() if ours.get(c) != f}
        found = pickup_problems(self.pickup, users, self.routing.extensions() | others)
        if found:
            raise _fail(found)
        return self

    @model_validator(mode="after")
    def _check_attendants(self) -> Tenant:
        items = tenant_attendant_problems(self)
        if items:
            raise _fail(items)
        return self

    @model_validator(mode="after")
    def _check_mailboxes(self) -> Tenant:
        users = {u.extension for u in self.users}
        off = {e for e, r in self.routing.users.items() if not r.voicemail}
        found = self.voicemail.problems(users, self.routing.mailboxes, off)
        if found:
            raise _fail([(("voicemail", *loc), msg) for loc, msg in found])
        return self

    @model_validator(mode="after")
    def _check_prompts(self) -> Tenant:
        users = {u.extension for u in self.users}
        others = {c for c, f in self.routing.feature_codes.items() if f.kind != RECORD_KIND}
        found = self.prompts.problems(users, others)
        if found:
            raise _fail([(("prompts", *loc), msg) for loc, msg in found])
        return self

    @model_validator(mode="after")
    def _check_conferences(self) -> Tenant:
        bridges = self.conferences
        items: list[tuple[Loc, str]] = []
        for name, what in (("name", "conference name"), ("extension", "extension")):
            values = [getattr(b, name) for b in bridges]
            items += _duplicates(values, lambda i, n=name: ("conferences", i, n), what)
        with_did = [i for i, b in enumerate(bridges) if b.did is not None]
        items += _duplicates(
            [str(bridges[i].did) for i in with_did],
            lambda k: ("conferences", with_did[k], "did"),
            "DID",
        )
        users = {u.extension for u in self.users}
        routed = {d.number: d for d in self.routing.dids}
        for i, b in enumerate(bridges):
            if b.extension in users:
                items.append((("conferences", i, "extension"), "already a user's extension"))
            if b.owner is not None and b.owner not in users:
                items.append((("conferences", i, "owner"), "not a user of this tenant"))
            did = routed.get(b.did) if b.did is not None else None
            if did is not None and (
                did.treatment is not Treatment.CONFERENCE or did.destination != b.extension
            ):
                items.append(
                    (
                        ("conferences", i, "did"),
                        f"routing.dids sends {b.did} to {did.treatment.value} {did.destination!r}",
                    )
                )
        if items:
            raise _fail(items)
        return self

    @model_validator(mode="after")
    def _check_queues(self) -> Tenant:
        taken = {b.extension: "a conference bridge" for b in self.conferences}
        taken.update({a.extension: "an auto attendant" for a in self.auto_attendants})
        items = check_queues(self.queues, {u.extension for u in self.users}, taken)
        if items:
            raise _fail(items)
        return self

    @model_validator(mode="after")
    def _unique_users(self) -> Tenant:
        items = _duplicates(
            [u.extension for u in self.users], lambda i: ("users", i, "extension"), "extension"
        ) + _duplicates(
            [u.username for u in self.users], lambda i: ("users", i, "username"), "username"
        )
        items += _duplicates(
            [t.name for t in self.trunks], lambda i: ("trunks", i, "name"), "trunk name"
        ) + _duplicates(list(self.outbound_trunks), lambda i: ("outbound_trunks", i), "trunk")
        trunk_names = {t.name for t in self.trunks}
        items += [
            (("outbound_trunks", i), f"no trunk named {name!r} in this tenant")
            for i, name in enumerate(self.outbound_trunks)
            if name not in trunk_names
        ]
        items += site_problems(self.sites, [u.site for u in self.users])
        emergency_trunk = self.calling.emergency_trunk
        if emergency_trunk is not None and emergency_trunk not in trunk_names:
            problem = f"no trunk named {emergency_trunk!r} in this tenant"
            items.append((("calling", "emergency_trunk"), problem))
        extensions = {u.extension for u in self.users}
        for ext, rules in self.routing.users.items():
            if ext not in extensions and not rules.inbound_routing:
                items.append(
                    (
                        ("routing", "users", ext),
                        "not a user of this tenant: add it to [[tenants.users]] or set "
                        "inbound_routing = true",
                    )
                )
        if items:
            raise _fail(items)
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._by_extension = {u.extension: u for u in self.users}
        self._by_username = {u.username: u for u in self.users}
        by_name = {t.name: t for t in self.trunks}
        self._outbound = (
            tuple(by_name[n] for n in self.outbound_trunks if n in by_name)
            if self.outbound_trunks
            else self.trunks
        )
        self._conference_by_extension = {b.extension: b for b in self.conferences}
        self._conference_by_did = {b.did: b for b in self.conferences if b.did is not None}
        self._attendants = {a.extension: a for a in self.auto_attendants}

    def outbound_route(self) -> tuple[Trunk, ...]:
        """The trunks outbound calls try, in failover order."""
        return _private(self, "_outbound")

    def conference_by_extension(self, extension: str) -> ConferenceBridge | None:
        """The conference bridge reached by an extension."""
        return _private(self, "_conference_by_extension").get(extension)

    def conference_by_did(self, number: str) -> ConferenceBridge | None:
        """The conference bridge whose direct number (E.164) is ``number``."""
        return _private(self, "_conference_by_did").get(number)

    def attendant_by_extension(self, extension: str) -> AutoAttendant | None:
        """The auto attendant reached by an extension."""
        return _private(self, "_attendants").get(extension)

    def may_monitor(self, extension: str) -> bool:
        """Whether the user with ``extension`` holds the supervisor permission."""
        user = _private(self, "_by_extension").get(extension)
        return user is not None and user.can_monitor

    def user_by_extension(self, extension: str) -> User | None:
        return _private(self, "_by_extension").get(extension)

    def user_by_username(self, username: str) -> User | None:
        return _private(self, "_by_username").get(username)


class SwitchConfig(Settings):
    """The whole configuration file: runtime settings plus tenants."""

    tenants: list[Tenant] = Field(default_factory=list)

    _by_domain: dict[str, Tenant] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_tenants(self) -> SwitchConfig:
        items = _duplicates(
            [t.name for t in self.tenants], lambda i: ("tenants", i, "name"), "tenant name"
        ) + _duplicates(
            [t.domain for t in self.tenants], lambda i: ("tenants", i, "domain"), "domain"
        )
        if items:
            raise _fail(items)
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._by_domain = {t.domain: t for t in self.tenants}

    def tenant_for_domain(self, domain: str) -> Tenant | None:
        """The tenant owning a SIP domain (case-insensitive)."""
        return _private(self, "_by_domain").get(domain.lower())

    def realm_for(self, tenant: Tenant) -> str:
        """Digest realm of a tenant: the configured realm, else the tenant's domain."""
        return self.auth.realm or tenant.domain


def hold_music_for(
    tenant: Tenant, user: User | None = None, queue: MusicOnHold | None = None
) -> MusicOnHold | None:
    """The playlist a held party hears: the queue's, else the user's, else the tenant's.

    ``user`` is the user who put the call on hold; ``queue`` the playlist of the queue the
    caller waits in.  None: nothing configured (the engine's default plays).
    """
    if queue is not None:
        return queue
    if user is not None and user.moh is not None:
        return user.moh
    return tenant.moh
