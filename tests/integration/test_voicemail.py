"""Voicemail through the switch with baresip phones: a caller leaves a message for a user
who is not registered, the user dials in, enters the PIN by RFC 4733 DTMF, plays the
message and saves it; a restart while a message is being recorded loses nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from media.wav import load_wav, write_wav
from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess
from softswitch.voicemail.audio import said

pytestmark = pytest.mark.integration

RATE = 8000
LEAD = 12.0  # seconds of silence before the speech: the greeting plays meanwhile
TENANT_TOML = """
[tenants.voicemail]
default_pin = "1234"
min_message_seconds = 1.0
"""


def _speech(tmp: Path, text: str) -> tuple[Path, float]:
    """An 8 kHz WAV of ``LEAD`` s of silence, ``text`` spoken by espeak-ng, 3 s of silence;
    and how long the speech is (its voiced part)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    raw = tmp / "speech-raw.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, timeout=60)
    speech = load_wav(raw)
    speech_file = tmp / "speech.wav"
    write_wav(speech_file, speech)
    voiced = len(said(speech_file)) / RATE
    out = tmp / "caller.wav"
    pad = np.zeros(int(LEAD * RATE), np.int16)
    write_wav(out, np.concatenate([pad, speech, np.zeros(3 * RATE, np.int16)]))
    return out, voiced


def _cli(switch_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "softswitch.cli",
            "voicemail",
            *args,
            "--config",
            str(switch_dir / "switch.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=switch_dir,  # where the switch runs: [voicemail] directory is relative to it
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _messages(switch_dir: Path) -> list[list[str]]:
    out = _cli(switch_dir, "list", "test", "101")
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def _wait_messages(switch_dir: Path, count: int, timeout: float = 20.0) -> list[list[str]]:
    deadline = time.monotonic() + timeout
    rows = _messages(switch_dir)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = _messages(switch_dir)
    return rows


def _log(cfg: SwitchConfigFile) -> str:
    try:
        return (cfg.directory / "switch.log").read_text(errors="replace")
    except OSError:
        return ""


def _wait_log(cfg: SwitchConfigFile, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in _log(cfg) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert text in _log(cfg), f"no {text!r} in the switch's log"


def _config(tmp_path: Path) -> SwitchConfigFile:
    users = [PhoneUser("101", "pw101"), PhoneUser("102", "pw102")]
    cfg = SwitchConfigFile(tmp_path / "switch", users=users, tenant_toml=TENANT_TOML)
    cfg.write()
    return cfg


def _phone(tmp_path: Path, ext: str, port: int, source: Path | None = None) -> BaresipPhone:
    if source is None:  # baresip needs a microphone: silence
        source = tmp_path / f"silence-{ext}.wav"
        write_wav(source, np.zeros(60 * RATE, np.int16))
    return BaresipPhone(
        tmp_path / f"p{ext}",
        f"<sip:{ext}@127.0.0.1:{port}>;auth_pass=pw{ext};regint=120;answermode=auto",
        audio_source=source,
    )


def test_message_left_then_heard_and_saved(tmp_path: Path) -> None:
    wav, voiced = _speech(tmp_path, "Hello Alice, this is Bob. Please call me back tomorrow.")
    cfg = _config(tmp_path)
    with SwitchProcess(cfg.directory / "switch.toml", port=cfg.port) as switch:
        # 101 is not registered: the call goes to voicemail, the unavailable greeting plays.
        with _phone(tmp_path, "102", cfg.port, wav) as caller:
            caller.start()
            switch.wait_registrations(lambda rows: len(rows) >= 1)
            caller.command("dial", f"sip:101@127.0.0.1:{cfg.port}")
            caller.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(LEAD + voiced + 1.5)
            caller.command("hangup")
            caller.wait_event("CALL_CLOSED", timeout=15)
        rows = _wait_messages(cfg.directory, 1)
        assert len(rows) == 1, rows
        mailbox, message_id, folder, _when, duration, who = rows[0][:6]
        assert (mailbox, folder) == ("101", "new")
        assert who.endswith("<102>") or who == "102"
        assert abs(float(duration.rstrip("s")) - voiced) <= 0.5, (duration, voiced)
        assert re.search(r"voicemail_greeting.*greeting=unavailable", _log(cfg))

        # The message's audio is what was said.
        out = tmp_path / "played.wav"
        _cli(cfg.directory, "play", "test", "101", message_id, "--out", str(out))
        assert abs(len(load_wav(out)) / RATE - voiced) <= 0.5

        # 101 dials in from its own phone, enters the PIN, plays the message and saves it.
        with _phone(tmp_path, "101", cfg.port) as owner:
            owner.start()
            switch.wait_registrations(lambda rows: len(rows) >= 2)
            owner.command("dial", f"sip:*97@127.0.0.1:{cfg.port}")
            owner.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(1.0)
            # baresip's console holds the last key of a burst until the next key starts
            # (no end packet before): each burst ends with the key the next step needs.
            owner.send_dtmf("12341")  # the PIN (it ends after the digit timeout), then 1
            _wait_log(cfg, "voicemail_login")
            owner.send_dtmf("9")  # 1 arrives: new messages, the first one plays
            _wait_log(cfg, "to=saved", timeout=60)  # the message played: heard
            owner.send_dtmf("*")  # 9 arrives: save
            time.sleep(6.0)
            owner.command("hangup")
            owner.wait_event("CALL_CLOSED", timeout=15)
        assert re.search(r"voicemail_login", _log(cfg))
        deadline = time.monotonic() + 10
        while _messages(cfg.directory)[0][2] != "saved" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _messages(cfg.directory)[0][2] == "saved"


def test_short_hang_up_leaves_nothing(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    with SwitchProcess(cfg.directory / "switch.toml", port=cfg.port) as switch:
        with _phone(tmp_path, "102", cfg.port) as caller:
            caller.start()
            switch.wait_registrations(lambda rows: len(rows) >= 1)
            caller.command("dial", f"sip:101@127.0.0.1:{cfg.port}")
            caller.wait_event("CALL_ESTABLISHED", timeout=15)
            _wait_log(cfg, "voicemail_greeting")
            time.sleep(14.0)  # the greeting, the tone, then a moment of silence
            caller.command("hangup")
            caller.wait_event("CALL_CLOSED", timeout=15)
        deadline = time.monotonic() + 10
        while "voicemail_too_short" not in _log(cfg) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "voicemail_too_short" in _log(cfg)
        assert _messages(cfg.directory) == []
