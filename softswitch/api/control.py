"""The control channel between the switch and its admin-API process: messages and framing.

The API process asks (`Request`: one `softswitch.api.live.Live` operation, by name, with
its arguments and an id) and the switch answers each on its loop (`Reply`, or `Refused`
with a `LiveError`'s code and message). The switch starts the API with `Setup` and stops
it with `Stop`; the API says `Ready` once it listens. While any client listens to
/v1/events the API asks for the event feed (`Feed(on=True)`) and the switch sends what its
sampler and its CDRs publish as `Events`, batched per loop turn.

Framing: a 4-byte big-endian length, then a pickled message. Both ends are processes of
the same installation, the API started by the switch over a socket pair, never a network
peer (the same choice as `media.workerproto`): the rows the switch sends need no encoding
of their own, and pickling them is cheaper for the switch's loop than JSON. This module
is sans-I/O (`encode`, `MessageDecoder`); `softswitch.api.channel` drives it on asyncio.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any, cast

from config.models import SwitchConfig
from media.framing import FrameDecoder, ProtocolError, frame
from softswitch.api.events import Event

__all__ = [
    "OPERATIONS",
    "Events",
    "Feed",
    "Message",
    "MessageDecoder",
    "ProtocolError",
    "Ready",
    "Refused",
    "Reply",
    "Request",
    "Setup",
    "Stop",
    "encode",
]

MAX_MESSAGE = 64 * 1024 * 1024  # a frame longer than this is a broken channel

# The `Live` operations the API may request (softswitch.api.live.Live's methods).
OPERATIONS = frozenset(
    {
        "registrations",
        "registered",
        "calls",
        "hang_up",
        "monitor",
        "conferences",
        "conference_history",
        "invite",
        "mute",
        "kick",
        "refresh_disaster_plans",
        "apply_provisioning",
        "metrics",
    }
)


@dataclass(frozen=True, slots=True)
class Setup:
    """Switch -> API, first: the switch's configuration (the API reads the tenants from
    the Store itself, as provisioned now)."""

    config: SwitchConfig


@dataclass(frozen=True, slots=True)
class Ready:
    """API -> switch: listening, in process ``pid``."""

    pid: int


@dataclass(frozen=True, slots=True)
class Request:
    """API -> switch: run ``Live.<op>(*args)``; answered with the same ``id``."""

    id: int
    op: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    value: Any


@dataclass(frozen=True, slots=True)
class Refused:
    """The operation raised `LiveError` (or failed: code ``internal``)."""

    id: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Feed:
    """API -> switch: send events (someone listens to /v1/events) or stop sending them."""

    on: bool


@dataclass(frozen=True, slots=True)
class Events:
    """Switch -> API: what happened, in order."""

    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Stop:
    """Switch -> API: close the listener, finish the requests in progress, exit."""


Message = Setup | Ready | Request | Reply | Refused | Feed | Events | Stop
_TYPES = (Setup, Ready, Request, Reply, Refused, Feed, Events, Stop)


def encode(message: Message) -> bytes:
    """One framed message."""
    return frame(pickle.dumps(message, protocol=5), type(message).__name__, MAX_MESSAGE)


def _message(obj: object) -> Message:
    if not isinstance(obj, _TYPES):
        raise ProtocolError(f"unexpected {type(obj).__name__} on the channel")
    if isinstance(obj, Request) and obj.op not in OPERATIONS:
        raise ProtocolError(f"unknown operation {obj.op!r}")
    return cast(Message, obj)


class MessageDecoder(FrameDecoder[Message]):
    """Reassemble messages from stream chunks (sans-I/O)."""

    def __init__(self) -> None:
        super().__init__(_message, MAX_MESSAGE)
