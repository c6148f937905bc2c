"""Voicemail through the switch with baresip phones: a caller leaves a message for a user
who is not registered, the user dials in, enters the PIN by RFC 4733 DTMF, plays the
message and saves it; a caller hanging up after the tone leaves nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from media.wav import load_wav
from peers.switchproc import SwitchProcess
from tests.integration.voicemailkit import (
    LEAD,
    RATE,
    cli,
    config,
    log,
    messages,
    phone,
    speech,
    wait_log,
    wait_messages,
)

pytestmark = pytest.mark.integration


def test_message_left_then_heard_and_saved(tmp_path: Path) -> None:
    wav, voiced = speech(tmp_path, "Hello Alice, this is Bob. Please call me back tomorrow.")
    cfg = config(tmp_path)
    with SwitchProcess(cfg.directory / "switch.toml", port=cfg.port) as switch:
        # 101 is not registered: the call goes to voicemail, the unavailable greeting plays.
        with phone(tmp_path, "102", cfg.port, wav) as caller:
            switch.wait_registrations(lambda rows: len(rows) >= 1)
            caller.command("dial", f"sip:101@127.0.0.1:{cfg.port}")
            caller.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(LEAD + voiced + 1.5)
            caller.command("hangup")
            caller.wait_event("CALL_CLOSED", timeout=15)
        rows = wait_messages(cfg.directory, 1)
        assert len(rows) == 1, rows
        mailbox, message_id, folder, _when, duration, who = rows[0][:6]
        assert (mailbox, folder) == ("101", "new")
        assert who.endswith("<102>") or who == "102"
        assert abs(float(duration.rstrip("s")) - voiced) <= 0.5, (duration, voiced)
        assert re.search(r"voicemail_greeting.*greeting=unavailable", log(cfg))

        # The message's audio is what was said.
        out = tmp_path / "played.wav"
        cli(cfg.directory, "play", "test", "101", message_id, "--out", str(out))
        assert abs(len(load_wav(out)) / RATE - voiced) <= 0.5

        # 101 dials in from its own phone, enters the PIN, plays the message and saves it.
        with phone(tmp_path, "101", cfg.port) as owner:
            switch.wait_registrations(lambda rows: len(rows) >= 2)
            owner.command("dial", f"sip:*97@127.0.0.1:{cfg.port}")
            owner.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(1.0)
            # baresip's console holds the last key of a burst until the next key starts
            # (no end packet before): each burst ends with the key the next step needs.
            owner.send_dtmf("12341")  # the PIN (it ends after the digit timeout), then 1
            wait_log(cfg, "voicemail_login")
            owner.send_dtmf("9")  # 1 arrives: new messages, the first one plays
            wait_log(cfg, "to=saved", timeout=60)  # the message played: heard
            owner.send_dtmf("*")  # 9 arrives: save
            time.sleep(6.0)
            owner.command("hangup")
            owner.wait_event("CALL_CLOSED", timeout=15)
        assert re.search(r"voicemail_login", log(cfg))
        deadline = time.monotonic() + 10
        while messages(cfg.directory)[0][2] != "saved" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert messages(cfg.directory)[0][2] == "saved"


def test_short_hang_up_leaves_nothing(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    with SwitchProcess(cfg.directory / "switch.toml", port=cfg.port) as switch:
        with phone(tmp_path, "102", cfg.port) as caller:
            switch.wait_registrations(lambda rows: len(rows) >= 1)
            caller.command("dial", f"sip:101@127.0.0.1:{cfg.port}")
            caller.wait_event("CALL_ESTABLISHED", timeout=15)
            wait_log(cfg, "voicemail_greeting")
            time.sleep(14.0)  # the greeting, the tone, then a moment of silence
            caller.command("hangup")
            caller.wait_event("CALL_CLOSED", timeout=15)
        deadline = time.monotonic() + 10
        while "voicemail_too_short" not in log(cfg) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "voicemail_too_short" in log(cfg)
        assert messages(cfg.directory) == []
