"""The media control interface: what signalling and call applications may ask of media.

Two implementations offer it: the in-process :class:`media.engine.MediaEngine` and the
:class:`media.pool.MediaWorkerPool` (engines in worker processes, driven over
:mod:`media.workerproto`).  Applications (conference, monitoring, music on hold, and
later voicemail, attendants, queues) are written against these protocols only, so they
work the same with media in-process and in workers.

Legs are :class:`~media.negotiation.NegotiatedLeg` (the engine's ``Endpoint`` and the pool's
``WorkerEndpoint`` both are); each implementation checks that a leg is its own and raises
:class:`~media.negotiation.MediaError` otherwise.  What a leg's caller presses arrives as
events: the leg's ``digits`` queue and its ``on_dtmf`` callback.  Nothing here waits for
media: a request takes effect at the next tick (in-process) or once the worker reads it
(in order, pipelined); what ends later (a playback, a recording, a monitored call) is
reported through the handles below.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from media.dtmf import Digit
from media.endpoint import EndpointStats
from media.mixer import MonitorMode
from media.moh import HoldMusic
from media.negotiation import NegotiatedLeg
from media.players import AudioSource, Playback

__all__ = [
    "EngineStats",
    "HoldSource",
    "LegDtmfCallback",
    "MediaControl",
    "MixingRoom",
    "MonitorSession",
    "RecordingHandle",
]

#: What a held party hears: samples or a WAV file (looped), or a playlist.
HoldSource = AudioSource | HoldMusic

#: Called with the leg and the key for every key press detected on a leg.
LegDtmfCallback = Callable[[NegotiatedLeg, Digit], None]


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Engine-wide counters (for the bench and the admin API)."""

    endpoints: int
    relayed_directions: int
    decoded_legs: int
    ticks: int
    late_ticks: int
    resyncs: int
    tick_errors: int
    max_tick_ms: float
    busy_seconds: float


class RecordingHandle(Protocol):
    """A recording being written (a 2-channel 8 kHz WAV: caller, callee)."""

    @property
    def path(self) -> str:
        """The WAV file."""

    @property
    def active(self) -> bool:
        """False once stopped (the file may still be being completed by a worker)."""

    async def wait_closed(self) -> int:
        """Frames written, once the WAV is complete after a stop; MediaError if it could
        not be written."""


class MixingRoom(Protocol):
    """A conference room: every member hears every other member (total minus self).

    A room lives on one engine (one worker); a leg whose media sits elsewhere is relayed
    into it.  Releasing a leg takes it out of its room.
    """

    @property
    def closed(self) -> bool:
        """The room was closed."""

    def has(self, leg: NegotiatedLeg) -> bool:
        """Whether ``leg`` is a member now."""

    def join(
        self, leg: NegotiatedLeg, *, talk: bool = True, listen: bool = True, gain: float = 1.0
    ) -> None:
        """Add a leg: ``talk`` False mutes it, ``listen`` False makes it deaf, ``gain``
        scales what it says (0..8).  MediaError when it is in a mixing session already."""

    def leave(self, leg: NegotiatedLeg) -> None:
        """Take a leg out (it keeps its call); no-op when it is not a member."""

    def set(
        self,
        leg: NegotiatedLeg,
        *,
        talk: bool | None = None,
        listen: bool | None = None,
        gain: float | None = None,
        listen_gain: float | None = None,
    ) -> None:
        """Change a member's rights or gains (None keeps the current value)."""

    def talking(self, leg: NegotiatedLeg) -> bool:
        """Voice activity of a member (with workers: as of the last statistics push)."""

    def announce(self, source: AudioSource) -> Playback:
        """Play audio into the room, heard by every member; the handle says when it ends."""

    def close(self) -> None:
        """Remove every member and announcement (idempotent)."""


class MonitorSession(Protocol):
    """A supervisor mixed into a two-party call: listen, whisper (to the agent) or barge."""

    @property
    def mode(self) -> MonitorMode:
        """The current mode."""

    @property
    def closed(self) -> bool:
        """Stopped (by :meth:`stop` or because one of the three legs was released)."""

    @property
    def ended(self) -> asyncio.Event:
        """Set once the monitoring ended, whoever ended it."""

    def set_mode(self, mode: MonitorMode | str) -> None:
        """Switch to listen, whisper or barge; MediaError for an unknown mode."""

    def stop(self) -> None:
        """End monitoring: the call is a plain bridge again (idempotent)."""


class MediaControl(Protocol):
    """Anchored legs and what can be done with them (see the module docstring)."""

    async def start(self) -> None:
        """Start the engine (or the worker processes)."""

    async def close(self) -> None:
        """Release everything and stop."""

    def allocate(
        self,
        offer_sdp: bytes | str | None = None,
        *,
        direction: str = "sendrecv",
        on_dtmf: LegDtmfCallback | None = None,
        inband_dtmf: bool | None = None,
        near: NegotiatedLeg | None = None,
        srtp: str = "off",
    ) -> NegotiatedLeg:
        """A new leg answering ``offer_sdp`` (else offering); ``near``: beside that leg
        (the other leg of the same call), so the two can be bridged; ``srtp``: the leg's
        SRTP policy (off, optional, required)."""

    def release(self, leg: NegotiatedLeg) -> EndpointStats:
        """Close a leg (ends its playback, recordings, room and monitor membership)."""

    def bridge(self, a: NegotiatedLeg, b: NegotiatedLeg) -> None:
        """Connect two legs so each hears the other."""

    def unbridge(self, leg: NegotiatedLeg) -> None:
        """Disconnect a leg from its peer (no-op if not bridged)."""

    def play(
        self,
        leg: NegotiatedLeg,
        source: AudioSource | HoldMusic,
        *,
        loop: bool = False,
        barge_in: bool = False,
    ) -> Playback:
        """Play a prompt, music or a music-on-hold playlist (intro, messages, shuffle: it
        never finishes by itself) to a leg, replacing its playback; ``barge_in``: a key
        ends it.  ValueError naming the file when it cannot be played."""

    def stop(self, leg: NegotiatedLeg) -> None:
        """Stop a leg's playback (no-op if none)."""

    @property
    def hold_music(self) -> HoldSource | None:
        """The default music on hold (None: silence)."""

    def set_hold_music(
        self, source: HoldSource | None, endpoint: NegotiatedLeg | None = None
    ) -> None:
        """What a held party hears: engine-wide, or for one leg (its playlist)."""

    def record(
        self,
        caller: NegotiatedLeg,
        callee: NegotiatedLeg | None,
        path: str | os.PathLike[str],
    ) -> RecordingHandle:
        """Record a leg (and its peer) to a 2-channel WAV until :meth:`stop_recording`."""

    def stop_recording(self, recording: RecordingHandle) -> None:
        """Finish a recording (idempotent)."""

    def mix_room(self, near: NegotiatedLeg | None = None) -> MixingRoom:
        """A new, empty conference room (beside ``near``: where its first member is)."""

    def monitor(
        self,
        caller: NegotiatedLeg,
        agent: NegotiatedLeg,
        supervisor: NegotiatedLeg,
        mode: MonitorMode | str = MonitorMode.LISTEN,
    ) -> MonitorSession:
        """Mix ``supervisor`` into the call between ``caller`` and ``agent``."""

    def stats(self) -> EngineStats:
        """Engine-wide counters."""
