"""A running switch on the stored provisioning model: boot, live apply, file reload.

    runtime = ProvisioningRuntime(store, config)     # in Switch.__init__
    config = await runtime.boot()                    # after the store opened: seed or sync
    ...                                              # build directory, calls, trunks from it
    await runtime.start(switch)                      # follow changes from now on
    await runtime.stop()

`boot` brings the store in line with the file (database mode: the file's tenants seed an
empty database; file mode: the file is stored as the truth) and returns the configuration
with the stored tenants. `start` then follows the store: a change made through this
runtime's `service` applies at once, a change by another process (the command line, another
node) when PostgreSQL NOTIFYs it or, on SQLite, when the revision poll sees it. A change
rebuilds the directory, the tenants calls are routed with (routing, disaster plans, trunks,
conferences, music on hold) and the trunk registrations, and swaps them in one step on the
loop: calls in progress and registrations are left alone. The same loop refreshes the
disaster plans' stored state (`softswitch.routing_state.DisasterState`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Sequence
from typing import Protocol

import structlog

from config.loader import ConfigError
from config.models import SwitchConfig, Tenant
from softswitch.calls.manager import CallManager
from softswitch.directory import Directory
from softswitch.provisioning.errors import ProvisioningError
from softswitch.provisioning.fileio import reload_file
from softswitch.provisioning.service import Actor, Change, ProvisioningService, Snapshot
from softswitch.routing_state import DisasterState
from softswitch.security.guard import SecurityGuard, trunk_networks
from softswitch.trunkreg import TrunkRegistrar
from storage.base import StorageError, Store

__all__ = ["ProvisioningRuntime", "SwitchParts", "stored_config", "with_tenants"]

log = structlog.get_logger(__name__)

# Seconds between revision polls: SQLite has no NOTIFY, and one indexed single-row read
# four times a second is nothing; with PostgreSQL NOTIFY brings changes at once and the
# poll only covers a lost listening connection.
POLL_SQLITE = 0.25
POLL_POSTGRESQL = 1.0


class SwitchParts(Protocol):
    """What the runtime swaps in a running switch (softswitch.server.Switch)."""

    config: SwitchConfig
    directory: Directory | None
    calls: CallManager | None
    trunk_registrar: TrunkRegistrar | None
    disaster_state: DisasterState
    guard: SecurityGuard


def with_tenants(config: SwitchConfig, tenants: Sequence[Tenant]) -> SwitchConfig:
    """`config` with other tenants (already validated; the cross-tenant rules were checked
    when they were stored)."""
    updated = config.model_copy(update={"tenants": list(tenants)})
    updated.model_post_init(None)  # the domain index
    return updated


async def stored_config(config: SwitchConfig, store: Store) -> SwitchConfig:
    """`config` with the tenants a switch on `store` runs with: the stored ones in database
    mode (the file's while the database was never seeded), the file's in file mode. For
    commands that read the model outside a running switch."""
    if config.provisioning == "file" or await store.provisioning_revision() == 0:
        return config
    snapshot = await ProvisioningService(store).snapshot()
    return with_tenants(config, snapshot.tenants)


class ProvisioningRuntime:
    """See the module docstring."""

    def __init__(self, store: Store, config: SwitchConfig, config_path: str | None = None):
        self.store = store
        self.config = config
        self.config_path = config_path
        self.service = ProvisioningService(store, mode=config.provisioning, on_change=self.changed)
        self.revision = -1
        self._snapshot: Snapshot | None = None
        self._switch: SwitchParts | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pushed = False
        self._failing = False
        self._reloads: set[asyncio.Task[None]] = set()
        # The follow loop and the API (applying its own change at once) both refresh: one
        # at a time, so an older snapshot is never applied after a newer one.
        self._refreshing = asyncio.Lock()

    async def boot(self) -> SwitchConfig:
        """Seed (database mode, empty database) or store the file (file mode), then return
        the configuration with the stored tenants."""
        source = self.config_path or "configuration file"
        if self.config.provisioning == "file":
            changes = await self.service.apply(
                Actor("file", source), self.config.tenants, from_file=True
            )
            if changes:
                log.info("provisioning.file_applied", changes=len(changes), file=source)
        elif await self.service.seed(Actor("seed", source), self.config.tenants):
            log.info("provisioning.seeded", tenants=len(self.config.tenants), file=source)
        else:
            differences = await self.service.apply(
                Actor("seed", source), self.config.tenants, dry_run=True, from_file=True
            )
            if differences:
                # Database mode: the stored model is the truth; say so rather than let an
                # operator wonder why an edit of the file did nothing.
                log.warning(
                    "provisioning.file_ignored",
                    file=source,
                    differences=len(differences),
                    hint="the database holds the provisioning: use `softswitch config import`",
                )
        snapshot = await self.service.snapshot()
        self._report(snapshot)
        self.revision = snapshot.revision
        self._snapshot = snapshot
        self.config = with_tenants(self.config, snapshot.tenants)
        return self.config

    async def start(self, switch: SwitchParts) -> None:
        """Follow the store's changes and apply them to `switch`."""
        self._switch = switch
        try:
            self._pushed = await self.store.watch_provisioning(self.changed)
        except StorageError as exc:
            log.warning("provisioning.listen_failed", error=str(exc))
        self._task = asyncio.get_running_loop().create_task(
            self._follow(), name="provisioning-follow"
        )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(StorageError):
            await self.store.unwatch_provisioning()

    def changed(self, revision: int) -> None:
        """A change was made (here, or NOTIFYed by another node; -1: a disaster plan's
        state): apply it soon."""
        if revision != self.revision:
            self._wake.set()

    async def reload(self) -> list[Change]:
        """SIGHUP in file mode: re-read the file and apply its difference (a bad file is
        refused whole: `config.ConfigError`, the running configuration stays)."""
        if self.config_path is None:
            raise ValueError("the switch was not started from a configuration file")
        actor = Actor("reload", f"SIGHUP@{socket.gethostname()}")
        return await reload_file(self.service, self.config_path, actor)

    def reload_soon(self) -> None:
        """SIGHUP: reload in the background; what changed, or why the file was refused, is
        logged."""
        task = asyncio.get_running_loop().create_task(self._reload_logged(), name="reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_logged(self) -> None:
        try:
            changes = await self.reload()
        except ConfigError as exc:
            log.error("provisioning.reload_refused", file=self.config_path, errors=str(exc))
            return
        except (ProvisioningError, StorageError, ValueError) as exc:
            log.error("provisioning.reload_failed", file=self.config_path, error=str(exc))
            return
        log.info("provisioning.reloaded", file=self.config_path, changes=[str(c) for c in changes])

    async def refresh(self) -> bool:
        """Apply the stored model if it changed since the last look; True when it did."""
        async with self._refreshing:
            revision = await self.store.provisioning_revision()
            if revision == self.revision:
                return False
            snapshot = await self.service.snapshot(self._snapshot)
            await self._apply(snapshot)
            self._snapshot = snapshot
            return True

    async def _follow(self) -> None:
        interval = POLL_POSTGRESQL if self.store.backend == "postgresql" else POLL_SQLITE
        while True:
            # asyncio.wait, not wait_for: cancelling a task in 3.11's wait_for can hang
            # when its timeout falls due at the same moment (seen stopping a switch).
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=interval)
            finally:
                waiter.cancel()
            self._wake.clear()
            try:
                await self.refresh()
                if self._switch is not None:
                    # Disaster plans switched on or off (`softswitch disaster ...`, on any
                    # node) follow the same loop: their state is the model's run-time part.
                    await self._switch.disaster_state.refresh()
                    # Mailboxes changed beside the switch (`softswitch voicemail delete`,
                    # the admin API): their lamps follow (PostgreSQL NOTIFYs 'voicemail').
                    voicemail = getattr(self._switch, "voicemail", None)
                    if voicemail is not None:
                        await voicemail.follow()
                if self._failing:
                    log.info("provisioning.store_recovered")
                self._failing = False
            except StorageError as exc:
                if not self._failing:
                    log.warning("provisioning.store_unavailable", error=str(exc))
                self._failing = True

    async def _apply(self, snapshot: Snapshot) -> None:
        switch = self._switch
        self._report(snapshot)
        before = {t.name: t for t in self.config.tenants}
        tenants = list(snapshot.tenants)
        # A tenant that no longer validates (a database edited by hand) keeps running as
        # it was.
        tenants += [t for name, t in before.items() if name in snapshot.invalid]
        config = with_tenants(self.config, tenants)
        if switch is not None:
            calls = switch.calls
            anchor = calls.anchor if calls is not None else None
            if anchor is not None:
                # Decoded before the swap, off the loop: a call put on hold right after
                # finds its playlist ready.
                await asyncio.to_thread(anchor.load_playlists, tenants)
            directory = switch.directory
            # The registrar's tables (a subscriber per user) built off the loop too.
            tables = (
                await asyncio.to_thread(directory.prepare, config)
                if directory is not None
                else None
            )
            # From here to the end nothing awaits: the switch changes in one step.
            switch.config = config
            if directory is not None and tables is not None:
                directory.install(tables)
            if calls is not None:
                calls.replace_tenants(tenants)
            if switch.trunk_registrar is not None:
                switch.trunk_registrar.replace_tenants(tenants)
            voicemail = getattr(switch, "voicemail", None)
            if voicemail is not None:
                voicemail.update_tenants(tenants)
            switch.guard.trust(trunk_networks(tenants))  # carriers are never banned
            apply_trunk_tls = getattr(switch, "apply_trunk_tls", None)
            if apply_trunk_tls is not None:
                apply_trunk_tls(tenants)  # mutual TLS for trunks (softswitch/sip/tls_trunks.py)
        self.config = config
        after = {t.name: t for t in tenants}
        changed = sorted(
            n for n in before.keys() | after.keys() if before.get(n) is not after.get(n)
        )
        self.revision = snapshot.revision
        log.info("provisioning.applied", revision=snapshot.revision, tenants=changed)

    def _report(self, snapshot: Snapshot) -> None:
        for problem in snapshot.problems:
            log.error("provisioning.invalid_tenant", problem=problem)
