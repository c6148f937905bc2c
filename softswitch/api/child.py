"""The admin API's own process: ``python -m softswitch.api.child --fd N --listen-fd M``.

Started by the switch (`softswitch.api.process.ApiProcess`) with the listening socket and
one end of the control channel. It lowers its own CPU priority first: call set-up comes
before administration, so when both want the CPU the kernel runs the switch's signalling
and a burst of API requests (lists of 10,000 users, CDR searches) waits instead.

It has what the API's requests use directly (`ApiSide`, a `SwitchView`): its own Store
connection, the provisioning service on it and the mailboxes. A change stored through it
is applied by the switch before the API answers (`ApiProvisioning.refresh` asks the switch
over the channel), and the switch follows the Store anyway (its revision poll or NOTIFY).
This process follows the Store too, for its own view of the tenants. The live switch is
reached through `channel.RemoteLive`; events come from the switch as `control.Events`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
from dataclasses import dataclass

import structlog

from config.models import SwitchConfig
from softswitch.api.app import create_app
from softswitch.api.channel import Channel, RemoteLive
from softswitch.api.context import ApiContext
from softswitch.api.control import Events, Message, Ready, Refused, Reply, Setup, Stop
from softswitch.api.events import EventBus
from softswitch.api.live import Live, LiveError
from softswitch.api.serving import QuietServer, serve_until_started, uvicorn_config
from softswitch.logs import configure_logging
from softswitch.loop import run
from softswitch.provisioning.runtime import POLL_SQLITE, ProvisioningRuntime
from softswitch.voicemail.mailboxes import Mailboxes
from storage import open_store
from storage.base import StorageError, Store

__all__ = ["ApiProvisioning", "ApiSide", "main"]

log = structlog.get_logger(__name__)

# How much lower than the switch the API runs (os.nice increment: 0 the same, 19 the
# lowest). High enough that the scheduler favours signalling clearly, not so low that the
# API starves on a machine kept busy by calls.
NICENESS = 10


class ApiProvisioning(ProvisioningRuntime):
    """The provisioning of the API's process: its service stores changes on this
    process's connection; `refresh` brings this process's view up to date and has the
    switch apply the change before the API answers."""

    def __init__(self, store: Store, config: SwitchConfig, live: Live) -> None:
        super().__init__(store, config)
        self.live = live
        self.voicemail: Mailboxes | None = None

    async def follow(self) -> bool:
        """This process's view of the stored model, refreshed (True when it changed)."""
        changed = await super().refresh()
        if changed and self.voicemail is not None:
            self.voicemail.update_tenants(self.config.tenants)
        return changed

    async def refresh(self) -> bool:
        # The switch first: calls take the change as soon as it can be, and this process
        # (at a lower priority, rebuilding its own view) does not hold it up.
        try:
            await self.live.apply_provisioning()
        except LiveError as exc:  # stored all the same: the switch follows the Store
            log.warning("api.apply_deferred", error=exc.message)
        return await self.follow()


@dataclass
class ApiSide:
    """What the API process's requests use directly (a `SwitchView`)."""

    store: Store
    provisioning: ApiProvisioning
    voicemail: Mailboxes

    @property
    def config(self) -> SwitchConfig:
        return self.provisioning.config


async def _follow(side: ApiSide) -> None:
    """Keep this process's tenants and mailboxes as stored (changes by the switch, the
    command line, other nodes)."""
    failing = False
    while True:
        await asyncio.sleep(POLL_SQLITE)
        try:
            await side.provisioning.follow()
            await side.voicemail.follow()
            failing = False
        except StorageError as exc:
            if not failing:
                log.warning("api.store_unavailable", error=str(exc))
            failing = True


async def serve(control: socket.socket, listener: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    live = RemoteLive()
    setup: asyncio.Future[SwitchConfig] = loop.create_future()
    stop = asyncio.Event()
    events: EventBus | None = None

    def on_message(message: Message) -> None:
        if isinstance(message, Reply | Refused):
            live.answered(message)
        elif isinstance(message, Events):
            if events is not None:
                for event in message.events:
                    events.publish(event)
        elif isinstance(message, Setup):
            if not setup.done():
                setup.set_result(message.config)
        elif isinstance(message, Stop):
            stop.set()

    def on_lost(reason: str) -> None:
        live.lost(reason)
        if not setup.done():
            setup.set_exception(ConnectionError(reason))
        stop.set()  # the switch is gone: so is its API

    _, channel = await loop.create_unix_connection(
        lambda: Channel(on_message, on_lost), sock=control
    )
    live.channel = channel
    config = await setup
    configure_logging(config.logging)  # the switch's log file (lines are appended whole)
    store = open_store(config.database.url)
    await store.open()
    follower: asyncio.Task[None] | None = None
    try:
        provisioning = ApiProvisioning(store, config, live)
        await provisioning.follow()
        voicemail = Mailboxes(config.voicemail, store, list(provisioning.config.tenants))
        await voicemail.start(recover=False)  # the switch records and recovers
        provisioning.voicemail = voicemail
        side = ApiSide(store, provisioning, voicemail)
        events = EventBus(lambda: side.config, live.feed)
        ctx = ApiContext(side, config.api, events, live)
        server = QuietServer(uvicorn_config(create_app(ctx), config.api))
        task = await serve_until_started(server, listener)
        follower = loop.create_task(_follow(side), name="api-follow")
        channel.send(Ready(os.getpid()))
        stopping = loop.create_task(stop.wait())
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await events.close()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await asyncio.wait_for(task, timeout=5)
            except TimeoutError:
                server.force_exit = True
                task.cancel()
        stopping.cancel()
    finally:
        if follower is not None:
            follower.cancel()
        await store.close()
        channel.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m softswitch.api.child``."""
    parser = argparse.ArgumentParser(prog="softswitch.api.child")
    parser.add_argument("--fd", type=int, required=True, help="inherited control socket")
    parser.add_argument("--listen-fd", type=int, required=True, help="inherited listener")
    args = parser.parse_args(argv)
    # Signalling first: see the module docstring.
    os.nice(NICENESS)
    control = socket.socket(fileno=args.fd)
    listener = socket.socket(fileno=args.listen_fd)
    # The switch stops this process (control.Stop, or by closing the channel): a Ctrl-C
    # in a terminal reaches the whole process group, and the switch's shutdown handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run(serve(control, listener))


if __name__ == "__main__":
    main()
