"""The numpy mixer: every mixing session of an engine in one vectorised pass per tick.

Each participant owns a *slot*, a row of the ``slots x 160`` frame matrix the engine
fills with decoded audio every tick; :meth:`Mixer.mix` returns a matrix of the same
shape where row *i* is what participant *i* hears, saturated to int16.

* Sessions where everybody may hear everybody (conferences, two-party bridges, barge)
  use total-minus-self: one ``np.add.reduceat`` gives each session's sum, and each
  participant gets its session's sum minus its own contribution.
* Sessions with per-pair rights (monitoring in listen or whisper mode) use a small
  "who hears whom" 0/1 matrix; sessions of the same size are mixed with one batched
  matrix product.
* Talk/listen rights (mute, deaf) and per-participant gains are folded into per-row
  weights (Q12 fixed point), so they cost nothing when all are at unity.

Changes (join, leave, mute, monitor mode...) take effect at the next tick; on that tick
the output of every participant is cross-faded from the old plan to the new one over the
frame, so a session changing shape (2 -> 3 participants, a mute) never clicks.  A freed
slot is not reused before the next tick, so a fade can never leak another session.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import numpy.typing as npt

_Q = 12  # fixed-point fraction bits of the gains
_UNITY = 1 << _Q
MAX_GAIN = 8.0


class MonitorMode(Enum):
    """How a supervisor takes part in a monitored call."""

    LISTEN = "listen"  # hears both parties, heard by none
    WHISPER = "whisper"  # hears both, heard by the agent only
    BARGE = "barge"  # a full three-way call


class MixerError(ValueError):
    """An invalid mixer operation (unknown participant, bad gain...)."""


@dataclass
class _Participant:
    key: Hashable
    session: Hashable
    slot: int
    gain: float = 1.0
    listen_gain: float = 1.0
    talk: bool = True
    listen: bool = True


@dataclass
class _MatrixGroup:
    start: int
    stop: int
    size: int
    hears: npt.NDArray[np.int32]  # (sessions, size, size)


@dataclass
class _Plan:
    order: npt.NDArray[np.intp]  # slot of each row, sessions contiguous
    simple_rows: int  # rows [0, simple_rows) use total-minus-self
    starts: npt.NDArray[np.intp]  # reduceat segment starts of the simple sessions
    segment: npt.NDArray[np.intp]  # simple row -> its session's segment index
    talk_w: npt.NDArray[np.int32] | None  # Q12 talk weights, None if all unity
    listen_w: npt.NDArray[np.float32] | None  # listen gains (0 when deaf), None if unity
    groups: list[_MatrixGroup] = field(default_factory=list)
    _workspace: _Workspace | None = None

    def workspace(self, dtype: np.dtype[np.integer], samples: int) -> _Workspace:
        """Buffers for this plan's tick, allocated on first use."""
        ws = self._workspace
        if ws is None or ws.gather.dtype != dtype:
            rows = len(self.order)
            ws = _Workspace(
                gather=np.empty((rows, samples), dtype=dtype),
                x=np.empty((rows, samples), dtype=np.int32),
                out=np.empty((rows, samples), dtype=np.int32),
                totals=np.empty((len(self.starts), samples), dtype=np.int32),
                result=np.empty((rows, samples), dtype=np.int16),
            )
            self._workspace = ws
        return ws


@dataclass
class _Workspace:
    gather: npt.NDArray[np.integer]
    x: npt.NDArray[np.int32]
    out: npt.NDArray[np.int32]
    totals: npt.NDArray[np.int32]
    result: npt.NDArray[np.int16]


def _gain_q(gain: float) -> int:
    if not 0.0 <= gain <= MAX_GAIN:
        raise MixerError(f"gain {gain} outside 0..{MAX_GAIN}")
    return round(gain * _UNITY)


class Mixer:
    """All mixing sessions of one engine; see the module docstring."""

    def __init__(self, frame_samples: int = 160) -> None:
        self.frame_samples = frame_samples
        self._participants: dict[Hashable, _Participant] = {}
        self._sessions: dict[Hashable, list[Hashable]] = {}
        self._overrides: dict[Hashable, dict[tuple[Hashable, Hashable], bool]] = {}
        self._free: list[int] = []
        self._quarantine: list[int] = []
        self._rows = 0
        self._plan: _Plan | None = None
        self._dirty = True
        self._previous: _Plan | None = None
        self._ramp = (np.arange(1, frame_samples + 1, dtype=np.int32))[None, :]

    # ---- membership and rights ------------------------------------------------------

    @property
    def rows(self) -> int:
        """Rows the frame matrix passed to :meth:`mix` must have (highest slot + 1)."""
        return self._rows

    def slot(self, participant: Hashable) -> int:
        """The frame-matrix row of a participant."""
        return self._get(participant).slot

    def participants(self, session: Hashable) -> list[Hashable]:
        """Participants of a session in join order."""
        return list(self._sessions.get(session, ()))

    def _get(self, participant: Hashable) -> _Participant:
        try:
            return self._participants[participant]
        except KeyError:
            raise MixerError(f"unknown participant {participant!r}") from None

    def _changed(self) -> None:
        self._dirty = True

    def add(
        self,
        session: Hashable,
        participant: Hashable,
        *,
        gain: float = 1.0,
        listen_gain: float = 1.0,
        talk: bool = True,
        listen: bool = True,
    ) -> int:
        """Add a participant to a session (created on first use); returns its slot."""
        if participant in self._participants:
            raise MixerError(f"participant {participant!r} already mixed")
        _gain_q(gain)
        _gain_q(listen_gain)
        if self._free:
            slot = self._free.pop()
        else:
            slot = self._rows
            self._rows += 1
        self._participants[participant] = _Participant(
            participant, session, slot, gain, listen_gain, talk, listen
        )
        self._sessions.setdefault(session, []).append(participant)
        self._changed()
        return slot

    def remove(self, participant: Hashable) -> None:
        """Remove a participant; its slot becomes reusable after the next tick."""
        p = self._participants.pop(participant, None)
        if p is None:
            raise MixerError(f"unknown participant {participant!r}")
        members = self._sessions[p.session]
        members.remove(participant)
        if not members:
            del self._sessions[p.session]
            self._overrides.pop(p.session, None)
        else:
            ov = self._overrides.get(p.session)
            if ov:
                for pair in [k for k in ov if participant in k]:
                    del ov[pair]
        self._quarantine.append(p.slot)
        self._changed()

    def set_talk(self, participant: Hashable, talk: bool) -> None:
        """Talk right: False mutes the participant for everyone."""
        self._get(participant).talk = talk
        self._changed()

    def set_listen(self, participant: Hashable, listen: bool) -> None:
        """Listen right: False makes the participant deaf."""
        self._get(participant).listen = listen
        self._changed()

    def set_gain(self, participant: Hashable, gain: float) -> None:
        """Gain applied to what the participant says (0..8)."""
        _gain_q(gain)
        self._get(participant).gain = gain
        self._changed()

    def set_listen_gain(self, participant: Hashable, gain: float) -> None:
        """Gain applied to what the participant hears (0..8)."""
        _gain_q(gain)
        self._get(participant).listen_gain = gain
        self._changed()

    def set_hears(self, listener: Hashable, talker: Hashable, allowed: bool | None) -> None:
        """Override whether ``listener`` hears ``talker`` (same session); None restores."""
        a, b = self._get(listener), self._get(talker)
        if a.session != b.session:
            raise MixerError(f"{listener!r} and {talker!r} are not in the same session")
        if listener == talker:
            raise MixerError("a participant never hears itself")
        ov = self._overrides.setdefault(a.session, {})
        if allowed is None:
            ov.pop((listener, talker), None)
        else:
            ov[(listener, talker)] = allowed
        if not ov:
            del self._overrides[a.session]
        self._changed()

    def set_monitor(
        self, supervisor: Hashable, mode: MonitorMode, agent: Hashable | None = None
    ) -> None:
        """Put a supervisor in listen, whisper (heard by ``agent`` only) or barge mode."""
        sup = self._get(supervisor)
        if mode is MonitorMode.WHISPER and agent is None:
            raise MixerError("whisper needs the agent who hears the supervisor")
        if agent is not None and self._get(agent).session != sup.session:
            raise MixerError(f"agent {agent!r} is not in the supervisor's session")
        for other in self._sessions[sup.session]:
            if other == supervisor:
                continue
            allowed: bool | None
            if mode is MonitorMode.BARGE or (mode is MonitorMode.WHISPER and other == agent):
                allowed = None
            else:
                allowed = False
            self.set_hears(other, supervisor, allowed)
            self.set_hears(supervisor, other, None)

    def hears(self, listener: Hashable, talker: Hashable) -> bool:
        """Whether ``listener`` currently receives ``talker``'s audio."""
        a, b = self._get(listener), self._get(talker)
        if a.session != b.session or listener == talker or not a.listen or not b.talk:
            return False
        return self._overrides.get(a.session, {}).get((listener, talker), True)

    # ---- the tick -------------------------------------------------------------------

    def _compile(self) -> _Plan:
        simple: list[list[_Participant]] = []
        by_size: dict[int, list[list[_Participant]]] = {}
        for session, keys in self._sessions.items():
            members = [self._participants[k] for k in keys]
            if session in self._overrides:
                by_size.setdefault(len(members), []).append(members)
            else:
                simple.append(members)
        rows: list[_Participant] = [p for members in simple for p in members]
        sizes = [len(m) for m in simple]
        starts = (
            np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
            if sizes
            else (np.zeros(0, np.intp))
        )
        segment = np.repeat(np.arange(len(sizes), dtype=np.intp), sizes)
        simple_rows = len(rows)
        groups = []
        for size, sessions in sorted(by_size.items()):
            hears = np.ones((len(sessions), size, size), dtype=np.int32)
            idx = np.arange(size)
            hears[:, idx, idx] = 0
            for s, members in enumerate(sessions):
                ov = self._overrides[members[0].session]
                pos = {p.key: i for i, p in enumerate(members)}
                for (listener, talker), allowed in ov.items():
                    hears[s, pos[listener], pos[talker]] = int(allowed)
            start = len(rows)
            rows.extend(p for members in sessions for p in members)
            groups.append(_MatrixGroup(start, len(rows), size, hears))
        talk = np.array([_gain_q(p.gain) if p.talk else 0 for p in rows], dtype=np.int32)
        listen = np.array([p.listen_gain if p.listen else 0.0 for p in rows], dtype=np.float32)
        return _Plan(
            order=np.array([p.slot for p in rows], dtype=np.intp),
            simple_rows=simple_rows,
            starts=starts,
            segment=segment,
            talk_w=None if np.all(talk == _UNITY) else talk,
            listen_w=None if np.all(listen == 1.0) else listen,
            groups=groups,
        )

    def _run(self, plan: _Plan, frames: npt.NDArray[np.integer]) -> npt.NDArray[np.int16]:
        """Mix with one plan; returns rows in plan order (a buffer owned by the plan).

        Every intermediate lives in buffers allocated once per plan: fresh 600 kB arrays
        each tick would cost more in page faults than the arithmetic.
        """
        ws = plan.workspace(frames.dtype, self.frame_samples)
        x, out = ws.x, ws.out
        if frames.dtype == np.int32:
            np.take(frames, plan.order, axis=0, out=x)
        else:
            np.take(frames, plan.order, axis=0, out=ws.gather)
            np.copyto(x, ws.gather, casting="unsafe")
        if plan.talk_w is not None:
            x *= plan.talk_w[:, None]
            x >>= _Q
        n = plan.simple_rows
        if n:
            np.add.reduceat(x[:n], plan.starts, axis=0, out=ws.totals)
            np.take(ws.totals, plan.segment, axis=0, out=out[:n])
            out[:n] -= x[:n]
        for g in plan.groups:
            block = x[g.start : g.stop].reshape(-1, g.size, self.frame_samples)
            out[g.start : g.stop] = np.matmul(g.hears, block).reshape(-1, self.frame_samples)
        if plan.listen_w is not None:
            np.copyto(out, out * plan.listen_w[:, None], casting="unsafe")
        np.clip(out, -32768, 32767, out=out)
        np.copyto(ws.result, out, casting="unsafe")
        return ws.result

    def mix(
        self, frames: npt.NDArray[np.integer], out: npt.NDArray[np.int16] | None = None
    ) -> npt.NDArray[np.int16]:
        """One tick: ``frames`` (at least ``rows`` x 160, int16 or int32, by slot) ->
        what each slot hears (int16, same rows; rows of free slots are silence)."""
        if frames.ndim != 2 or frames.shape[1] != self.frame_samples:
            raise MixerError(f"frames must be (slots, {self.frame_samples})")
        if frames.shape[0] < self._rows:
            raise MixerError(f"frames has {frames.shape[0]} rows, mixer needs {self._rows}")
        if out is None:
            out = np.zeros((frames.shape[0], self.frame_samples), dtype=np.int16)
        else:
            out[:] = 0
        previous = None
        if self._dirty or self._plan is None:
            previous = self._plan
            self._plan = self._compile()
            self._dirty = False
        plan = self._plan
        mixed = self._run(plan, frames)
        if previous is not None and len(previous.order):
            old = np.zeros_like(out)
            old[previous.order] = self._run(previous, frames)
            # linear cross-fade over the frame from the old mix to the new one
            new_rows = mixed.astype(np.int32)
            old_rows = old[plan.order].astype(np.int32)
            n = self.frame_samples
            mixed = ((old_rows * (n - self._ramp) + new_rows * self._ramp) // n).astype(np.int16)
        out[plan.order] = mixed
        self._free.extend(self._quarantine)
        self._quarantine.clear()
        return out
