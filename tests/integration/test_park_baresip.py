"""Call park with baresip desk phones and audio checked by FFT: 100 (500 Hz) calls 102
(700 Hz), who parks the call by a blind transfer to orbit 7001 (baresip's ``transfer``);
a busy-lamp key of 101 (SIPp) watching 7001 sees it lit while the call is parked and dark
once 103 (1100 Hz, baresip) retrieves it by dialling 7001; 100 and 103 then hear each
other until 103 hangs up."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from peers.baresip import BaresipPhone
from peers.sipp import user_rows, write_users
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess
from tests.integration.audiokit import channel, heard, level, tone
from tests.integration.callkit import wait_cdrs, wait_log
from tests.integration.parkkit import SippThread, park_watch_scenario

pytestmark = pytest.mark.integration

USERS = [PhoneUser(ext, f"pw{ext}") for ext in ("100", "101", "102", "103")]
TONES = {"100": 500.0, "102": 700.0, "103": 1100.0}


def phone(tmp_path: Path, port: int, ext: str, answer: str) -> BaresipPhone:
    return BaresipPhone(
        tmp_path / f"p{ext}",
        f"<sip:{ext}@127.0.0.1:{port}>;auth_pass=pw{ext};regint=120;answermode={answer}",
        audio_source=tone(tmp_path / f"{ext}.wav", TONES[ext]),
    ).start()


def last_seconds(path: Path, seconds: float) -> np.ndarray:
    samples = channel(path)
    return samples[-int(8000 * seconds) :]


def test_baresip_parks_by_transfer_and_another_phone_retrieves(tmp_path: Path) -> None:
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=USERS,
        extra_toml="[subscriptions]\nmin_expires = 1\n",
        tenant_toml='[tenants.park]\norbits = "7001-7002"\ntimeout = 60\n',
    )
    with SwitchProcess(config.write(), port=config.port) as switch:
        port = switch.port
        watcher = SippThread(
            park_watch_scenario(tmp_path / "park_watch.xml"),
            port,
            injection=write_users(tmp_path / "w.csv", user_rows([("101", "pbx.test", "pw101")])),
            extra=["-s", "7001"],
            timeout=60,
        )
        wait_log(switch, "] subscribed ")
        phones: list[BaresipPhone] = []
        try:
            # Each phone is started before the next picks its ports.
            caller = phone(tmp_path, port, "100", "manual")
            phones.append(caller)
            parker = phone(tmp_path, port, "102", "auto")
            phones.append(parker)
            retriever = phone(tmp_path, port, "103", "manual")
            phones.append(retriever)
            rows = switch.wait_registrations(lambda rows: len(rows) == 3, timeout=20)
            assert len(rows) == 3, caller.output() + parker.output() + retriever.output()
            caller.command("dial", f"sip:102@127.0.0.1:{port}")
            caller.wait_event("CALL_ESTABLISHED", timeout=15)
            parker.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(1.0)
            parker.command("transfer", f"sip:7001@127.0.0.1:{port}")
            wait_log(switch, "call_parked")
            parker.wait_event("CALL_CLOSED", timeout=15)  # the switch released the parker
            retriever.command("dial", f"sip:7001@127.0.0.1:{port}")
            retriever.wait_event("CALL_ESTABLISHED", timeout=15)
            wait_log(switch, "call_retrieved")
            time.sleep(3.0)  # let audio flow
            retriever.command("hangup")
            caller.wait_event("CALL_CLOSED", timeout=15)
        finally:
            for running in phones:
                running.stop()
        result = watcher.wait()
        assert result.ok and result.successful == 1, result.errors + result.screen
        # The phones are stopped: their recordings are complete. After the retrieval the
        # parked caller hears the retriever and the retriever hears the parked caller.
        assert level(last_seconds(heard(tmp_path / "p100"), 1.5), TONES["103"]) == 1.0
        assert level(last_seconds(heard(tmp_path / "p103"), 1.5), TONES["100"]) == 1.0
        rows = wait_cdrs(switch, 3)
        assert ("7001", "ANSWERED") in {(r["dialled"], r["disposition"]) for r in rows}
