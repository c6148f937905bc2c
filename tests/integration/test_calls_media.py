"""Calls with media anchored in the switch, with baresip phones (and SIPp for a phone that
lies about its address): audio through the switch's ports, music on hold, *98/*99
recording, DTMF (RFC 4733 and in-band) and call quality in the CDR."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from media import g711
from media.wav import read_wav
from peers.baresip import BaresipPhone
from peers.sipp import SCENARIOS, run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess
from tests.integration.audiokit import (
    channel,
    dominant,
    dtmf_tones,
    file_dominant,
    heard,
    tone,
    windows,
)
from tests.integration.callkit import caller_injection, wait_cdrs

pytestmark = pytest.mark.integration

USERS = [PhoneUser("100", "secret100"), PhoneUser("101", "secret101")]


def _phone(
    directory: Path, user: str, port: int, source: Path, answer: str = "manual"
) -> BaresipPhone:
    return BaresipPhone(
        directory,
        f"<sip:{user}@127.0.0.1:{port}>;auth_pass=secret{user};regint=120;answermode={answer}",
        audio_source=source,
    )


def _call(switch: SwitchProcess, caller: BaresipPhone, callee: BaresipPhone) -> None:
    rows = switch.wait_registrations(lambda rows: len(rows) == 2, timeout=20)
    assert len(rows) == 2, caller.output() + callee.output()
    caller.command("dial", f"sip:101@127.0.0.1:{switch.port}")
    caller.wait_event("CALL_ESTABLISHED", timeout=15)
    callee.wait_event("CALL_ESTABLISHED", timeout=15)


def _hang_up(caller: BaresipPhone, callee: BaresipPhone) -> None:
    caller.command("hangup")
    caller.wait_event("CALL_CLOSED", timeout=15)
    callee.wait_event("CALL_CLOSED", timeout=15)


def _digits(switch: SwitchProcess, source: str) -> str:
    """The keys the switch reported, in order, from one kind of source."""
    found = []
    for line in switch.log().splitlines():
        if " dtmf " in f" {line} " and f"source={source}" in line:
            match = re.search(r"digit=(\S+)", line)
            if match:
                found.append(match.group(1).strip("'\""))
    return "".join(found)


@pytest.fixture
def switch_config(tmp_path: Path) -> SwitchConfigFile:
    return SwitchConfigFile(
        tmp_path / "switch", users=USERS, hold_music=tone(tmp_path / "moh.wav", 700.0, 30.0)
    )


def test_anchored_call_tones_cross_recording_dtmf_and_quality(
    switch_config: SwitchConfigFile, tmp_path: Path
) -> None:
    """A (440 Hz) calls B (1,000 Hz) through the switch; A presses *98, 1 2 3, *99."""
    with (
        SwitchProcess(switch_config.write(), port=switch_config.port) as switch,
        _phone(tmp_path / "a", "100", switch.port, tone(tmp_path / "440.wav", 440.0)) as a,
        _phone(tmp_path / "b", "101", switch.port, tone(tmp_path / "1k.wav", 1000.0), "auto") as b,
    ):
        _call(switch, a, b)
        time.sleep(1.5)
        a.command("sndcode", "*98")  # RFC 4733 events, each key ~180 ms
        time.sleep(3.0)
        a.command("sndcode", "123*99")
        time.sleep(2.5)
        _hang_up(a, b)
    assert abs(file_dominant(heard(tmp_path / "a")) - 1000.0) < 20
    assert abs(file_dominant(heard(tmp_path / "b")) - 440.0) < 20
    assert _digits(switch, "rfc4733") == "*98123*99"
    (cdr,) = wait_cdrs(switch, 1)
    assert cdr["disposition"] == "ANSWERED"
    # Both phones sent their RTP to the switch's ports and received the other's from them.
    quality = cdr["quality"]
    assert set(quality) == {"caller", "callee"}, quality
    for side in quality.values():
        assert side["packets_received"] > 100 and side["packets_sent"] > 100, quality
        assert side["codec"] in ("PCMU", "PCMA")
        assert 1.0 <= side["mos"] <= 4.5 and side["jitter_ms"] >= 0 and side["loss"] < 0.05
    assert 1.0 <= float(cdr["mos"]) <= 4.5
    (recording,) = cdr["recordings"]
    path = Path(recording["path"])
    samples, info = read_wav(path)
    assert info.channels == 2 and info.sample_rate == 8000
    assert 1.5 < len(samples) / 8000 < 6.0  # from *98 to *99
    assert abs(dominant(channel(path, 0)) - 440.0) < 20  # the caller's channel
    assert abs(dominant(channel(path, 1)) - 1000.0) < 20  # the callee's


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "2 workers"])
@pytest.mark.parametrize("music", ["media.hold_music", "tenant playlist"])
def test_hold_plays_music_to_the_held_party_and_resume_restores_the_call(
    music: str, workers: int, tmp_path: Path
) -> None:
    """B holds A: A hears 700 Hz music (from [media] hold_music, or the tenant's playlist
    after its 500 Hz introduction), then B again after resuming; with media in the switch
    process and in two media worker processes."""
    if music == "tenant playlist":
        switch_config = SwitchConfigFile(
            tmp_path / "switch",
            users=USERS,
            tenant_toml=(
                "[tenants.moh]\n"
                f"intro = {json.dumps(str(tone(tmp_path / 'intro.wav', 500.0, 1.0)))}\n"
                f"songs = [{json.dumps(str(tone(tmp_path / 'song.wav', 700.0, 30.0)))}]\n"
            ),
        )
    else:
        switch_config = SwitchConfigFile(
            tmp_path / "switch", users=USERS, hold_music=tone(tmp_path / "moh.wav", 700.0, 30.0)
        )
    media_args = ["--media-workers", str(workers)] if workers else []
    with (
        SwitchProcess(
            switch_config.write(), port=switch_config.port, extra_args=media_args
        ) as switch,
        _phone(tmp_path / "a", "100", switch.port, tone(tmp_path / "440.wav", 440.0)) as a,
        _phone(tmp_path / "b", "101", switch.port, tone(tmp_path / "1k.wav", 1000.0), "auto") as b,
    ):
        _call(switch, a, b)
        time.sleep(2.0)
        b.command("hold")  # B holds A: re-INVITE a=sendonly, answered by the switch
        time.sleep(3.0)
        b.command("resume")
        time.sleep(3.0)
        _hang_up(a, b)
    heard_by_a = windows(channel(heard(tmp_path / "a")))
    near = [round(f / 50) * 50 for f in heard_by_a]
    assert 700 in near, heard_by_a  # music on hold while held
    first_moh = near.index(700)
    if music == "tenant playlist":
        assert 500 in near[:first_moh], heard_by_a  # the introduction first
        first_moh = near.index(500)
    assert 1000 in near[:first_moh], heard_by_a  # the conversation before
    assert 1000 in near[near.index(700) + 1 :][-4:], heard_by_a  # and after resuming
    log = switch.log()
    assert "call_held" in log and "call_resumed" in log
    (cdr,) = wait_cdrs(switch, 1)
    assert cdr["disposition"] == "ANSWERED"


def test_inband_dtmf_tones_are_reported_in_order(tmp_path: Path) -> None:
    config = SwitchConfigFile(tmp_path / "switch", users=USERS, extra_toml='inband_dtmf = "always"')
    with (
        SwitchProcess(config.write(), port=config.port) as switch,
        _phone(tmp_path / "a", "100", switch.port, dtmf_tones(tmp_path / "keys.wav", "159#0")) as a,
        _phone(tmp_path / "b", "101", switch.port, tone(tmp_path / "1k.wav", 1000.0), "auto") as b,
    ):
        _call(switch, a, b)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(_digits(switch, "inband")) < 5:
            time.sleep(0.25)
        _hang_up(a, b)
    assert _digits(switch, "inband") == "159#0"


def _rtp_tone(frequency: float, seq: int) -> bytes:
    t = (np.arange(160) + seq * 160) / 8000
    pcm = (np.sin(2 * np.pi * frequency * t) * 8000).astype(np.int16)
    payload = g711.encode_mixed(pcm[None, :], np.zeros(1, np.intp)).tobytes()
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, 0x1234) + payload


def _switch_port_for(messages: Path, timeout: float = 15.0) -> int:
    """The RTP port in the switch's 200 OK, read from SIPp's message trace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = messages.read_text(errors="replace") if messages.exists() else ""
        for block in text.split("SIP/2.0 200 OK")[1:]:
            match = re.search(r"m=audio (\d+) ", block)
            if match:
                return int(match.group(1))
        time.sleep(0.1)
    raise AssertionError("no 200 OK with SDP in SIPp's trace")


def test_phone_with_a_wrong_sdp_address_still_gets_audio(tmp_path: Path) -> None:
    """A SIPp caller advertises 192.0.2.1 (unreachable) in its SDP; its RTP really comes
    from a local socket. The switch latches onto that source: the caller's socket hears
    the callee's 1,000 Hz, and the callee hears the caller's 600 Hz."""
    config = SwitchConfigFile(tmp_path / "switch", users=USERS)
    work = tmp_path / "sipp"
    work.mkdir()
    with (
        SwitchProcess(config.write(), port=config.port) as switch,
        _phone(tmp_path / "b", "101", config.port, tone(tmp_path / "1k.wav", 1000.0), "auto"),
    ):
        switch.wait_registrations(lambda rows: len(rows) == 1, timeout=20)
        scenario = work / "wrong_address_uac.xml"
        scenario.write_text(
            (SCENARIOS / "call_uac.xml")
            .read_text()
            .replace("c=IN IP[media_ip_type] [media_ip]", "c=IN IP4 192.0.2.1")
        )
        result: list[object] = []
        uac = threading.Thread(
            target=lambda: result.append(
                run_sipp(
                    scenario,
                    f"127.0.0.1:{switch.port}",
                    calls=1,
                    rate=1,
                    injection=caller_injection(work, "100", "secret100"),
                    workdir=work,
                    extra=[
                        "-s",
                        "101",
                        "-d",
                        "4000",
                        "-trace_msg",
                        "-message_file",
                        str(work / "messages.log"),
                    ],
                    timeout=30,
                )
            ),
            daemon=True,
        )
        uac.start()
        port = _switch_port_for(work / "messages.log")
        received = bytearray()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
            rtp.bind(("127.0.0.1", 0))
            rtp.settimeout(0.02)
            for seq in range(150):  # 3 s of 600 Hz from the real source
                rtp.sendto(_rtp_tone(600.0, seq), ("127.0.0.1", port))
                try:
                    while True:
                        data = rtp.recv(2048)
                        if len(data) == 172 and data[1] & 0x7F == 0:
                            received += data[12:]
                except TimeoutError:
                    pass
        uac.join(30)
    assert result and result[0].ok, result  # type: ignore[attr-defined]
    assert len(received) > 8000, len(received)  # at least a second of audio came back
    pcm = g711.decode_mixed(
        np.frombuffer(bytes(received), np.uint8)[None, :], np.zeros(1, np.intp)
    )[0]
    assert abs(dominant(pcm[4000:]) - 1000.0) < 20
    assert abs(file_dominant(heard(tmp_path / "b")) - 600.0) < 20
    (cdr,) = wait_cdrs(switch, 1)
    assert cdr["quality"]["caller"]["remote"].startswith("127.0.0.1:")


def test_anchored_call_through_media_worker_processes(tmp_path: Path) -> None:
    """The same call with `--media-workers 2`: both legs on one worker, tones cross, the
    recording keys work over the worker protocol, quality reaches the CDR."""
    config = SwitchConfigFile(tmp_path / "switch", users=USERS)
    with (
        SwitchProcess(
            config.write(), port=config.port, extra_args=["--media-workers", "2"]
        ) as switch,
        _phone(tmp_path / "a", "100", switch.port, tone(tmp_path / "440.wav", 440.0)) as a,
        _phone(tmp_path / "b", "101", switch.port, tone(tmp_path / "1k.wav", 1000.0), "auto") as b,
    ):
        _call(switch, a, b)
        time.sleep(1.5)
        a.command("sndcode", "*98")
        time.sleep(3.0)
        a.command("sndcode", "*99")
        time.sleep(1.5)
        _hang_up(a, b)
    assert abs(file_dominant(heard(tmp_path / "a")) - 1000.0) < 20
    assert abs(file_dominant(heard(tmp_path / "b")) - 440.0) < 20
    (cdr,) = wait_cdrs(switch, 1)
    assert {side["packets_received"] > 50 for side in cdr["quality"].values()} == {True}, cdr
    (recording,) = cdr["recordings"]
    path = Path(recording["path"])
    assert abs(dominant(channel(path, 0)) - 440.0) < 20
    assert abs(dominant(channel(path, 1)) - 1000.0) < 20
