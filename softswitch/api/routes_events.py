"""``/v1/events``: the event stream as a WebSocket (see ``softswitch.api.events``)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from softswitch.api.deps import authenticate_websocket
from softswitch.api.events import EventBus
from softswitch.api.roles import Area

__all__ = ["router"]

router = APIRouter()


@router.websocket("/v1/events")
async def events(websocket: WebSocket) -> None:
    """The event stream: one JSON object per event, as the caller's login may see them."""
    principal = await authenticate_websocket(websocket)
    if principal is None:
        await websocket.close(code=1008, reason="a valid token is required")
        return
    if not principal.may(Area.EVENTS, "r"):
        await websocket.close(code=1008, reason="not permitted: read events")
        return
    bus: EventBus = websocket.app.state.ctx.events
    await websocket.accept()
    listener = bus.subscribe(principal)
    receiver = asyncio.create_task(_drain_client(websocket))
    try:
        while True:
            getter = asyncio.create_task(listener.queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                break
            event = getter.result()
            if event is None:
                await websocket.close(code=1013, reason="too slow or shutting down")
                break
            await websocket.send_json(event.json())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        bus.unsubscribe(listener)
        receiver.cancel()


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message.get("type") == "websocket.disconnect":
                return
