"""Voicemail rows (migration 0008) on SQLite and PostgreSQL, and the mailboxes over them:
filing a message, the listener calls, PIN lockout, and a recording a stop left unfiled."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest

from config.models import Tenant
from config.voicemail import VoicemailSettings
from softswitch.voicemail.events import MailboxAddress, MessageCounts, VoiceMessage
from softswitch.voicemail.mailboxes import Mailboxes, PinCheck
from storage import StorageError, Store
from storage.voicemail import MailboxState, StoredMessage

NOW = 1_800_000_000.0


def _message(i: int, folder: str = "new") -> StoredMessage:
    return StoredMessage(
        f"m{i}", "acme", "101", folder, "+15551230000", "Bob", NOW + i, 3.5, i % 2 == 1,
        f"acme/101/m{i}.wav",
    )  # fmt: skip


async def test_messages_are_stored_moved_and_deleted(store: Store) -> None:
    for i in range(3):
        await store.add_voice_message(_message(i))
    assert [m.id for m in await store.voice_messages("acme", "101")] == ["m0", "m1", "m2"]
    assert await store.voice_message("m1") == _message(1)
    assert await store.move_voice_message("m1", "saved") is True
    assert (await store.voice_message("m1")) == _message(1, "saved")
    assert await store.move_voice_message("gone", "saved") is False
    assert await store.delete_voice_message("m0") is True
    assert await store.delete_voice_message("m0") is False
    assert [m.id for m in await store.voice_messages()] == ["m1", "m2"]
    assert await store.voice_messages("other") == []
    with pytest.raises(StorageError, match="folder"):
        await store.move_voice_message("m1", "trash")


async def test_mailbox_state_round_trips(store: Store) -> None:
    assert await store.mailbox_state("acme", "101") == MailboxState("acme", "101")
    await store.save_mailbox_state(MailboxState("acme", "101", "9876", 2, NOW))
    assert await store.mailbox_state("acme", "101") == MailboxState("acme", "101", "9876", 2, NOW)
    await store.save_mailbox_state(MailboxState("acme", "101", None, 0, math.inf))
    state = await store.mailbox_state("acme", "101")
    assert state.pin is None and state.locked_until > NOW * 1000
    with pytest.raises(StorageError, match="pin"):
        await store.save_mailbox_state(MailboxState("acme", "101", "12", 0, 0))


class _Listener:
    def __init__(self) -> None:
        self.left: list[tuple[MailboxAddress, VoiceMessage, MessageCounts]] = []
        self.changed: list[tuple[MailboxAddress, MessageCounts]] = []

    def message_left(
        self, box: MailboxAddress, message: VoiceMessage, counts: MessageCounts
    ) -> None:
        self.left.append((box, message, counts))

    def counts_changed(self, box: MailboxAddress, counts: MessageCounts) -> None:
        self.changed.append((box, counts))


def _tenant() -> Tenant:
    return Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.example",
            "users": [{"extension": "101", "password": "pw"}],
            "voicemail": {
                "default_pin": "1234",
                "pin_attempts": 2,
                "min_message_seconds": 1.0,
                "mailboxes": {"500": {"name": "Sales", "lamp_users": ["101"]}},
            },
        }
    )


def _record(path: Path, seconds: float, *, complete: bool = True) -> None:
    """A 2-channel recording as the engine writes it: a tone on the caller's channel."""
    t = np.arange(int(seconds * 8000)) / 8000
    left = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    frames = np.stack([left, np.zeros_like(left)], axis=1).astype("<i2").tobytes()
    w = wave.open(str(path), "wb")  # noqa: SIM115  (left open on purpose below)
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(8000)
    w.writeframesraw(frames)
    if complete:
        w.close()
    else:  # the process died: the header still says 0 frames
        w._file.flush()  # type: ignore[attr-defined]


async def test_a_message_is_filed_counted_and_told(store: Store, tmp_path: Path) -> None:
    boxes = Mailboxes(VoicemailSettings(directory=tmp_path / "vm"), store, [_tenant()])
    listener = _Listener()
    boxes.add_listener(listener)
    await boxes.start()
    box = boxes.box("acme", "101")
    assert box is not None and box.owner == "101" and box.pin == "1234"
    assert boxes.box("acme", "999") is None
    shared = boxes.box("acme", "500")
    assert shared is not None and shared.owner is None
    assert boxes.lamp_users(shared.address) == ("101",)

    rec = boxes.begin_message(box, "102", "Bob")
    _record(rec.path, 2.0)
    stored = await boxes.file_message(rec)
    assert stored is not None and abs(stored.duration - 2.0) < 0.2
    assert boxes.counts(box.address) == MessageCounts(new=1)
    assert listener.left[0][1].caller_number == "102"
    assert listener.left[0][2] == MessageCounts(new=1)
    assert not rec.path.exists() and not rec.sidecar.exists()

    short = boxes.begin_message(box, "103", "")
    _record(short.path, 0.5)
    assert await boxes.file_message(short) is None  # below the minimum: nothing kept
    assert boxes.counts(box.address) == MessageCounts(new=1)

    await boxes.move(box.address, stored.id, "saved")
    assert listener.changed[-1] == (box.address, MessageCounts(old=1))
    await boxes.delete(box.address, stored.id)
    assert boxes.counts(box.address) == MessageCounts()
    assert await store.voice_messages("acme") == []


async def test_a_recording_left_by_a_stop_is_filed_at_start(store: Store, tmp_path: Path) -> None:
    settings = VoicemailSettings(directory=tmp_path / "vm")
    boxes = Mailboxes(settings, store, [_tenant()])
    await boxes.start()
    box = boxes.box("acme", "101")
    assert box is not None
    rec = boxes.begin_message(box, "102", "Bob")
    _record(rec.path, 3.0, complete=False)
    again = Mailboxes(settings, store, [_tenant()])  # the next start
    assert await again.start() == 1
    (kept,) = again.messages(box.address)
    assert kept.caller_number == "102" and abs(kept.duration - 3.0) < 0.2
    assert again.audio_path(kept).is_file()


async def test_wrong_pins_lock_the_mailbox_until_unlocked(store: Store, tmp_path: Path) -> None:
    clock = [NOW]
    boxes = Mailboxes(
        VoicemailSettings(directory=tmp_path / "vm"), store, [_tenant()], clock=lambda: clock[0]
    )
    await boxes.start()
    box = boxes.box("acme", "101")
    assert box is not None
    assert await boxes.check_pin(box, "1111") is PinCheck.WRONG
    assert await boxes.check_pin(box, "2222") is PinCheck.LOCKED
    assert await boxes.check_pin(box, "1234") is PinCheck.LOCKED  # even the right one
    clock[0] += 31 * 60  # the lockout (30 minutes) is over
    assert await boxes.check_pin(box, "1234") is PinCheck.OK
    await boxes.check_pin(box, "1")
    assert await boxes.check_pin(box, "2") is PinCheck.LOCKED
    await boxes.unlock(box.address)
    assert await boxes.check_pin(box, "1234") is PinCheck.OK
    await boxes.change_pin(box.address, "5555")
    assert await boxes.check_pin(box, "1234") is PinCheck.WRONG
    assert await boxes.check_pin(box, "5555") is PinCheck.OK


async def test_changes_made_beside_the_switch_reach_its_counts(
    store: Store, tmp_path: Path
) -> None:
    # The running switch's mailboxes and, beside them, a command or the admin API writing
    # the same Store: follow() reloads the changed boxes and the lamps hear of it.
    boxes = Mailboxes(VoicemailSettings(directory=tmp_path / "vm"), store, [_tenant()])
    listener = _Listener()
    boxes.add_listener(listener)
    await store.add_voice_message(_message(0))
    await boxes.start()
    box = MailboxAddress("acme", "101")
    assert boxes.counts(box) == MessageCounts(new=1)
    assert await boxes.follow() == 0  # what start() loaded is not a change

    await store.add_voice_message(_message(2, "saved"))
    await store.delete_voice_message("m0")
    assert await boxes.follow() == 1
    assert boxes.counts(box) == MessageCounts(old=1)
    assert listener.changed == [(box, MessageCounts(old=1))]

    await store.move_voice_message("m2", "new")
    await boxes.follow()
    assert listener.changed[-1] == (box, MessageCounts(new=1))
    assert await boxes.follow() == 0


async def test_has_new_follows_every_change(store: Store, tmp_path: Path) -> None:
    # What message waiting asks for every phone that registers: kept in step with the
    # counts whichever way they change (start, filing, moving, deleting, a change beside).
    await store.add_voice_message(_message(0))
    boxes = Mailboxes(VoicemailSettings(directory=tmp_path / "vm"), store, [_tenant()])
    await boxes.start()
    address = MailboxAddress("acme", "101")
    assert boxes.has_new("acme", "101") and not boxes.has_new("acme", "500")
    await boxes.move(address, "m0", "saved")
    assert not boxes.has_new("acme", "101")
    await store.move_voice_message("m0", "new")  # beside the switch
    await boxes.follow()
    assert boxes.has_new("acme", "101")
    await boxes.delete(address, "m0")
    assert not boxes.has_new("acme", "101")
    shared = boxes.box("acme", "500")
    assert shared is not None
    rec = boxes.begin_message(shared, "102", "Bob")
    _record(rec.path, 2.0)
    assert await boxes.file_message(rec) is not None
    assert boxes.has_new("acme", "500") and not boxes.has_new("acme", "101")
    again = Mailboxes(VoicemailSettings(directory=tmp_path / "vm"), store, [_tenant()])
    await again.start()  # the next start
    assert again.has_new("acme", "500") and not again.has_new("acme", "101")
