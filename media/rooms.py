"""Mixing sessions of the engine: conference rooms and monitored calls.

Both are sessions of the engine's one :class:`media.mixer.Mixer`, so every room and
every monitored call of the engine is mixed in the same vectorised pass per tick.  An
endpoint belongs to at most one mixing session; while it does, it is decoded (never
relayed) and hears its row of the mix -- unless a player (a prompt, music on hold) is
active on it, which it then hears instead while its voice still reaches the session.

Created by :meth:`media.engine.MediaEngine.mix_room` and
:meth:`media.engine.MediaEngine.monitor`, which hand them a :class:`MixContext` (what a
session needs of its engine); changes take effect at the next tick and are cross-faded
by the mixer, so joins, mutes and mode switches never click.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from media.endpoint import Endpoint, MediaError
from media.mixer import MAX_GAIN, Mixer, MixerError, MonitorMode
from media.negotiation import NegotiatedLeg
from media.players import AudioSource, Playback, Player, load_source

__all__ = ["MixContext", "MixRoom", "MixSession", "Monitor", "MonitorMode", "monitor_mode"]

VOICE_HANG_TICKS = 15  # "talking" lasts 300 ms past the last loud frame


@dataclass(eq=False)
class MixContext:
    """What mixing sessions need of their engine, handed over by it (so this module does
    not depend on the engine): its mixer, endpoint ownership check, plan invalidation,
    voice activity by mixer slot, and the table of room announcements it plays."""

    mixer: Mixer
    own: Callable[[NegotiatedLeg], Endpoint]
    changed: Callable[[], None]
    voice_active: Callable[[int], bool]
    forget_voice: Callable[[int], None]  # a reused slot is not "talking" as its last owner
    announcers: dict[Player, MixRoom]


class MixSession:
    """What rooms and monitors share: membership of endpoints in one mixer session."""

    def __init__(self, context: MixContext) -> None:
        self._context = context
        self._mixer = context.mixer
        self._members: list[Endpoint] = []
        self.closed = False

    @property
    def members(self) -> list[Endpoint]:
        """Endpoints in the session, in join order."""
        return list(self._members)

    def _add(self, ep: Endpoint, *, talk: bool, listen: bool, gain: float) -> None:
        if self.closed:
            raise MediaError("the mixing session is closed")
        self._context.own(ep)
        if ep.mix is not None:
            raise MediaError(f"endpoint {ep.id} is already in a mixing session")
        try:
            slot = self._mixer.add(self, ep, talk=talk, listen=listen, gain=gain)
        except MixerError as exc:
            raise MediaError(str(exc)) from None
        self._context.forget_voice(slot)
        ep.mix = self
        self._members.append(ep)
        self._context.changed()

    def _remove(self, ep: Endpoint) -> None:
        if ep.mix is not self:
            raise MediaError(f"endpoint {ep.id} is not in this mixing session")
        self._mixer.remove(ep)
        ep.mix = None
        self._members.remove(ep)
        self._context.changed()

    def has(self, leg: NegotiatedLeg) -> bool:
        """Whether ``leg`` is a member now."""
        return isinstance(leg, Endpoint) and leg.mix is self

    def talking(self, leg: NegotiatedLeg) -> bool:
        """Voice activity: the endpoint sent a loud frame within the last 300 ms."""
        ep = self._context.own(leg)
        if ep.mix is not self:
            raise MediaError(f"endpoint {ep.id} is not in this mixing session")
        return self._context.voice_active(self._mixer.slot(ep))

    def _released(self, ep: Endpoint) -> None:
        """The engine releases a member (its call ended)."""
        self._remove(ep)


class MixRoom(MixSession):
    """A conference room: everybody hears everybody else (total minus self)."""

    def __init__(self, context: MixContext) -> None:
        super().__init__(context)
        self._announcements: set[Player] = set()

    def join(
        self, leg: NegotiatedLeg, *, talk: bool = True, listen: bool = True, gain: float = 1.0
    ) -> None:
        """Add an endpoint: ``talk`` False mutes it, ``listen`` False makes it deaf,
        ``gain`` scales what it says (0..8)."""
        self._add(self._context.own(leg), talk=talk, listen=listen, gain=gain)

    def leave(self, leg: NegotiatedLeg) -> None:
        """Remove an endpoint (it keeps its call; bridge or release it afterwards); no-op
        when it is not a member (a released leg left by itself)."""
        if isinstance(leg, Endpoint) and leg.mix is self:
            self._remove(leg)

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
        ep = self._context.own(leg)
        if ep.mix is not self:
            raise MediaError(f"endpoint {ep.id} is not in this room")
        for value in (gain, listen_gain):
            if value is not None and not 0.0 <= value <= MAX_GAIN:
                raise MediaError(f"gain {value} outside 0..{MAX_GAIN}")  # before any change
        try:
            if talk is not None:
                self._mixer.set_talk(ep, talk)
            if listen is not None:
                self._mixer.set_listen(ep, listen)
            if gain is not None:
                self._mixer.set_gain(ep, gain)
            if listen_gain is not None:
                self._mixer.set_listen_gain(ep, listen_gain)
        except MixerError as exc:
            raise MediaError(str(exc)) from None

    def announce(self, source: AudioSource) -> Playback:
        """Play audio into the room: every member hears it, mixed with the voices.

        Used for join/leave tones and recorded names; the handle resolves when it ends.
        """
        if self.closed:
            raise MediaError("the room is closed")
        playback = Playback(0, asyncio.get_running_loop().create_future())
        player = Player(load_source(source), playback=playback)
        self._mixer.add(self, player, listen=False)
        self._announcements.add(player)
        self._context.announcers[player] = self
        self._context.changed()
        return playback

    def _end_announcement(self, player: Player, reason: str) -> None:
        self._mixer.remove(player)
        self._announcements.discard(player)
        del self._context.announcers[player]
        player.finish(reason)
        self._context.changed()

    def close(self) -> None:
        """Remove every member and announcement (idempotent)."""
        for ep in list(self._members):
            self._remove(ep)
        for player in list(self._announcements):
            self._end_announcement(player, "stopped")
        self.closed = True


class Monitor(MixSession):
    """A supervisor on a two-party call: listen, whisper (to the agent) or barge.

    The caller and agent keep their bridge; while monitored all three are mixed, and
    :meth:`stop` hands the two back to their plain bridge.  Releasing any of the three
    endpoints stops the monitor (``ended`` is then set).
    """

    def __init__(
        self,
        context: MixContext,
        caller: Endpoint,
        agent: Endpoint,
        supervisor: Endpoint,
        mode: MonitorMode | str,
    ) -> None:
        super().__init__(context)
        if len({caller.id, agent.id, supervisor.id}) != 3:
            raise MediaError("caller, agent and supervisor must be three endpoints")
        mode = monitor_mode(mode)  # before anything is mixed: a bad mode changes nothing
        self.caller, self.agent, self.supervisor = caller, agent, supervisor
        self.ended = asyncio.Event()
        added: list[Endpoint] = []
        try:
            for ep in (caller, agent, supervisor):
                self._add(ep, talk=True, listen=True, gain=1.0)
                added.append(ep)
        except MediaError:
            for ep in added:
                self._remove(ep)
            raise
        self.mode = mode
        self._mixer.set_monitor(supervisor, mode, agent=agent)

    def set_mode(self, mode: MonitorMode | str) -> None:
        """Switch to listen, whisper or barge (any order, any time)."""
        if self.closed:
            raise MediaError("the monitor was stopped")
        self.mode = monitor_mode(mode)
        self._mixer.set_monitor(self.supervisor, self.mode, agent=self.agent)
        self._context.changed()

    def stop(self) -> None:
        """End monitoring: the supervisor leaves, the call is a plain bridge again."""
        if self.closed:
            return
        for ep in list(self._members):
            self._remove(ep)
        self.closed = True
        self.ended.set()

    def _released(self, ep: Endpoint) -> None:
        self.stop()


def monitor_mode(mode: MonitorMode | str) -> MonitorMode:
    """The mode named by ``mode``; MediaError naming the valid ones."""
    if isinstance(mode, MonitorMode):
        return mode
    try:
        return MonitorMode(mode)
    except ValueError:
        names = ", ".join(m.value for m in MonitorMode)
        raise MediaError(f"unknown monitor mode {mode!r} (one of {names})") from None
