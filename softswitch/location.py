"""The location service: current bindings per address-of-record, durable through the Store.

Bindings live in memory (the registrar reads and writes them at line rate) and are written
behind to the Store in batches: a change is durable within one flush interval, and a graceful
shutdown flushes everything, so nothing is lost on restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import structlog

from softswitch.sip.address import Address
from softswitch.writebehind import WriteBehind
from storage.base import Binding, Store

log = structlog.get_logger(__name__)


def parse_received(text: str | None) -> Address | None:
    """Turn a stored ``received`` string ("udp:host:port") back into an Address."""
    if not text:
        return None
    transport, _, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()):
        return None
    return Address(transport.upper(), host.strip("[]"), int(port))


def _by_q_descending(binding: Binding) -> float:
    return -(binding.q if binding.q is not None else 1.0)


class LocationService(WriteBehind):
    """In-memory bindings keyed by AOR, with write-behind persistence and expiry."""

    def __init__(self, store: Store, *, flush_interval: float = 0.1, batch_size: int = 500):
        self._store = store
        super().__init__(
            name="location-writer", flush_interval=flush_interval, batch_size=batch_size
        )
        self._by_aor: dict[str, dict[str, Binding]] = {}
        # Where each binding's REGISTER came from, with the stream connection it used, so
        # requests to that contact reuse the connection (RFC 5626 flow, NAT traversal).
        self._sources: dict[tuple[str, str], Address] = {}
        self._dirty: dict[tuple[str, str], Binding | None] = {}
        # Moves whenever an AOR appears or goes (never on a refresh): indexes over the AORs
        # (the API's registrations list) rebuild only then.
        self.aor_changes = 0

    async def start(self) -> int:
        """Load unexpired bindings from the store and start the writer; returns the count."""
        now = time.time()
        purged = await self._store.purge_expired(now)
        count = 0
        for binding in await self._store.load_bindings(now):
            self._by_aor.setdefault(binding.aor, {})[binding.contact] = binding
            source = parse_received(binding.received)
            if source is not None:
                self._sources[binding.key] = source
            count += 1
        self.aor_changes += 1
        log.info("location_restored", bindings=count, purged=purged)
        self._start_writer()
        return count

    # -- reads -----------------------------------------------------------------------------

    def bindings(self, aor: str, now: float | None = None) -> list[Binding]:
        """Unexpired bindings of an AOR, highest q first."""
        now = time.time() if now is None else now
        contacts = self._by_aor.get(aor)
        if not contacts:
            return []
        found = [b for b in contacts.values() if b.expires_at > now]
        if len(found) > 1:
            found.sort(key=_by_q_descending)
        return found

    def current(self, aor: str, now: float) -> dict[str, Binding]:
        """Unexpired bindings of an AOR by contact URI (in no particular order)."""
        contacts = self._by_aor.get(aor)
        if not contacts:
            return {}
        return {c: b for c, b in contacts.items() if b.expires_at > now}

    def all_bindings(self, now: float | None = None) -> list[Binding]:
        now = time.time() if now is None else now
        return [b for aor in self._by_aor.values() for b in aor.values() if b.expires_at > now]

    def contacts_by_aor(self) -> dict[str, dict[str, Binding]]:
        """The bindings by AOR and contact, the location service's own table: read it, never
        change it (same loop only). An AOR's contact table is the same object until the AOR
        goes, which moves `aor_changes`."""
        return self._by_aor

    def source(self, binding: Binding) -> Address | None:
        """The transport address (and connection) the binding registered from."""
        return self._sources.get(binding.key)

    def __len__(self) -> int:
        return sum(len(contacts) for contacts in self._by_aor.values())

    # -- writes ----------------------------------------------------------------------------

    def update(
        self,
        aor: str,
        upserts: Iterable[tuple[Binding, Address]],
        removals: Iterable[str] = (),
    ) -> None:
        """Apply one REGISTER's changes to an AOR and queue them for the store."""
        contacts = self._by_aor.get(aor)
        if contacts is None:
            contacts = self._by_aor[aor] = {}
            self.aor_changes += 1
        for contact in removals:
            if contacts.pop(contact, None) is not None:
                self._sources.pop((aor, contact), None)
                self._dirty[(aor, contact)] = None
        for binding, source in upserts:
            contacts[binding.contact] = binding
            self._sources[binding.key] = source
            self._dirty[binding.key] = binding
        if not contacts:
            del self._by_aor[aor]
            self.aor_changes += 1
        self._queued(len(self._dirty))

    def set_reachable(self, binding: Binding, reachable: bool) -> None:
        """Record a qualify result; persisted only when it changes."""
        current = self._by_aor.get(binding.aor, {}).get(binding.contact)
        if current is None or current.reachable == reachable:
            return
        current.reachable = reachable
        self._dirty[current.key] = current
        self._queued(len(self._dirty))
        log.info(
            "contact_reachability", aor=binding.aor, contact=binding.contact, reachable=reachable
        )

    def purge_expired(self, now: float | None = None) -> int:
        """Drop expired bindings from memory (the store is purged on the next flush)."""
        now = time.time() if now is None else now
        expired = [
            b
            for contacts in self._by_aor.values()
            for b in contacts.values()
            if b.expires_at <= now
        ]
        for binding in expired:
            self.update(binding.aor, (), (binding.contact,))
        if expired:
            log.info("bindings_expired", count=len(expired))
        return len(expired)

    async def flush(self) -> None:
        """Write every pending change to the store."""
        while self._dirty:
            batch = dict(list(self._dirty.items())[: self._batch_size])
            for key in batch:
                del self._dirty[key]
            saves = [b for b in batch.values() if b is not None]
            deletes = [k for k, b in batch.items() if b is None]
            try:
                if saves:
                    await self._store.save_bindings(saves)
                if deletes:
                    await self._store.delete_bindings(deletes)
            except Exception:
                # Keep the changes queued (unless superseded meanwhile) and retry later.
                for key, value in batch.items():
                    self._dirty.setdefault(key, value)
                self.failed_writes += 1
                log.exception("location_flush_failed", pending=len(self._dirty))
                raise
