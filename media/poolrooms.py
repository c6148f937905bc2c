"""Conference rooms and monitors of a media-worker pool, and the links that feed them.

A room (or a monitored call) lives on one worker, which mixes it like the in-process
engine does.  A leg whose media sits on another worker is not moved: it is *linked* -- a
pair of internal legs, ``near`` on the leg's worker (bridged to the leg) and ``far`` on the
room's worker (in the room), exchanging RTP over the loopback or bind address.  The leg
keeps its port, its peer's packets keep arriving where they did, and the relay into
``near`` is a header rewrite, so the caller hears no gap when it joins, and its key
presses are still detected on its own leg.  Prompts and music played to the leg are played
by its own worker, as they would be without the room.

:class:`WorkerRoom` and :class:`WorkerMonitor` implement
:class:`media.control.MixingRoom` and :class:`media.control.MonitorSession`; the pool
creates them and feeds them the worker's events (who talks, a monitor ended).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol

from media.endpoint import MediaError
from media.mixer import MAX_GAIN, MonitorMode
from media.negotiation import NegotiatedLeg
from media.players import AudioSource, Playback
from media.rooms import monitor_mode
from media.workerlegs import WorkerEndpoint, WorkerProcess
from media.workerproto import (
    MonitorSet,
    MonitorStart,
    MonitorStop,
    RoomClose,
    RoomJoin,
    RoomLeave,
    RoomOpen,
    RoomSet,
)

__all__ = ["Link", "RoomHost", "WorkerMonitor", "WorkerRoom"]


@dataclass(eq=False)
class Link:
    """``leg`` relayed into another worker: ``near`` beside it (bridged to it) and
    ``far`` on the other worker, each sending to the other."""

    leg: WorkerEndpoint
    near: WorkerEndpoint
    far: WorkerEndpoint


class RoomHost(Protocol):
    """What rooms and monitors need of their pool."""

    def own(self, leg: NegotiatedLeg) -> WorkerEndpoint:
        """The leg as one of the pool's live endpoints; MediaError otherwise."""

    def link(self, leg: WorkerEndpoint, worker: WorkerProcess) -> Link:
        """Relay ``leg`` into ``worker``."""

    def unlink(self, link: Link) -> None:
        """Undo :meth:`link`: the leg is unbridged, the internal legs released."""

    def bind(self, leg: WorkerEndpoint, session: WorkerRoom | WorkerMonitor) -> None:
        """Note that ``leg`` is in ``session``; MediaError if it is in one already."""

    def unbind(self, leg: WorkerEndpoint) -> None:
        """``leg`` left its session."""

    def announce(self, worker: WorkerProcess, room: int, source: AudioSource) -> Playback:
        """Play ``source`` into room ``room`` of ``worker``."""

    def forget(self, session: WorkerRoom | WorkerMonitor) -> None:
        """A closed room or ended monitor: no more events for it."""


class WorkerRoom:
    """A conference room on one worker of the pool (see the module docstring)."""

    def __init__(self, host: RoomHost, room_id: int, worker: WorkerProcess) -> None:
        self.id = room_id
        self.worker = worker
        self._host = host
        self._members: dict[int, tuple[WorkerEndpoint, Link | None]] = {}
        self._talking: frozenset[int] = frozenset()  # ids inside the room, as last reported
        self._closed = False
        worker.send(RoomOpen(room_id))

    @property
    def closed(self) -> bool:
        """The room was closed (or its worker died)."""
        return self._closed

    @property
    def members(self) -> list[WorkerEndpoint]:
        """Member legs, in join order."""
        return [ep for ep, _ in self._members.values()]

    def has(self, leg: NegotiatedLeg) -> bool:
        """Whether ``leg`` is a member now."""
        entry = self._members.get(leg.id)
        return entry is not None and entry[0] is leg

    def _inside(self, leg: NegotiatedLeg) -> int:
        """The id of the leg that stands for ``leg`` in the worker's room."""
        entry = self._members.get(leg.id)
        if entry is None or entry[0] is not leg:
            raise MediaError(f"endpoint {leg.id} is not in this room")
        link = entry[1]
        return leg.id if link is None else link.far.id

    def join(
        self, leg: NegotiatedLeg, *, talk: bool = True, listen: bool = True, gain: float = 1.0
    ) -> None:
        """Add a leg (linked in when its media is on another worker)."""
        if self._closed:
            raise MediaError("the mixing session is closed")
        _check_gain(gain)
        ep = self._host.own(leg)
        self._host.bind(ep, self)
        try:
            link = None if ep.worker is self.worker else self._host.link(ep, self.worker)
            inside = ep if link is None else link.far
            self.worker.send(RoomJoin(self.id, inside.id, talk, listen, gain))
        except Exception:
            self._host.unbind(ep)
            raise
        self._members[ep.id] = (ep, link)

    def leave(self, leg: NegotiatedLeg) -> None:
        """Take a leg out (it keeps its call); no-op when it is not a member."""
        if not self.has(leg):
            return
        ep, link = self._members.pop(leg.id)
        self._host.unbind(ep)
        if link is not None:
            self._host.unlink(link)  # releasing ``far`` takes it out of the worker's room
        elif self.worker.alive and not ep.released:
            with contextlib.suppress(MediaError):  # leaving never fails (hang-up clean-up)
                self.worker.send(RoomLeave(self.id, ep.id))

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
        inside = self._inside(leg)
        for value in (gain, listen_gain):
            if value is not None:
                _check_gain(value)
        self.worker.send(RoomSet(self.id, inside, talk, listen, gain, listen_gain))

    def talking(self, leg: NegotiatedLeg) -> bool:
        """Voice activity of a member, as its worker last reported it (4 times a second)."""
        return self._inside(leg) in self._talking

    def announce(self, source: AudioSource) -> Playback:
        """Play audio into the room, heard by every member."""
        if self._closed:
            raise MediaError("the room is closed")
        return self._host.announce(self.worker, self.id, source)

    def close(self) -> None:
        """Remove every member and announcement (idempotent)."""
        if self._closed:
            return
        for ep, _ in list(self._members.values()):
            self.leave(ep)
        self._closed = True
        if self.worker.alive:
            with contextlib.suppress(MediaError):
                self.worker.send(RoomClose(self.id))
        self._host.forget(self)

    def on_talking(self, talking: tuple[int, ...]) -> None:
        """The worker's report of who talks."""
        self._talking = frozenset(talking)

    def on_worker_lost(self) -> None:
        """The room's worker died: members elsewhere are unlinked, the room is closed."""
        for ep, link in list(self._members.values()):
            self._host.unbind(ep)
            if link is not None:
                self._host.unlink(link)
        self._members.clear()
        self._closed = True
        self._host.forget(self)


class WorkerMonitor:
    """A supervisor mixed into a two-party call on the call's worker."""

    def __init__(
        self,
        host: RoomHost,
        monitor_id: int,
        caller: WorkerEndpoint,
        agent: WorkerEndpoint,
        supervisor: WorkerEndpoint,
        mode: MonitorMode | str,
    ) -> None:
        if len({caller.id, agent.id, supervisor.id}) != 3:
            raise MediaError("caller, agent and supervisor must be three endpoints")
        if caller.worker is not agent.worker:
            raise MediaError(
                f"endpoints {caller.id} and {agent.id} are on different media workers: not one call"
            )
        self._mode = monitor_mode(mode)
        self.id = monitor_id
        self.worker = caller.worker
        self.caller, self.agent, self.supervisor = caller, agent, supervisor
        self._host = host
        self._closed = False
        self._ended = asyncio.Event()
        bound: list[WorkerEndpoint] = []
        self._link: Link | None = None
        try:
            for ep in (caller, agent, supervisor):
                host.bind(ep, self)
                bound.append(ep)
            if supervisor.worker is not self.worker:
                self._link = host.link(supervisor, self.worker)
            inside = supervisor if self._link is None else self._link.far
            self.worker.send(
                MonitorStart(monitor_id, caller.id, agent.id, inside.id, self._mode.value)
            )
        except Exception:
            for ep in bound:
                host.unbind(ep)
            if self._link is not None:
                host.unlink(self._link)
            raise

    @property
    def mode(self) -> MonitorMode:
        """The current mode."""
        return self._mode

    @property
    def closed(self) -> bool:
        """Stopped, or ended by a released leg or a dead worker."""
        return self._closed

    @property
    def ended(self) -> asyncio.Event:
        """Set once monitoring ended."""
        return self._ended

    def set_mode(self, mode: MonitorMode | str) -> None:
        """Switch to listen, whisper or barge."""
        if self._closed:
            raise MediaError("the monitor was stopped")
        self._mode = monitor_mode(mode)
        self.worker.send(MonitorSet(self.id, self._mode.value))

    def stop(self) -> None:
        """End monitoring: the call is a plain bridge again (idempotent)."""
        if self._closed:
            return
        if self.worker.alive:
            with contextlib.suppress(MediaError):
                self.worker.send(MonitorStop(self.id))
        self.on_ended()

    def on_ended(self) -> None:
        """Monitoring ended (stopped here, or reported ended by the worker)."""
        if self._closed:
            return
        self._closed = True
        for ep in (self.caller, self.agent, self.supervisor):
            self._host.unbind(ep)
        if self._link is not None:
            self._host.unlink(self._link)
            self._link = None
        self._host.forget(self)
        self._ended.set()


def _check_gain(value: float) -> None:
    if not 0.0 <= value <= MAX_GAIN:
        raise MediaError(f"gain {value} outside 0..{MAX_GAIN}")
