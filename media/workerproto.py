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

import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, ClassVar, cast, get_args

import numpy as np
import numpy.typing as npt

from media import framing
from media.control import EngineStats
from media.dtmf import Digit
from media.endpoint import EndpointStats
from media.engine import EngineSettings
from media.framing import FrameDecoder, ProtocolError, frame
from media.moh import HoldMusic as Playlist
from media.moh import PlaylistFiles
from media.sdp import NegotiatedStream
from media.srtp import SrtpKeys

MAX_MESSAGE = 64 << 20  # a long prompt as samples fits; anything bigger is a broken peer

Source = npt.NDArray[np.int16] | str
#: Hold music on the wire: a file or samples (looped), a playlist's files (the worker loads
#: and caches them), or a playlist built from samples.
HoldSource = Source | PlaylistFiles | Playlist


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
    return frame(out.getvalue(), type(message).__name__, MAX_MESSAGE)


def _message(obj: object) -> Message:
    if not isinstance(obj, _TYPES):
        raise ProtocolError(f"unexpected {type(obj).__name__} on the channel")
    return cast(Message, obj)


class MessageDecoder(FrameDecoder[Message]):
    """Reassemble messages from stream chunks (sans-I/O)."""

    def __init__(self) -> None:
        super().__init__(_message, MAX_MESSAGE)


class Channel(framing.Channel[Message]):
    """One end of the media-worker socket (`media.framing.Channel`)."""

    def __init__(
        self,
        on_message: Callable[[Message], None],
        on_lost: Callable[[str], None],
    ) -> None:
        super().__init__(
            on_message, on_lost, decoder=MessageDecoder(), encode=encode, name="media-worker"
        )
