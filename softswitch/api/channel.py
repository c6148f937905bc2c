"""The control channel on asyncio (`softswitch.api.control` is its sans-I/O codec).

`Channel` is one end of the socket pair, used by both processes. `RemoteLive` is
`softswitch.api.live.Live` in the API process: each operation is a `Request` the switch
answers on its loop; a refusal comes back as the same `LiveError`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from media import framing
from softswitch.api.control import (
    Feed,
    Message,
    MessageDecoder,
    Refused,
    Reply,
    Request,
    encode,
)
from softswitch.api.live import CallRow, LiveError
from softswitch.api.registrations import RegistrationRows
from softswitch.apps.conference import ConferenceInfo, ConferenceReport

__all__ = ["Channel", "RemoteLive"]


class Channel(framing.Channel[Message]):
    """One end of the admin-API control socket (`media.framing.Channel`)."""

    def __init__(self, on_message: Callable[[Message], None], on_lost: Callable[[str], None]):
        super().__init__(
            on_message, on_lost, decoder=MessageDecoder(), encode=encode, name="admin-API control"
        )


class RemoteLive:
    """`Live` over the control channel (the API process's side)."""

    def __init__(self) -> None:
        self.channel: Channel | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}

    def answered(self, message: Reply | Refused) -> None:
        """A reply from the switch: completes the request it answers."""
        future = self._waiting.pop(message.id, None)
        if future is None or future.done():
            return
        if isinstance(message, Reply):
            future.set_result(message.value)
        else:
            future.set_exception(LiveError(message.code, message.message))

    def lost(self, reason: str) -> None:
        """The switch is gone: every request waiting fails."""
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(LiveError("unavailable", f"the switch is gone: {reason}"))

    def feed(self, on: bool) -> None:
        """Ask the switch for the event feed (someone listens) or to stop it."""
        if self.channel is not None and self.channel.open:
            self.channel.send(Feed(on))

    async def _ask(self, op: str, *args: Any) -> Any:
        channel = self.channel
        if channel is None or not channel.open:
            raise LiveError("unavailable", "the switch is not reachable")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            channel.send(Request(request_id, op, args))
            return await future
        finally:
            self._waiting.pop(request_id, None)

    async def registrations(
        self,
        tenant: str,
        now: float,
        allowed: frozenset[str] | None,
        extension: str | None,
        reachable: bool | None,
        after: tuple[str, str] | None,
        limit: int,
    ) -> RegistrationRows:
        rows: RegistrationRows = await self._ask(
            "registrations", tenant, now, allowed, extension, reachable, after, limit
        )
        return rows

    async def registered(self, tenant: str) -> dict[str, int]:
        counts: dict[str, int] = await self._ask("registered", tenant)
        return counts

    async def calls(self, tenant: str, allowed: frozenset[str] | None) -> list[CallRow]:
        rows: list[CallRow] = await self._ask("calls", tenant, allowed)
        return rows

    async def hang_up(self, call_id: str) -> None:
        await self._ask("hang_up", call_id)

    async def monitor(self, call_id: str, supervisor: str, mode: str) -> None:
        await self._ask("monitor", call_id, supervisor, mode)

    async def conferences(self, tenant: str) -> list[ConferenceInfo] | None:
        found: list[ConferenceInfo] | None = await self._ask("conferences", tenant)
        return found

    async def conference_history(self, tenant: str) -> list[ConferenceReport]:
        found: list[ConferenceReport] = await self._ask("conference_history", tenant)
        return found

    async def invite(self, tenant: str, bridge: str, number: str) -> None:
        await self._ask("invite", tenant, bridge, number)

    async def mute(self, tenant: str, conference: str, participant: str, muted: bool) -> None:
        await self._ask("mute", tenant, conference, participant, muted)

    async def kick(self, tenant: str, conference: str, participant: str) -> None:
        await self._ask("kick", tenant, conference, participant)

    async def refresh_disaster_plans(self) -> None:
        await self._ask("refresh_disaster_plans")

    async def apply_provisioning(self) -> None:
        await self._ask("apply_provisioning")

    async def metrics(self) -> bytes:
        text: bytes = await self._ask("metrics")
        return text
