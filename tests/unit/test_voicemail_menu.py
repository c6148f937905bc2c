"""The inbox menu as a state machine: keys in, actions out (no media, no store)."""

from __future__ import annotations

import pytest

from config.voicemail import Greeting, InboxKeys
from softswitch.voicemail import menu as m
from storage.voicemail import StoredMessage

NOW = 1_800_000_000.0


def _msg(i: int, folder: str = "new", number: str = "+15551230000") -> StoredMessage:
    return StoredMessage(
        f"m{i}", "acme", "101", folder, number, "", NOW + 60 * i, 4.0, False, f"m{i}.wav"
    )


def _kinds(actions: list[m.Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def _played(actions: list[m.Action]) -> list[str]:
    return [a.message.id for a in actions if isinstance(a, m.PlayMessage)]


def _said(actions: list[m.Action]) -> list[str]:
    return [s.value for a in actions if isinstance(a, m.Say) for s in a.phrase.segments]


def test_intro_counts_then_the_main_menu() -> None:
    menu = m.InboxMenu(InboxKeys(), [_msg(0), _msg(1), _msg(2, "saved")])
    said = _said(menu.intro())
    assert said[:4] == ["vm-you-have", "digits/2", "vm-new", "vm-messages"]
    assert "vm-opt-new" in said and "vm-opt-options" in said


def test_new_messages_play_oldest_first_and_become_saved() -> None:
    menu = m.InboxMenu(InboxKeys(), [_msg(0), _msg(1)])
    actions = menu.key("1")
    assert _played(actions) == ["m0"]
    assert m.Move("m0", "saved") in actions
    assert _played(menu.key("6")) == ["m1"]
    assert _played(menu.key("4")) == ["m0"]  # previous
    assert _played(menu.key("5")) == ["m0"]  # repeat
    end = menu.key("6")
    end = menu.key("6")
    assert "vm-no-more-messages" in _said(end) and menu.state == "main"


def test_newest_first_by_the_users_option() -> None:
    menu = m.InboxMenu(InboxKeys(), [_msg(0), _msg(1)], newest_first=True)
    assert _played(menu.key("1")) == ["m1"]


def test_delete_undelete_save_forward_callback_envelope() -> None:
    menu = m.InboxMenu(InboxKeys(), [_msg(0), _msg(1)])
    menu.key("1")
    deleted = menu.key("7")
    assert m.Move("m0", "deleted") in deleted and _played(deleted) == ["m1"]
    menu.key("4")  # back to the deleted one
    assert m.Move("m0", "saved") in menu.key("7")  # undelete
    assert isinstance(menu.key("8")[0], m.Forward)
    assert menu.key("2")[0] == m.CallBack("+15551230000")
    envelope = _said(menu.key("3"))
    assert envelope[0] == "vm-received" and "vm-from" in envelope
    assert m.Move("m0", "saved") in menu.key("9")


def test_saved_folder_and_empty_folders() -> None:
    menu = m.InboxMenu(InboxKeys(), [_msg(0, "saved")])
    empty = menu.key("1")
    assert "vm-new" in _said(empty) and not _played(empty)
    assert _played(menu.key("2")) == ["m0"]
    assert menu.key("*") and menu.state == "main"


def test_options_record_greetings_and_the_temporary_one() -> None:
    menu = m.InboxMenu(InboxKeys(), [])
    menu.key("0")
    assert menu.key("1")[0] == m.RecordGreeting(Greeting.UNAVAILABLE)
    assert menu.key("2")[0] == m.RecordGreeting(Greeting.BUSY)
    assert menu.key("3")[0] == m.RecordGreeting(Greeting.NAME)
    assert menu.key("4")[0] == m.RecordGreeting(Greeting.TEMPORARY)
    assert "vm-temporary-active" in _said(menu.key("4"))  # now set: record again or remove
    assert menu.key("2")[0] == m.RemoveGreeting(Greeting.TEMPORARY)
    assert menu.key("5")[0] == m.ChangePin()
    menu.key("*")
    assert menu.state == "main"
    assert menu.key("#") == [m.Hangup()]


def test_timeouts_repeat_the_menu_then_hang_up() -> None:
    menu = m.InboxMenu(InboxKeys(), [])
    assert _kinds(menu.timeout()) == ["Say"]
    assert _kinds(menu.timeout()) == ["Say"]
    assert menu.timeout() == [m.Hangup()]


def test_invalid_key_says_so() -> None:
    menu = m.InboxMenu(InboxKeys(), [])
    assert _said(menu.key("9"))[0] == "menu-invalid"


def test_a_tenant_key_layout() -> None:
    keys = InboxKeys(save="2", callback="0")
    menu = m.InboxMenu(keys, [_msg(0)])
    menu.key("1")
    assert m.Move("m0", "saved") in menu.key("2")
    with pytest.raises(ValueError, match="already"):
        InboxKeys(save="7")
