"""The conference bridge application and the per-switch registry of conferences.

A caller reaching a bridge (by extension, DID or auto attendant) runs
:func:`conference_app`:

1. PIN: with PINs configured the caller hears rising beeps and keys the PIN followed by
   ``#``; the leader PIN grants leader rights.  After ``pin_attempts`` wrong entries the
   caller hears a low refusal tone and is hung up.
2. Full: a bridge at ``max_participants`` refuses with a fast-busy tone and hangs up.
3. Name: with ``record_names`` the caller hears a beep and says their name (up to
   ``name_seconds``, ``#`` ends early); it is played to the conference with the join and
   leave tones.
4. Waiting: until ``min_participants`` are in (and, with ``require_leader``, a leader has
   entered the leader PIN) everybody hears music on hold; the conference then starts and
   everyone hears everyone.
5. In the conference, keys as in FreeSWITCH's default conference controls:

   ====  ==============================
   0     mute / unmute yourself
   \\*   deaf and mute / undo
   1 2 3 talk volume down / normal / up
   4 5 6 listen volume down / normal / up
   #     leave the conference
   ====  ==============================

6. It ends when the caller hangs up, presses ``#`` or is kicked; the last one out ends the
   conference, which goes to the report of past conferences.

:class:`ConferenceRegistry` (one per switch) lists active conferences and their
participants (name, number, leader, muted, talking), mutes, kicks, invites by dialling
out through a hook the calls side provides, and keeps the report of past conferences.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import numpy.typing as npt
import structlog

from config.conference import ConferenceBridge
from media.control import MediaControl, MixingRoom
from media.endpoint import MediaError
from media.moh import HoldMusic
from media.players import AudioSource, Playback, load_source
from media.wav import read_wav
from softswitch.apps import prompts
from softswitch.apps.session import AppSession, collect_digits, flush_digits, play

__all__ = [
    "ConferenceError",
    "ConferenceInfo",
    "ConferenceRegistry",
    "ConferenceReport",
    "DialOut",
    "ParticipantInfo",
    "ParticipantRecord",
    "Role",
    "conference_app",
]

log = structlog.get_logger(__name__)

# The calls side dials ``number`` for ``tenant`` and, once answered, runs
# ``conference_app(session, bridge, registry, role=Role.PARTICIPANT)`` on the new call.
DialOut = Callable[[str, ConferenceBridge, str], Awaitable[None]]

_PIN_MAX = 12  # digits, as config.conference allows
_LEVEL_DB = 3.0  # one volume step
_LEVEL_MAX = 4  # steps either way (+-12 dB)


class ConferenceError(Exception):
    """A registry request that cannot be carried out (unknown conference or participant)."""


class Role(Enum):
    """What the caller's PIN granted."""

    PARTICIPANT = "participant"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class ParticipantInfo:
    """A participant as the admin listing shows it."""

    id: str  # the call id
    name: str
    number: str
    leader: bool
    muted: bool
    talking: bool
    joined_at: float


@dataclass(frozen=True, slots=True)
class ConferenceInfo:
    """An active conference."""

    tenant: str
    name: str
    extension: str
    started_at: float  # when the first caller joined
    running: bool  # False while waiting for the minimum or a leader (music on hold)
    participants: tuple[ParticipantInfo, ...]


@dataclass(frozen=True, slots=True)
class ParticipantRecord:
    """One stay in a past conference."""

    id: str
    name: str
    number: str
    leader: bool
    joined_at: float
    left_at: float
    reason: str  # hangup, left (#), kicked


@dataclass(frozen=True, slots=True)
class ConferenceReport:
    """A past conference with everyone who was in it."""

    tenant: str
    name: str
    extension: str
    started_at: float
    ended_at: float
    participants: tuple[ParticipantRecord, ...]


@dataclass(eq=False)
class _Participant:
    session: AppSession
    leader: bool
    joined_at: float
    name_audio: npt.NDArray[np.int16] | None
    muted: bool = False
    deaf: bool = False
    talk_level: int = 0
    listen_level: int = 0
    hold: Playback | None = None  # music on hold while the conference waits
    kicked: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> str:
        return self.session.call_id


@dataclass(eq=False)
class _Conference:
    tenant: str
    bridge: ConferenceBridge
    engine: MediaControl
    room: MixingRoom
    started_at: float
    participants: dict[str, _Participant] = field(default_factory=dict)
    records: list[ParticipantRecord] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """Enough callers in (and a leader when one is required)."""
        b = self.bridge
        leader = not b.require_leader or any(p.leader for p in self.participants.values())
        return leader and len(self.participants) >= b.min_participants


def _gain(level: int) -> float:
    return float(10 ** (level * _LEVEL_DB / 20))


class ConferenceRegistry:
    """All active conferences of a switch, keyed by tenant and bridge name."""

    def __init__(
        self,
        *,
        dial_out: DialOut | None = None,
        hold_music: AudioSource | None = None,
        pin_attempts: int = 3,
        digit_timeout: float = 8.0,
        name_seconds: float = 3.0,
        spool_dir: str | os.PathLike[str] | None = None,
        history_size: int = 1000,
        on_report: Callable[[ConferenceReport], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if pin_attempts < 1 or digit_timeout <= 0 or name_seconds <= 0 or history_size < 1:
            raise ValueError("pin_attempts, digit_timeout, name_seconds, history_size must be > 0")
        self.dial_out = dial_out
        self.hold_music = None if hold_music is None else load_source(hold_music)
        self.pin_attempts = pin_attempts
        self.digit_timeout = digit_timeout
        self.name_seconds = name_seconds
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.on_report = on_report  # e.g. the store's writer: reports are kept in memory only
        self._clock = clock
        self._active: dict[tuple[str, str], _Conference] = {}
        self._history: deque[ConferenceReport] = deque(maxlen=history_size)

    # ---- admin ----------------------------------------------------------------------

    def active(self, tenant: str | None = None) -> list[ConferenceInfo]:
        """Active conferences (of one tenant, or all)."""
        return [
            self._info(c) for (t, _), c in self._active.items() if tenant is None or t == tenant
        ]

    def conference(self, tenant: str, name: str) -> ConferenceInfo:
        """One active conference; raises ConferenceError when it is not running."""
        return self._info(self._get(tenant, name))

    def history(self, tenant: str | None = None) -> list[ConferenceReport]:
        """Past conferences, oldest first (the last ``history_size`` of the switch)."""
        return [r for r in self._history if tenant is None or r.tenant == tenant]

    def mute(self, tenant: str, name: str, participant: str, muted: bool = True) -> None:
        """Mute or unmute a participant (by call id)."""
        conf = self._get(tenant, name)
        self._set_mute(conf, self._participant(conf, participant), muted)

    def kick(self, tenant: str, name: str, participant: str) -> None:
        """Remove a participant from the conference and hang up their call."""
        self._participant(self._get(tenant, name), participant).kicked.set()

    async def invite(self, tenant: str, bridge: ConferenceBridge, number: str) -> None:
        """Dial ``number`` and bring the answered call into ``bridge`` (no PIN asked)."""
        if self.dial_out is None:
            raise ConferenceError("inviting needs dialling out, which is not set up")
        await self.dial_out(tenant, bridge, number)

    # ---- internals ------------------------------------------------------------------

    def _get(self, tenant: str, name: str) -> _Conference:
        conf = self._active.get((tenant, name))
        if conf is None:
            raise ConferenceError(f"no active conference {name!r} in tenant {tenant!r}")
        return conf

    @staticmethod
    def _participant(conf: _Conference, participant: str) -> _Participant:
        p = conf.participants.get(participant)
        if p is None:
            raise ConferenceError(f"{participant!r} is not in conference {conf.bridge.name!r}")
        return p

    def _info(self, conf: _Conference) -> ConferenceInfo:
        parts = tuple(
            ParticipantInfo(
                id=p.id,
                name=p.session.caller_name,
                number=p.session.caller_number,
                leader=p.leader,
                muted=p.muted,
                talking=conf.room.has(p.session.endpoint) and conf.room.talking(p.session.endpoint),
                joined_at=p.joined_at,
            )
            for p in conf.participants.values()
        )
        b = conf.bridge
        return ConferenceInfo(
            conf.tenant, b.name, b.extension, conf.started_at, conf.running, parts
        )

    def _set_mute(self, conf: _Conference, p: _Participant, muted: bool) -> None:
        p.muted = muted
        conf.room.set(p.session.endpoint, talk=not (muted or p.deaf))

    def _music(self, engine: MediaControl) -> AudioSource:
        for music in (self.hold_music, engine.hold_music):
            if music is not None and not isinstance(music, HoldMusic):  # playlists: held calls
                return music
        return prompts.HOLD_MUSIC

    def _refresh(self, conf: _Conference) -> None:
        """Music on hold for everybody while the conference waits, the mix once it runs."""
        running = conf.running
        for p in conf.participants.values():
            ep = p.session.endpoint
            if ep.released:
                continue
            if running and p.hold is not None:
                p.hold = None
                conf.engine.stop(ep)
            elif not running and (p.hold is None or p.hold.done()):
                p.hold = conf.engine.play(ep, self._music(conf.engine), loop=True)

    def _full(self, tenant: str, bridge: ConferenceBridge) -> bool:
        conf = self._active.get((tenant, bridge.name))
        return conf is not None and len(conf.participants) >= bridge.max_participants

    def _join(
        self,
        session: AppSession,
        bridge: ConferenceBridge,
        role: Role,
        name_audio: npt.NDArray[np.int16] | None,
    ) -> tuple[_Conference, _Participant]:
        key = (session.tenant, bridge.name)
        conf = self._active.get(key)
        if conf is None:
            # the room goes where the first caller's media is (with media workers, the
            # others are linked in from theirs)
            room = session.engine.mix_room(near=session.endpoint)
            conf = _Conference(session.tenant, bridge, session.engine, room, self._clock())
            self._active[key] = conf
            log.info("conference_started", tenant=session.tenant, conference=bridge.name)
        elif conf.engine is not session.engine:
            raise ConferenceError(f"conference {bridge.name!r} runs on another media engine")
        p = _Participant(session, role is Role.LEADER, self._clock(), name_audio)
        conf.room.join(session.endpoint)
        conf.participants[p.id] = p
        if bridge.announce:
            self._announce(conf, prompts.JOIN, name_audio)
        self._refresh(conf)
        return conf, p

    def _leave(self, conf: _Conference, p: _Participant, reason: str) -> None:
        ep = p.session.endpoint
        conf.room.leave(ep)  # no-op when the hang-up took it out already
        if p.hold is not None and not ep.released:
            conf.engine.stop(ep)
        del conf.participants[p.id]
        s = p.session
        conf.records.append(
            ParticipantRecord(
                p.id, s.caller_name, s.caller_number, p.leader, p.joined_at, self._clock(), reason
            )
        )
        if not conf.participants:
            conf.room.close()
            del self._active[(conf.tenant, conf.bridge.name)]
            b = conf.bridge
            report = ConferenceReport(
                conf.tenant,
                b.name,
                b.extension,
                conf.started_at,
                self._clock(),
                tuple(conf.records),
            )
            self._history.append(report)
            if self.on_report is not None:
                try:
                    self.on_report(report)
                except Exception:
                    log.exception("conference_report_failed", conference=b.name)
            log.info(
                "conference_ended",
                tenant=conf.tenant,
                conference=b.name,
                participants=len(conf.records),
            )
            return
        if conf.bridge.announce:
            self._announce(conf, prompts.LEAVE, p.name_audio)
        self._refresh(conf)

    @staticmethod
    def _announce(
        conf: _Conference, tone: npt.NDArray[np.int16], name: npt.NDArray[np.int16] | None
    ) -> None:
        audio = tone if name is None else prompts.sequence(tone, prompts.silence(150), name)
        conf.room.announce(audio)


async def conference_app(
    session: AppSession,
    bridge: ConferenceBridge,
    registry: ConferenceRegistry,
    *,
    role: Role | None = None,
) -> None:
    """Run a caller through ``bridge`` (see the module docstring) until they leave.

    ``role`` skips the PIN (an invited call, or a caller the dial plan already knows).
    The caller is hung up when refused or kicked; otherwise hanging up is theirs.
    """
    if role is None:
        role = await _authenticate(session, bridge, registry)
        if role is None:
            if not session.ended.is_set():
                await play(session, prompts.BAD_PIN)
                await session.hangup()
            return
    if registry._full(session.tenant, bridge):
        await _refuse(session, bridge)
        return
    name_audio = await _record_name(session, registry) if bridge.record_names else None
    if session.ended.is_set():
        return
    if registry._full(session.tenant, bridge):  # filled up while the name was recorded
        await _refuse(session, bridge)
        return
    conf, me = registry._join(session, bridge, role, name_audio)
    reason = "hangup"
    try:
        reason = await _controls(session, registry, conf, me)
    finally:
        registry._leave(conf, me, reason)
    if reason != "hangup" and not session.ended.is_set():
        await session.hangup()


async def _refuse(session: AppSession, bridge: ConferenceBridge) -> None:
    log.info("conference_full", tenant=session.tenant, conference=bridge.name)
    await play(session, prompts.REFUSED)
    await session.hangup()


async def _authenticate(
    session: AppSession, bridge: ConferenceBridge, registry: ConferenceRegistry
) -> Role | None:
    if not bridge.has_pins:
        return Role.PARTICIPANT
    flush_digits(session.endpoint)  # keys typed ahead of a retry are kept, not these
    for attempt in range(registry.pin_attempts):
        if attempt:
            await play(session, prompts.BAD_PIN, barge_in=True)
        await play(session, prompts.ENTER_PIN, barge_in=True)
        # PIN followed by '#' (or a pause): reading only as many digits as the PIN has
        # would leave the '#' behind, to be taken as a wrong try or a control key
        pin = await collect_digits(session, _PIN_MAX, registry.digit_timeout)
        if session.ended.is_set():
            return None
        if pin in (bridge.leader_pin, bridge.participant_pin):
            flush_digits(session.endpoint)  # nothing typed with the PIN is a control key
            return Role.LEADER if pin == bridge.leader_pin else Role.PARTICIPANT
        log.info(
            "conference_bad_pin", tenant=session.tenant, conference=bridge.name, attempt=attempt + 1
        )
    return None


async def _record_name(
    session: AppSession, registry: ConferenceRegistry
) -> npt.NDArray[np.int16] | None:
    """Beep, record the caller's name (``#`` or the time limit ends it); its samples."""
    await play(session, prompts.RECORD_NAME)
    if session.ended.is_set():
        return None
    spool = registry.spool_dir or Path(tempfile.gettempdir())
    path = spool / f"conference-name-{uuid.uuid4().hex}.wav"
    try:
        recording = session.engine.record(session.endpoint, None, path)
    except MediaError as exc:
        log.warning("conference_name_not_recorded", error=str(exc))
        return None
    flush_digits(session.endpoint)
    await collect_digits(session, 1, registry.name_seconds)
    session.engine.stop_recording(recording)
    try:
        await recording.wait_closed()  # a media worker completes the file after the stop
        samples, _ = read_wav(path)
    except (OSError, ValueError, MediaError) as exc:
        log.warning("conference_name_not_read", error=str(exc))
        return None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    voice = samples[:, 0].astype(np.int16)  # channel 0: what the caller said
    return voice if len(voice) else None


async def _controls(
    session: AppSession, registry: ConferenceRegistry, conf: _Conference, me: _Participant
) -> str:
    """Act on the participant's keys until they hang up, leave or are kicked; why."""
    ep = session.endpoint
    ended = asyncio.ensure_future(session.ended.wait())
    kicked = asyncio.ensure_future(me.kicked.wait())
    try:
        while True:
            key = asyncio.ensure_future(ep.digits.get())
            done, _ = await asyncio.wait({key, ended, kicked}, return_when=asyncio.FIRST_COMPLETED)
            if key not in done:
                key.cancel()
                return "kicked" if kicked in done else "hangup"
            digit = key.result().digit
            if digit == "#":
                return "left"
            feedback = _control(registry, conf, me, digit)
            if feedback is not None and me.hold is None:
                # while waiting the caller hears music; feedback would cut it off
                await play(session, feedback)
                if session.ended.is_set():
                    return "hangup"
    finally:
        ended.cancel()
        kicked.cancel()


def _control(
    registry: ConferenceRegistry, conf: _Conference, me: _Participant, digit: str
) -> npt.NDArray[np.int16] | None:
    """Apply one control key; the feedback tone to play, if any."""
    ep = me.session.endpoint
    if digit == "0":
        registry._set_mute(conf, me, not me.muted)
        return prompts.MUTED if me.muted else prompts.UNMUTED
    if digit == "*":
        me.deaf = not me.deaf
        registry._set_mute(conf, me, me.deaf)
        conf.room.set(ep, listen=not me.deaf)
        return prompts.MUTED if me.deaf else prompts.UNMUTED
    if digit in "123":
        me.talk_level = _step(me.talk_level, digit, "123")
        conf.room.set(ep, gain=_gain(me.talk_level))
        return prompts.LEVEL
    if digit in "456":
        me.listen_level = _step(me.listen_level, digit, "456")
        conf.room.set(ep, listen_gain=_gain(me.listen_level))
        return prompts.LEVEL
    return None


def _step(level: int, digit: str, keys: str) -> int:
    """keys: the down, normal and up keys of one volume."""
    if digit == keys[1]:
        return 0
    change = -1 if digit == keys[0] else 1
    return max(-_LEVEL_MAX, min(_LEVEL_MAX, level + change))
