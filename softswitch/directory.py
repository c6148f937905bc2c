"""The subscriber directory: which SIP domains the switch serves and who may register."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from config.models import SwitchConfig, Tenant, User


@dataclass(frozen=True, slots=True)
class Domain:
    """A SIP domain served by the switch: one tenant's PBX."""

    name: str
    realm: str
    tenant: Tenant


class TenantOf:
    """The tenant a served domain's subscribers belong to, shared by all of them: a change
    of the tenant moves it in one step (`Directory.install`) instead of rebuilding a
    subscriber per user."""

    __slots__ = ("tenant",)

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A user of a tenant, with the address-of-record its bindings are stored under."""

    owner: TenantOf
    user: User
    aor: str

    @property
    def tenant(self) -> Tenant:
        return self.owner.tenant


@dataclass(frozen=True, slots=True)
class Zone:
    """One served domain's subscribers by SIP username and by extension."""

    domain: Domain
    owner: TenantOf
    subscribers: dict[str, Subscriber]


@dataclass(frozen=True, slots=True)
class DirectoryTables:
    """The lookup tables of one configuration, built (`Directory.prepare`) before they are
    swapped in (`Directory.install`)."""

    domains: dict[str, Domain]  # by lower-cased name
    zones: dict[str, Zone]  # by name


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


_EMPTY: dict[str, Subscriber] = {}


class Directory:
    """Lookups of domains and subscribers, built from the configuration and rebuilt by
    `update` when provisioning changes."""

    def __init__(self, config: SwitchConfig, local_hosts: frozenset[str] = frozenset()):
        self._local_hosts = {h.lower() for h in local_hosts}
        self._domains: dict[str, Domain] = {}
        self._default: Domain | None = None
        self._zones: dict[str, Zone] = {}
        # HA1 per (domain, username, realm, algorithm): hashing the password on every
        # REGISTER is measurable at line rate. Only known users get entries (bounded).
        self._ha1: dict[tuple[str, str, str, str], str | None] = {}
        self.update(config)

    def update(self, config: SwitchConfig) -> None:
        """Serve the tenants of `config` from now on (provisioning changed). The tables are
        built first and swapped in one step, so a lookup never sees half of a change."""
        self.install(self.prepare(config))

    def prepare(self, config: SwitchConfig) -> DirectoryTables:
        """The tables for `config`, without touching the directory in use: safe in a worker
        thread, one at a time. They are built from the tables in use: a tenant that is the
        same object keeps its zone, and in a changed one a user that is the same model
        keeps its subscriber, so a change to one user of 10,000 costs a pass over the
        tenant's users, not 10,000 new subscribers."""
        current = self._zones
        domains: dict[str, Domain] = {}
        zones: dict[str, Zone] = {}
        for t in config.tenants:
            realm = config.realm_for(t)
            old = current.get(t.domain)
            if old is not None and old.domain.tenant is t and old.domain.realm == realm:
                zone = old
            else:
                zone = _zone(Domain(t.domain, realm, t), old)
            domains[t.domain.lower()] = zone.domain
            zones[t.domain] = zone
        return DirectoryTables(domains, zones)

    def install(self, tables: DirectoryTables) -> None:
        """Serve `tables` from now on (one step, on the switch's loop). A user whose model
        did not change (the same `User`: provisioning passes unchanged users through) keeps
        its cached HA1s."""
        before = self._zones
        kept: dict[tuple[str, str, str, str], str | None] = {}
        for key, value in self._ha1.items():
            old_zone, new_zone = before.get(key[0]), tables.zones.get(key[0])
            if old_zone is None or new_zone is None:
                continue
            if old_zone is new_zone:
                kept[key] = value
                continue
            old = old_zone.subscribers.get(key[1])
            new = new_zone.subscribers.get(key[1])
            if old is not None and new is not None and old.user is new.user:
                kept[key] = value
        for zone in tables.zones.values():
            # The subscribers kept from a zone in use see their tenant's new model now.
            zone.owner.tenant = zone.domain.tenant
        domains = tables.domains
        self._domains = domains
        # With a single tenant, phones that register to the switch's address instead of the
        # tenant's domain (the usual desk-phone set-up on a LAN) belong to that tenant.
        self._default = next(iter(domains.values())) if len(domains) == 1 else None
        self._zones = tables.zones
        self._ha1 = kept

    def domain_for(self, host: str) -> Domain | None:
        """The domain a request-URI or To host names, or None if the switch does not serve it."""
        host = host.lower()
        found = self._domains.get(host)
        if found is not None:
            return found
        if self._default is not None and (_is_ip_literal(host) or host in self._local_hosts):
            return self._default
        return None

    def subscriber(self, domain: str, username: str) -> Subscriber | None:
        """A subscriber by SIP username (or extension) within a domain."""
        zone = self._zones.get(domain)
        return zone.subscribers.get(username) if zone is not None else None

    def ha1(self, domain: str, username: str, realm: str, algorithm: str) -> str | None:
        """The digest HA1 of a subscriber (see ``User.ha1``), or None for an unknown user."""
        key = (domain, username, realm, algorithm)
        try:
            return self._ha1[key]
        except KeyError:
            pass
        subscriber = self.subscriber(domain, username)
        if subscriber is None:
            return None
        value = self._ha1[key] = subscriber.user.ha1(realm, algorithm)
        return value

    def is_local(self, host: str) -> bool:
        return self.domain_for(host) is not None


def _zone(domain: Domain, old: Zone | None) -> Zone:
    """The zone of `domain` (its tenant's users), reusing the subscribers of `old` (the
    zone in use under the same name) whose user is the same model."""
    tenant, name = domain.tenant, domain.name
    owner = old.owner if old is not None else TenantOf(tenant)
    before = old.subscribers if old is not None else _EMPTY
    subscribers: dict[str, Subscriber] = {}
    for user in tenant.users:
        subscriber = before.get(user.username)
        if subscriber is None or subscriber.user is not user:
            subscriber = Subscriber(owner, user, f"sip:{user.extension}@{name}")
        subscribers[user.username] = subscriber
        subscribers.setdefault(user.extension, subscriber)
    return Zone(domain, owner, subscribers)
