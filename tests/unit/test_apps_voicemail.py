"""The voicemail application driven over a fake call: greeting keys (# skip, 0 operator,
* login), recording ended by #, review (urgent), a full mailbox, the inbox by key."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from config.models import Tenant
from config.voicemail import VoicemailSettings
from media.dtmf import Digit
from media.wav import RecordingWriter
from routing.plan import Outcome, Target, TargetKind
from softswitch.apps.voicemail import VoicemailApp
from softswitch.voicemail.events import MessageCounts
from softswitch.voicemail.mailboxes import Mailboxes
from storage import Store


class _Playback:
    async def wait(self) -> str:
        await asyncio.sleep(0)
        return "finished"


@dataclass
class _Recording:
    path: str
    active: bool = True

    async def wait_closed(self) -> int:
        return 0


class _Engine:
    """Plays instantly; a recording holds two seconds of a tone (the caller speaking). The
    caller's keys: ``during_greeting`` once the first prompt plays, ``while_recording``
    once a recording starts (keys pressed before the tone are forgotten, as they should)."""

    def __init__(self, during_greeting: str, while_recording: str) -> None:
        self.played = 0
        self.recordings: list[str] = []
        self.during_greeting = during_greeting
        self.while_recording = while_recording
        self.digits: asyncio.Queue[Digit] | None = None

    def _press(self, keys: str) -> None:
        assert self.digits is not None
        for k in keys:
            self.digits.put_nowait(Digit(k, 100, "rfc4733"))

    def play(self, leg: Any, source: Any, **kw: Any) -> _Playback:
        if self.played == 0:
            self._press(self.during_greeting)
        self.played += 1
        return _Playback()

    def stop(self, leg: Any) -> None:
        pass

    def record(self, caller: Any, callee: Any, path: Any) -> _Recording:
        t = np.arange(16000) / 8000
        tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        with RecordingWriter(path) as w:
            w.write(tone, np.zeros_like(tone))
        self.recordings.append(str(path))
        self._press(self.while_recording)
        return _Recording(str(path))

    def stop_recording(self, rec: _Recording) -> None:
        rec.active = False


@dataclass
class _Endpoint:
    digits: asyncio.Queue[Digit] = field(default_factory=asyncio.Queue)
    released: bool = False


@dataclass
class _Connected:
    answered: bool


class _Session:
    def __init__(self, keys: str, while_recording: str = "") -> None:
        self.call_id = "c1"
        self.tenant = "acme"
        self.caller_number = "102"
        self.caller_name = "Bob"
        self.dialed = "101"
        self.user: str | None = None
        self.endpoint = _Endpoint()
        self.engine = _Engine(keys, while_recording)
        self.engine.digits = self.endpoint.digits
        self.ended = asyncio.Event()
        self.connected: list[str] = []

    async def hangup(self) -> None:
        self.ended.set()

    async def connect(self, destination: Any, *, timeout: float | None = None) -> _Connected:
        self.connected.append(str(destination))
        self.ended.set()
        return _Connected(True)


class _Library:
    """Prompts without speech synthesis: half a second of silence each."""

    def language_of(self, tenant: str | None) -> str:
        return "en"

    async def render(self, phrase: Any, **kw: Any) -> np.ndarray:
        return np.zeros(4000, np.int16)

    async def speak(self, text: str, **kw: Any) -> Path:
        raise AssertionError("no text greetings in these tests")


def _tenant(**voicemail: Any) -> Tenant:
    return Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.example",
            "users": [{"extension": "101", "password": "pw"}],
            "voicemail": {"default_pin": "1234", "operator": "200", **voicemail},
        }
    )


async def _app(store: Store, tmp_path: Path, **voicemail: Any) -> tuple[VoicemailApp, Mailboxes]:
    boxes = Mailboxes(VoicemailSettings(directory=tmp_path / "vm"), store, [_tenant(**voicemail)])
    await boxes.start()
    return VoicemailApp(boxes, _Library()), boxes  # type: ignore[arg-type]


async def test_skip_the_greeting_record_and_mark_urgent(store: Store, tmp_path: Path) -> None:
    app, boxes = await _app(store, tmp_path)
    session = _Session("#", "#*")  # skip the greeting; end the recording, urgent
    await app.leave("acme", "101")(session)
    (message,) = boxes.messages(boxes.box("acme", "101").address)  # type: ignore[union-attr]
    assert message.urgent and message.caller_number == "102" and message.folder == "new"
    assert abs(message.duration - 2.0) < 0.2
    assert boxes.counts(message_box(boxes)) == MessageCounts(new=1, urgent_new=1)


def message_box(boxes: Mailboxes) -> Any:
    box = boxes.box("acme", "101")
    assert box is not None
    return box.address


async def test_zero_goes_to_the_operator(store: Store, tmp_path: Path) -> None:
    app, _ = await _app(store, tmp_path)
    session = _Session("0")
    await app.leave("acme", "101")(session)
    assert session.connected == ["200"]
    assert session.engine.recordings == []


async def test_a_full_mailbox_records_nothing(store: Store, tmp_path: Path) -> None:
    app, boxes = await _app(store, tmp_path, max_messages=1)
    first = _Session("#", "#1")
    await app.leave("acme", "101")(first)
    second = _Session("#", "#1")
    await app.leave("acme", "101")(second)
    assert second.engine.recordings == []
    assert len(boxes.messages(message_box(boxes))) == 1


async def test_star_logs_in_and_the_inbox_saves_and_deletes(store: Store, tmp_path: Path) -> None:
    app, boxes = await _app(store, tmp_path)
    for _ in range(2):
        s = _Session("#", "#1")
        await app.leave("acme", "101")(s)
    # From the greeting: *, the PIN, new messages, delete the first, save the second, exit.
    session = _Session("*1234#179#")
    await app.leave("acme", "101")(session)
    assert [m.folder for m in boxes.messages(message_box(boxes))] == ["saved"]


async def test_callflow_nodes_pick_the_greeting_by_how_the_call_came(
    store: Store, tmp_path: Path
) -> None:
    """Busy (a ring node ended busy) plays the busy greeting; no answer, do not disturb,
    forwards and the spam treatment the unavailable one; no mailbox refuses the node."""
    app, _ = await _app(store, tmp_path)
    greetings: list[bool] = []

    async def leave(session: Any, box: Any, busy: bool) -> None:
        greetings.append(busy)

    app._leave = leave  # type: ignore[method-assign]
    target = Target(TargetKind.VOICEMAIL, "101")
    for outcome in (Outcome.BUSY, Outcome.NO_ANSWER, None):
        call = SimpleNamespace(tenant="acme", flow=SimpleNamespace(last_outcome=outcome))
        await app._node(call, target)(_Session(""))  # type: ignore[arg-type]
    assert greetings == [True, False, False]
    nobody = SimpleNamespace(tenant="acme", flow=SimpleNamespace(last_outcome=None))
    assert app._node(nobody, Target(TargetKind.VOICEMAIL, "999")) is None  # type: ignore[arg-type]


class _SlowLibrary(_Library):
    """Synthesis of the first message's announcement hangs until the test releases it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def render(self, phrase: Any, **kw: Any) -> np.ndarray:
        if any(s.value == "vm-first" for s in phrase.segments):
            self.started.set()
            await self.release.wait()
        return np.zeros(4000, np.int16)


async def test_a_key_pressed_during_synthesis_is_acted_on(store: Store, tmp_path: Path) -> None:
    """The caller presses call-back while "first message" is still being synthesised: the
    call back happens without waiting for the synthesis, and the message, never played,
    stays new."""
    app, boxes = await _app(store, tmp_path)
    await app.leave("acme", "101")(_Session("#", "#1"))  # a message from 102
    library = _SlowLibrary()
    app.library = library  # type: ignore[assignment]
    session = _Session("1234#1")  # the PIN, then new messages (typed ahead of the intro)
    inbox = asyncio.ensure_future(app.check("acme", "101")(session))
    await asyncio.wait_for(library.started.wait(), 10)
    session.engine._press("2")  # call back, while the synthesis hangs
    await asyncio.wait_for(inbox, 10)
    assert session.connected == ["102"]
    assert not library.release.is_set()  # acted on before the synthesis finished
    (message,) = boxes.messages(message_box(boxes))
    assert message.folder == "new"
    library.release.set()  # the synthesis carries on in the background and ends
    await asyncio.sleep(0)
