"""Voicemail's cases with baresip phones: the busy and the temporary greeting, PIN lockout
(and unlock), a full mailbox, and a switch restarted while a message is being recorded."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.switchproc import SwitchConfigFile, SwitchProcess
from tests.integration.voicemailkit import (
    LEAD,
    TENANT_TOML,
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


def _leave(cfg: SwitchConfigFile, tmp_path: Path, wav: Path, seconds: float) -> None:
    """102 calls 101 and hangs up after ``seconds``."""
    with phone(tmp_path, "102", cfg.port, wav) as caller:
        caller.command("dial", f"sip:101@127.0.0.1:{cfg.port}")
        caller.wait_event("CALL_ESTABLISHED", timeout=15)
        time.sleep(seconds)
        caller.command("hangup")
        caller.wait_event("CALL_CLOSED", timeout=15)


def test_busy_then_temporary_greeting(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cli(cfg.directory, "greeting", "test", "101", "busy", "--text", "Alice is on the phone.")

    def call_rejected(callee: BaresipPhone) -> None:
        with phone(tmp_path, "102", cfg.port) as caller:
            time.sleep(1.0)
            caller.command("dial", f"sip:101@127.0.0.1:{cfg.port}")
            callee.wait_event("CALL_INCOMING", timeout=15)
            callee.command("hangup")  # rejected: busy
            caller.wait_event("CALL_ESTABLISHED", timeout=15)
            wait_log(cfg, "voicemail_greeting")
            caller.command("hangup")
            caller.wait_event("CALL_CLOSED", timeout=15)

    with (
        SwitchProcess(cfg.directory / "switch.toml", port=cfg.port),
        phone(tmp_path, "101", cfg.port, manual=True) as callee,
    ):
        call_rejected(callee)
        assert re.search(r"voicemail_greeting .*greeting=busy .*recorded=True", log(cfg))
        # A temporary greeting overrides the busy one (and the unavailable one).
        cli(cfg.directory, "greeting", "test", "101", "temporary", "--text", "Back Monday.")
        call_rejected(callee)
        assert re.search(r"voicemail_greeting .*greeting=temporary .*recorded=True", log(cfg))


def test_wrong_pins_lock_the_mailbox(tmp_path: Path) -> None:
    cfg = config(tmp_path, TENANT_TOML + "pin_attempts = 2\n")
    with (
        SwitchProcess(cfg.directory / "switch.toml", port=cfg.port),
        phone(tmp_path, "101", cfg.port) as owner,
    ):
        time.sleep(1.0)
        owner.command("dial", f"sip:*97@127.0.0.1:{cfg.port}")
        owner.wait_event("CALL_ESTABLISHED", timeout=15)
        time.sleep(1.0)
        # baresip holds a burst's last key until the next one starts (see test_voicemail).
        owner.send_dtmf("99990")  # 9999: wrong
        time.sleep(8.0)
        owner.send_dtmf("8888")  # 0888: wrong again -> locked
        wait_log(cfg, "voicemail_locked", timeout=30)
        owner.wait_event("CALL_CLOSED", timeout=30)
    assert "voicemail_login" not in log(cfg)
    assert "unlocked" in cli(cfg.directory, "unlock", "test", "101")


def test_full_mailbox_takes_nothing(tmp_path: Path) -> None:
    wav, voiced = speech(tmp_path, "This is the first message.")
    cfg = config(tmp_path, TENANT_TOML + "max_messages = 1\n")
    with SwitchProcess(cfg.directory / "switch.toml", port=cfg.port):
        _leave(cfg, tmp_path, wav, LEAD + voiced + 1.5)
        assert len(wait_messages(cfg.directory, 1)) == 1
        _leave(cfg, tmp_path, wav, 4.0)
        wait_log(cfg, "voicemail_full")
    assert len(messages(cfg.directory)) == 1


def test_restart_while_recording_loses_nothing(tmp_path: Path) -> None:
    wav, _ = speech(tmp_path, "This message is being recorded while the switch restarts. " * 2)
    cfg = config(tmp_path)
    with (
        SwitchProcess(cfg.directory / "switch.toml", port=cfg.port) as switch,
        phone(tmp_path, "102", cfg.port, wav) as caller,
    ):
        caller.command("dial", f"sip:101@127.0.0.1:{cfg.port}")
        caller.wait_event("CALL_ESTABLISHED", timeout=15)
        started = time.monotonic()
        wait_log(cfg, "voicemail_recording")
        time.sleep(max(0.0, LEAD + 3.0 - (time.monotonic() - started)))  # into the speech
        switch.stop()  # the switch stops mid-message
    with SwitchProcess(cfg.directory / "switch.toml", port=cfg.port):
        rows = wait_messages(cfg.directory, 1)
    assert len(rows) == 1, rows
    assert rows[0][5].endswith("<102>")
    assert float(rows[0][4].rstrip("s")) > 0.5
