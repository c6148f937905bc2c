"""The media-control surface signalling drives: the in-process :class:`MediaEngine` and the
:class:`MediaWorkerPool` both offer it, with their own endpoint types (both
:class:`NegotiatedLeg`), so endpoints are typed loosely here and each implementation checks
that an endpoint is its own."""

from __future__ import annotations

from typing import Any, Protocol

from media.engine import EndpointStats, EngineStats
from media.negotiation import NegotiatedLeg

__all__ = ["MediaControl"]


class MediaControl(Protocol):
    """allocate / bridge / hold music / record / release, as signalling uses them."""

    def allocate(
        self,
        offer_sdp: bytes | str | None = None,
        *,
        direction: str = "sendrecv",
        on_dtmf: Any = None,
        inband_dtmf: bool | None = None,
        near: Any = None,
    ) -> NegotiatedLeg: ...

    def bridge(self, a: Any, b: Any) -> None: ...

    def set_hold_music(self, source: Any, endpoint: Any = None) -> None: ...

    def record(self, caller: Any, callee: Any, path: Any) -> Any: ...

    def stop_recording(self, recording: Any) -> None: ...

    def release(self, endpoint: Any) -> EndpointStats: ...

    def stats(self) -> EngineStats: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
