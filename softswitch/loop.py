"""Event loop selection: uvloop when it is installed, the stdlib loop otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")

try:  # uvloop is optional (no Windows build); signalling is markedly faster on it
    import uvloop as _uvloop
except ImportError:  # pragma: no cover - depends on the installation
    _uvloop = None  # type: ignore[assignment]


def uvloop_available() -> bool:
    """True when uvloop can be used."""
    return _uvloop is not None


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The function that creates the preferred kind of event loop."""
    if _uvloop is not None:
        return _uvloop.new_event_loop
    return asyncio.new_event_loop


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of the preferred kind (uvloop if importable, else asyncio's)."""
    return loop_factory()()


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """Run ``main`` to completion on a new loop of the preferred kind, like ``asyncio.run``."""
    with asyncio.Runner(debug=debug, loop_factory=loop_factory()) as runner:
        return runner.run(main)
