"""Voicemail tests' helpers: a switch with users 101 and 102, baresip phones, speech made
by espeak-ng, and the `softswitch voicemail` command and the switch's log to read back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from media.wav import load_wav, write_wav
from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile
from softswitch.voicemail.audio import said

RATE = 8000
LEAD = 12.0  # seconds of silence before the speech: the greeting plays meanwhile
TENANT_TOML = """
[tenants.voicemail]
default_pin = "1234"
min_message_seconds = 1.0
"""


def speech(
    tmp: Path, text: str, lead: float = LEAD, tail: float = 3.0, name: str = "caller"
) -> tuple[Path, float]:
    """An 8 kHz WAV of ``lead`` s of silence, ``text`` spoken by espeak-ng, ``tail`` s of
    silence; and how long the speech is (its voiced part). ``tmp/speech.wav`` is the
    speech alone."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    raw = tmp / "speech-raw.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, timeout=60)
    speech = load_wav(raw)
    speech_file = tmp / "speech.wav"
    write_wav(speech_file, speech)
    voiced = len(said(speech_file)) / RATE
    out = tmp / f"{name}.wav"
    pad = np.zeros(int(lead * RATE), np.int16)
    write_wav(out, np.concatenate([pad, speech, np.zeros(int(tail * RATE), np.int16)]))
    return out, voiced


def cli(switch_dir: Path, *args: str) -> str:
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


def messages(switch_dir: Path) -> list[list[str]]:
    out = cli(switch_dir, "list", "test", "101")
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def wait_messages(switch_dir: Path, count: int, timeout: float = 20.0) -> list[list[str]]:
    deadline = time.monotonic() + timeout
    rows = messages(switch_dir)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = messages(switch_dir)
    return rows


def log(cfg: SwitchConfigFile) -> str:
    try:
        return (cfg.directory / "switch.log").read_text(errors="replace")
    except OSError:
        return ""


def wait_log(cfg: SwitchConfigFile, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log(cfg) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert text in log(cfg), f"no {text!r} in the switch's log"


def config(tmp_path: Path, tenant_toml: str = TENANT_TOML) -> SwitchConfigFile:
    users = [PhoneUser("101", "pw101"), PhoneUser("102", "pw102")]
    cfg = SwitchConfigFile(tmp_path / "switch", users=users, tenant_toml=tenant_toml)
    cfg.write()
    return cfg


def phone(
    tmp_path: Path, ext: str, port: int, source: Path | None = None, *, manual: bool = False
) -> BaresipPhone:
    if source is None:  # baresip needs a microphone: silence
        source = tmp_path / f"silence-{ext}.wav"
        write_wav(source, np.zeros(60 * RATE, np.int16))
    return BaresipPhone(
        tmp_path / f"p{ext}",
        f"<sip:{ext}@127.0.0.1:{port}>;auth_pass=pw{ext};regint=120;answermode="
        + ("manual" if manual else "auto"),
        audio_source=source,
    )
