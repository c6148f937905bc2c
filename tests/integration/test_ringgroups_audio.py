"""Ring group with an announcement and music, heard by a real phone (baresip, FFT): 100
(500 Hz) calls ring group 600, which answers and plays its announcement (a 900 Hz prompt
of the tenant's library), then rings member 101 while 100 hears the tenant's music on
hold (700 Hz); 101 (1100 Hz) answers and the two hear each other."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess
from tests.integration.audiokit import channel, file_dominant, heard, tone, windows
from tests.integration.callkit import wait_cdrs, wait_log

pytestmark = pytest.mark.integration

USERS = [PhoneUser(ext, f"pw{ext}") for ext in ("100", "101")]
CALLER, MEMBER, ANNOUNCEMENT, MUSIC = 500.0, 1100.0, 900.0, 700.0


def group_toml(music: Path) -> str:
    return "\n".join(
        [
            "[tenants.moh]",
            f'songs = ["{music}"]',
            "[[tenants.routing.ring_groups]]",
            'name = "Desk"',
            'extension = "600"',
            'announcement = "rg-welcome"',
            'ringback = "music"',
            "[[tenants.routing.ring_groups.members]]",
            'target = "101"',
            "timeout = 30",
        ]
    )


def first_after(heard_hz: list[float], frequency: float, start: int) -> int:
    """The first window from ``start`` whose dominant frequency is ``frequency``."""
    for index in range(start, len(heard_hz)):
        if abs(heard_hz[index] - frequency) < 20:
            return index
    raise AssertionError(f"{frequency} Hz not heard after window {start}: {heard_hz}")


def test_caller_hears_announcement_then_music_then_the_member(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    (prompts / "tenants" / "test" / "en").mkdir(parents=True)
    tone(prompts / "tenants" / "test" / "en" / "rg-welcome.wav", ANNOUNCEMENT, seconds=2.0)
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=USERS,
        extra_toml=f'[prompts]\ndirectory = "{prompts}"\n',
        tenant_toml=group_toml(tone(tmp_path / "music.wav", MUSIC, seconds=30.0)),
    )
    with SwitchProcess(config.write(), port=config.port) as switch:
        port = switch.port
        with (
            BaresipPhone(
                tmp_path / "p100",
                f"<sip:100@127.0.0.1:{port}>;auth_pass=pw100;regint=120;answermode=manual",
                audio_source=tone(tmp_path / "caller.wav", CALLER),
            ) as caller,
            BaresipPhone(
                tmp_path / "p101",
                f"<sip:101@127.0.0.1:{port}>;auth_pass=pw101;regint=120;answermode=manual",
                audio_source=tone(tmp_path / "member.wav", MEMBER),
            ) as member,
        ):
            rows = switch.wait_registrations(lambda rows: len(rows) == 2, timeout=20)
            assert len(rows) == 2, caller.output() + member.output()
            caller.command("dial", f"sip:600@127.0.0.1:{port}")
            caller.wait_event("CALL_ESTABLISHED", timeout=15)  # answered for the announcement
            member.wait_event("CALL_INCOMING", timeout=20)  # rings after the announcement
            wait_log(switch, "ring_group_ringing")
            time.sleep(2.0)  # the caller hears the music while 101 rings
            member.command("accept")
            member.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(2.5)  # let audio flow
            caller.command("hangup")
            caller.wait_event("CALL_CLOSED", timeout=15)
            member.wait_event("CALL_CLOSED", timeout=15)
        # The phones are stopped: their recordings are complete.
        heard_hz = windows(channel(heard(tmp_path / "p100"), skip=0.0))
        announced = first_after(heard_hz, ANNOUNCEMENT, 0)
        music = first_after(heard_hz, MUSIC, announced)
        first_after(heard_hz, MEMBER, music)
        assert abs(file_dominant(heard(tmp_path / "p101")) - CALLER) < 20
        rows = wait_cdrs(switch, 2)
        assert any(r["dialled"] == "600" and r["disposition"] == "ANSWERED" for r in rows)
