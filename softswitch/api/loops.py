"""Which loop the API's work runs on: the API's own, or the switch's.

The API may serve on its own thread and loop (`softswitch.api.server`); whatever reads or
drives the live switch must then run on the switch's loop, the only one that touches the
switch's objects. Each API loop is registered with the switch loop it serves.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["forget", "on_switch", "run_on_switch_loop", "serve_for", "switch_loop_of"]

T = TypeVar("T")

_SWITCH_LOOPS: dict[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop] = {}


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def serve_for(api_loop: asyncio.AbstractEventLoop, switch_loop: asyncio.AbstractEventLoop) -> None:
    """Requests served on ``api_loop`` drive the switch running on ``switch_loop``."""
    _SWITCH_LOOPS[api_loop] = switch_loop


def forget(api_loop: asyncio.AbstractEventLoop) -> None:
    _SWITCH_LOOPS.pop(api_loop, None)


def switch_loop_of(loop: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop | None:
    """The switch's loop when ``loop`` is a separate API loop; None otherwise."""
    return None if loop is None else _SWITCH_LOOPS.get(loop)


async def on_switch(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work()`` on the switch's loop and wait for it without blocking either loop;
    cancelling the caller cancels the work. On the switch's loop, simply awaits it."""
    switch_loop = switch_loop_of(running_loop())
    if switch_loop is None:
        return await work()

    async def run() -> T:
        return await work()

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), switch_loop))


def run_on_switch_loop(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` (an endpoint) made to run its body on the switch's loop; same signature.

    A plain function runs in FastAPI's worker threads, which belong to no loop: it is
    handed to the one switch loop registered, if any.
    """
    if inspect.iscoroutinefunction(call):

        @functools.wraps(call)
        async def on_loop(*args: Any, **kwargs: Any) -> Any:
            return await on_switch(lambda: call(*args, **kwargs))

        return on_loop

    @functools.wraps(call)
    def in_thread(*args: Any, **kwargs: Any) -> Any:
        loops = set(_SWITCH_LOOPS.values())
        if len(loops) != 1:
            return call(*args, **kwargs)

        async def run() -> Any:
            return call(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), loops.pop()).result()

    return in_thread
