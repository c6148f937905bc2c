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


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A user of a tenant, with the address-of-record its bindings are stored under."""

    tenant: Tenant
    user: User
    aor: str


@dataclass(frozen=True, slots=True)
class DirectoryTables:
    """The lookup tables of one configuration, built (`Directory.prepare`) before they are
    swapped in (`Directory.install`)."""

    domains: dict[str, Domain]
    subscribers: dict[tuple[str, str], Subscriber]


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class Directory:
    """Lookups of domains and subscribers, built from the configuration and rebuilt by
    `update` when provisioning changes."""

    def __init__(self, config: SwitchConfig, local_hosts: frozenset[str] = frozenset()):
        self._local_hosts = {h.lower() for h in local_hosts}
        self._domains: dict[str, Domain] = {}
        self._default: Domain | None = None
        self._subscribers: dict[tuple[str, str], Subscriber] = {}
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
        thread (with 10,000 users, building them is the expensive part of a change)."""
        domains = {
            t.domain.lower(): Domain(t.domain, config.realm_for(t), t) for t in config.tenants
        }
        subscribers: dict[tuple[str, str], Subscriber] = {}
        for domain in domains.values():
            for user in domain.tenant.users:
                subscriber = Subscriber(domain.tenant, user, f"sip:{user.extension}@{domain.name}")
                subscribers[(domain.name, user.username)] = subscriber
                subscribers.setdefault((domain.name, user.extension), subscriber)
        return DirectoryTables(domains, subscribers)

    def install(self, tables: DirectoryTables) -> None:
        """Serve `tables` from now on (one step, on the switch's loop). A user whose model
        did not change (the same `User`: provisioning passes unchanged users through) keeps
        its cached HA1s."""
        before = self._subscribers
        kept: dict[tuple[str, str, str, str], str | None] = {}
        for key, value in self._ha1.items():
            old = before.get((key[0], key[1]))
            new = tables.subscribers.get((key[0], key[1]))
            if old is not None and new is not None and old.user is new.user:
                kept[key] = value
        domains = tables.domains
        self._domains = domains
        # With a single tenant, phones that register to the switch's address instead of the
        # tenant's domain (the usual desk-phone set-up on a LAN) belong to that tenant.
        self._default = next(iter(domains.values())) if len(domains) == 1 else None
        self._subscribers = tables.subscribers
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
        return self._subscribers.get((domain, username))

    def ha1(self, domain: str, username: str, realm: str, algorithm: str) -> str | None:
        """The digest HA1 of a subscriber (see ``User.ha1``), or None for an unknown user."""
        key = (domain, username, realm, algorithm)
        try:
            return self._ha1[key]
        except KeyError:
            pass
        subscriber = self._subscribers.get((domain, username))
        if subscriber is None:
            return None
        value = self._ha1[key] = subscriber.user.ha1(realm, algorithm)
        return value

    def is_local(self, host: str) -> bool:
        return self.domain_for(host) is not None
