"""The control protocol between signalling and a media-worker process.

Commands flow one way (signalling -> worker) and events the other, over one Unix stream
socket pair, in order and without replies: signalling pipelines a call's commands without
waiting, and the worker reports what happened asynchronously (DTMF, playbacks ending,
statistics, failures).  Endpoints, playbacks and recordings are named by ids that the
signalling side assigns, so no command waits for the worker to name anything.

Framing: a 4-byte big-endian length, then a pickled message (protocol 5: numpy sample
buffers travel without copies).  Both ends are processes of the same installation started
by the pool, never a network peer.  :class:`MessageDecoder` is sans-I/O;
:class:`Channel` is the asyncio adapter used on both sides.
"""

from __future__ import annotations

import asyncio
import io
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, ClassVar, cast, get_args

import numpy as np
import numpy.typing as npt
import structlog

from media.control import EngineStats
from media.dtmf import Digit
from media.endpoint import EndpointStats
from media.engine import EngineSettings
from media.moh import HoldMusic as Playlist
from media.moh import PlaylistFiles
from media.sdp import NegotiatedStream
from media.srtp import SrtpKeys

log = structlog.get_logger(__name__)

_LENGTH = struct.Struct("!I")
MAX_MESSAGE = 64 << 20  # a long prompt as samples fits; anything bigger is a broken peer

Source = npt.NDArray[np.int16] | str
#: Hold music on the wire: a file or samples (looped), a playlist's files (the worker loads
#: and caches them), or a playlist built from samples.
HoldSource = Source | PlaylistFiles | Playlist


class ProtocolError(ValueError):
    """A frame on the control channel that cannot be a message."""


# ---- commands (signalling -> worker) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """First command: the worker's engine settings (its slice of the port range)."""

    index: int
    settings: EngineSettings
    stats_interval: float


@dataclass(frozen=True, slots=True)
class Open:
    """Bind exactly ``port``/``port + 1`` for endpoint ``endpoint``; ``stream`` if already
    negotiated (an answered offer), None while our offer is outstanding."""

    endpoint: int
    port: int
    inband_dtmf: bool | None
    stream: NegotiatedStream | None
    keys: SrtpKeys | None = None  # the stream's SRTP keys (None: plain RTP)


@dataclass(frozen=True, slots=True)
class Negotiated:
    """A new stream is in force on an endpoint (answer, re-INVITE, the peer's answer), with
    its SRTP keys (None: plain RTP)."""

    endpoint: int
    stream: NegotiatedStream
    keys: SrtpKeys | None = None


@dataclass(frozen=True, slots=True)
class Bridge:
    a: int
    b: int


@dataclass(frozen=True, slots=True)
class Unbridge:
    endpoint: int


@dataclass(frozen=True, slots=True)
class Play:
    """Play ``source`` (a WAV path, int16 samples or a playlist) as playback ``playback``."""

    endpoint: int
    playback: int
    source: HoldSource
    loop: bool
    barge_in: bool


@dataclass(frozen=True, slots=True)
class StopPlay:
    endpoint: int


@dataclass(frozen=True, slots=True)
class HoldMusic:
    """Hold music for one endpoint, or worker-wide when ``endpoint`` is None."""

    endpoint: int | None
    source: HoldSource | None


@dataclass(frozen=True, slots=True)
class Record:
    recording: int
    caller: int
    callee: int | None
    path: str


@dataclass(frozen=True, slots=True)
class StopRecording:
    recording: int


@dataclass(frozen=True, slots=True)
class Release:
    endpoint: int


@dataclass(frozen=True, slots=True)
class Report:
    """Push the statistics now (besides the periodic push), answering ``request``: the
    answer also says that every command sent before this one has been applied."""

    request: int


@dataclass(frozen=True, slots=True)
class Close:
    """Release everything, stop the engine and exit."""


@dataclass(frozen=True, slots=True)
class RoomOpen:
    """A new, empty conference room ``room`` on this worker."""

    room: int


@dataclass(frozen=True, slots=True)
class RoomJoin:
    room: int
    endpoint: int
    talk: bool
    listen: bool
    gain: float


@dataclass(frozen=True, slots=True)
class RoomLeave:
    room: int
    endpoint: int


@dataclass(frozen=True, slots=True)
class RoomSet:
    """Change a member's rights or gains (None keeps the value)."""

    room: int
    endpoint: int
    talk: bool | None
    listen: bool | None
    gain: float | None
    listen_gain: float | None


@dataclass(frozen=True, slots=True)
class RoomAnnounce:
    """Play ``source`` into the room as playback ``playback`` (ends with PlaybackEnded)."""

    room: int
    playback: int
    source: Source


@dataclass(frozen=True, slots=True)
class RoomClose:
    room: int


@dataclass(frozen=True, slots=True)
class MonitorStart:
    """Mix ``supervisor`` into the call of ``caller`` and ``agent`` as monitor ``monitor``."""

    monitor: int
    caller: int
    agent: int
    supervisor: int
    mode: str


@dataclass(frozen=True, slots=True)
class MonitorSet:
    monitor: int
    mode: str


@dataclass(frozen=True, slots=True)
class MonitorStop:
    monitor: int


# ---- events (worker -> signalling) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonitorEnded:
    """Monitor ``monitor`` ended in the worker (stopped, one of its legs released, or it
    could not start)."""

    monitor: int


@dataclass(frozen=True, slots=True)
class RoomTalking:
    """The members of ``room`` talking now (sent when the set changes)."""

    room: int
    talking: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Ready:
    pid: int


@dataclass(frozen=True, slots=True)
class DtmfDetected:
    endpoint: int
    digit: Digit


@dataclass(frozen=True, slots=True)
class PlaybackEnded:
    playback: int
    reason: str


@dataclass(frozen=True, slots=True)
class Statistics:
    """A part of a statistics push; the last part carries the engine's counters and, for
    a push asked for by :class:`Report`, its ``request``."""

    endpoints: dict[int, EndpointStats]
    engine: EngineStats | None
    cpu_seconds: float
    answers: int | None = None


@dataclass(frozen=True, slots=True)
class Released:
    """The final statistics of a released endpoint (None if it never opened)."""

    endpoint: int
    stats: EndpointStats | None


@dataclass(frozen=True, slots=True)
class RecordingClosed:
    """A recording ended: its WAV is complete, or it could not be written (``error``)."""

    recording: int
    frames: int
    error: str | None


@dataclass(frozen=True, slots=True)
class Failed:
    """A command failed in the worker; ``endpoint`` is the leg it concerned, if any.

    A failed ``Open`` (the port pair was taken meanwhile) leaves the endpoint unusable;
    other failures are reported for the log.
    """

    endpoint: int | None
    command: str
    message: str


Command = (
    Start
    | Open
    | Negotiated
    | Bridge
    | Unbridge
    | Play
    | StopPlay
    | HoldMusic
    | Record
    | StopRecording
    | Release
    | Report
    | Close
    | RoomOpen
    | RoomJoin
    | RoomLeave
    | RoomSet
    | RoomAnnounce
    | RoomClose
    | MonitorStart
    | MonitorSet
    | MonitorStop
)
Event = (
    Ready
    | DtmfDetected
    | PlaybackEnded
    | Statistics
    | Released
    | RecordingClosed
    | Failed
    | MonitorEnded
    | RoomTalking
)
Message = Command | Event
_TYPES = get_args(Command) + get_args(Event)


class _Pickler(pickle.Pickler):
    """Pickles every frozen dataclass as a call of its constructor with its fields.

    Frozen dataclasses of the modules compiled with mypyc (setup.py) refuse the default
    way back, field by field ("cannot assign to field"); any of them may travel in a
    message, so the rule is for all frozen dataclasses, not a list of the ones today."""

    _by_type: ClassVar[dict[type, tuple[str, ...] | None]] = {}

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        names = self._by_type.get(cls, ())
        if names == ():
            names = self._by_type[cls] = _constructor_fields(cls)
        if names is None:
            return NotImplemented
        return cls, tuple(getattr(obj, name) for name in names)


def _constructor_fields(cls: type) -> tuple[str, ...] | None:
    """The fields a frozen dataclass is built from, or None for any other type."""
    if not is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        return None
    found = fields(cls)
    return tuple(f.name for f in found) if all(f.init for f in found) else None


def encode(message: Message) -> bytes:
    """One framed message."""
    out = io.BytesIO()
    _Pickler(out, protocol=5).dump(message)
    body = out.getvalue()
    if len(body) > MAX_MESSAGE:
        raise ProtocolError(f"{type(message).__name__} message of {len(body)} bytes is too big")
    return _LENGTH.pack(len(body)) + body


class MessageDecoder:
    """Reassemble messages from stream chunks (sans-I/O)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by ``data``; raises ProtocolError on a bad frame."""
        self._buffer += data
        messages: list[Message] = []
        offset = 0
        buf = self._buffer
        while len(buf) - offset >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buf, offset)
            if length > MAX_MESSAGE:
                raise ProtocolError(f"frame of {length} bytes exceeds {MAX_MESSAGE}")
            end = offset + _LENGTH.size + length
            if len(buf) < end:
                break
            try:
                message = pickle.loads(buf[offset + _LENGTH.size : end])
            except Exception as exc:
                raise ProtocolError(f"undecodable frame of {length} bytes: {exc}") from None
            if not isinstance(message, _TYPES):
                raise ProtocolError(f"unexpected {type(message).__name__} on the channel")
            messages.append(message)
            offset = end
        del buf[:offset]
        return messages


class Channel(asyncio.Protocol):
    """One end of the control socket: ``send`` buffers without waiting; each received
    message goes to ``on_message``; ``on_lost`` is called once when the other end is gone
    (EOF, a socket error or a bad frame)."""

    def __init__(
        self,
        on_message: Callable[[Message], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self._on_message = on_message
        self._on_lost: Callable[[str], None] | None = on_lost
        self._decoder = MessageDecoder()
        self._transport: asyncio.Transport | None = None

    @property
    def open(self) -> bool:
        """Whether messages can still be sent."""
        return self._transport is not None and not self._transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, message: Message) -> None:
        """Queue a message (in order); raises ConnectionError once the channel is closed."""
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError("the media-worker channel is closed")
        self._transport.write(encode(message))

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._decoder.feed(data)
        except ProtocolError as exc:
            self._lose(str(exc))
            return
        for message in messages:
            try:
                self._on_message(message)
            except Exception:
                # one failing handler must not take the channel (and every call) down
                log.exception("media_worker_message_failed", message=type(message).__name__)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(f"channel closed ({exc})" if exc else "channel closed")

    def close(self) -> None:
        """Close after the queued messages are written."""
        if self._transport is not None:
            self._transport.close()

    def _lose(self, reason: str) -> None:
        if self._transport is not None:
            self._transport.close()
        callback, self._on_lost = self._on_lost, None
        if callback is not None:
            callback(reason)
