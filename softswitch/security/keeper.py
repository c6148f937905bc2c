"""Keeps the guard's bans in the store: restored at start, new ones written, lifts and
other nodes' bans followed every ``sync_interval`` seconds (the asyncio side of the guard).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from softswitch.security.guard import SecurityGuard
from storage.base import StorageError, Store

__all__ = ["BanKeeper"]

log = structlog.get_logger(__name__)

#: Syncs between purges of bans past the offence memory from the store.
_PURGE_EVERY = 100


class BanKeeper:
    """Runs the store side of a ``SecurityGuard`` as one background task."""

    def __init__(self, guard: SecurityGuard, store: Store) -> None:
        self.guard = guard
        self.store = store
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Restore the stored bans (also ended ones: their offences count) and start."""
        memory = self.guard.settings.offence_memory
        self.guard.restore(await self.store.load_bans(time.time() - memory))
        self._task = asyncio.create_task(self._run(), name="security-bans")

    async def stop(self) -> None:
        """Stop following the store and write the bans not yet written."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.save()

    async def save(self) -> None:
        bans = self.guard.take_unsaved()
        if not bans:
            return
        try:
            await self.store.save_bans(bans)
        except StorageError:
            self.guard.requeue(bans)  # written on the next round
            raise
        self.guard.mark_saved(bans)

    async def sync(self) -> None:
        """Write new bans, then follow the stored ones."""
        await self.save()
        self.guard.sync(await self.store.load_bans(time.time()))

    async def _run(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.guard.settings.sync_interval)
            try:
                await self.sync()
                rounds += 1
                if rounds % _PURGE_EVERY == 0:
                    await self.store.purge_bans(time.time() - self.guard.settings.offence_memory)
            except StorageError as error:
                log.warning("security_bans_sync_failed", error=str(error))
