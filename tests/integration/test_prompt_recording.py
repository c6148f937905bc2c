"""Prompts recorded by phone with baresip: user 101 (a recorder) dials the record code
with a slot (``*951``), speaks an espeak-ng sentence after the tone, ``#`` then ``1`` keeps
it; the tenant's library holds it (same audio, same length) and the auto attendant whose
greeting names that prompt plays it to the next caller at once. 102, not a recorder, is
refused. One switch for the module."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from media.wav import load_wav
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess
from softswitch.voicemail.audio import said
from tests.integration.audiokit import heard, similarity
from tests.integration.voicemailkit import RATE, log, phone, speech, wait_log

pytestmark = pytest.mark.integration

LEAD = 8.0  # silence before the speech: the instructions and the tone play meanwhile
TENANT_TOML = """
[tenants.prompts]
recorders = ["101"]
slots = { "1" = "welcome" }
[tenants.routing]
time_frames = [{ name = "open", when = { kind = "always" } }]
[[tenants.auto_attendants]]
name = "Main"
extension = "800"
greeting = { prompt = "welcome" }
business_hours_frame = "open"
business_hours = { prompt = "Goodbye.", timeout = 2, max_failures = 1, keys = { "1" = { action = "hang_up" } } }
"""  # noqa: E501


@dataclass
class Office:
    cfg: SwitchConfigFile
    switch: SwitchProcess
    work: Path


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    work = tmp_path_factory.mktemp("prompts")
    users = [PhoneUser("101", "pw101"), PhoneUser("102", "pw102")]
    cfg = SwitchConfigFile(work / "switch", users=users, tenant_toml=TENANT_TOML)
    cfg.write()
    with SwitchProcess(cfg.directory / "switch.toml", port=cfg.port) as switch:
        yield Office(cfg, switch, work)


def test_prompt_recorded_by_phone_plays_in_the_attendant(office: Office) -> None:
    cfg, work = office.cfg, office.work / "recorded"
    work.mkdir()
    wav, voiced = speech(work, "Welcome to Example Company. Thank you for calling.", LEAD, 30)
    spoken = said(work / "speech.wav")
    with phone(work, "101", cfg.port, wav) as recorder:
        office.switch.wait_registrations(lambda rows: len(rows) >= 1)
        recorder.command("dial", f"sip:*951@127.0.0.1:{cfg.port}")
        recorder.wait_event("CALL_ESTABLISHED", timeout=15)
        started = time.monotonic()
        wait_log(cfg, "phone_recording ")
        assert time.monotonic() - started < LEAD, "the recording began after the speech"
        time.sleep(max(0.0, LEAD + voiced + 1.0 - (time.monotonic() - started)))
        # baresip's console holds a burst's last key until the next one starts: "#" goes
        # now, "1" when "5" starts.
        recorder.send_dtmf("#1")
        wait_log(cfg, "phone_recording_review")
        time.sleep(1.0)
        recorder.send_dtmf("5")
        wait_log(cfg, "prompt_recorded")
        recorder.command("hangup")
        recorder.wait_event("CALL_CLOSED", timeout=15)

    stored = cfg.directory / "data/prompts/tenants/test/en/welcome.wav"
    assert stored.is_file(), log(cfg)[-2000:]
    kept = load_wav(stored)
    assert abs(len(said(stored)) / RATE - voiced) <= 0.5, (len(kept) / RATE, voiced)
    assert similarity(kept, spoken) > 0.45  # G.711 and a loaded machine's jitter

    # The attendant's greeting names the prompt: the next caller hears the recording.
    listener = office.work / "listener"
    listener.mkdir()
    with phone(listener, "102", cfg.port) as caller:
        office.switch.wait_registrations(lambda rows: len(rows) >= 1)
        caller.command("dial", f"sip:800@127.0.0.1:{cfg.port}")
        caller.wait_event("CALL_ESTABLISHED", timeout=15)
        time.sleep(len(kept) / RATE + 2.0)
        caller.command("hangup")
        caller.wait_event("CALL_CLOSED", timeout=15)
    assert similarity(load_wav(heard(listener / "p102")), kept) > 0.45
    assert "attendant_prompt_missing" not in log(cfg)


def test_only_recorders_may_record(office: Office) -> None:
    work = office.work / "refused"
    work.mkdir()
    with phone(work, "102", office.cfg.port) as other:
        office.switch.wait_registrations(lambda rows: len(rows) >= 1)
        other.command("dial", f"sip:*95@127.0.0.1:{office.cfg.port}")
        other.wait_event("CALL_CLOSED", timeout=15)
    wait_log(office.cfg, "prompt_record_denied")
