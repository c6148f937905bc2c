"""Two baresip phones call each other through the B2BUA; audio flows both ways."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess
from tests.integration.audiokit import file_dominant, heard, tone
from tests.integration.callkit import wait_cdrs

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("hangs_up", ["caller", "callee"])
def test_phone_100_calls_101_audio_both_ways_and_cdr(tmp_path: Path, hangs_up: str) -> None:
    users = [PhoneUser("100", "secret100"), PhoneUser("101", "secret101")]
    config = SwitchConfigFile(tmp_path / "switch", users=users)
    with SwitchProcess(config.write(), port=config.port) as switch:
        port = config.port
        # Each phone is started before the next picks its ports (baresip also binds its SIP
        # port + 1 for TLS, which must not be another phone's port).
        with (
            BaresipPhone(
                tmp_path / "p100",
                f"<sip:100@127.0.0.1:{port}>;auth_pass=secret100;regint=120;answermode=manual",
                audio_source=tone(tmp_path / "440.wav", 440.0),
            ) as caller,
            BaresipPhone(
                tmp_path / "p101",
                f"<sip:101@127.0.0.1:{port}>;auth_pass=secret101;regint=120;answermode=auto",
                audio_source=tone(tmp_path / "1000.wav", 1000.0),
            ) as callee,
        ):
            rows = switch.wait_registrations(lambda rows: len(rows) == 2, timeout=20)
            assert len(rows) == 2, caller.output() + callee.output()
            caller.command("dial", f"sip:101@127.0.0.1:{port}")
            caller.wait_event("CALL_ESTABLISHED", timeout=15)
            callee.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(3.0)  # let audio flow
            (caller if hangs_up == "caller" else callee).command("hangup")
            caller.wait_event("CALL_CLOSED", timeout=15)
            callee.wait_event("CALL_CLOSED", timeout=15)
        # The phones are stopped: their recordings are complete.
        assert abs(file_dominant(heard(tmp_path / "p100")) - 1000.0) < 20
        assert abs(file_dominant(heard(tmp_path / "p101")) - 440.0) < 20
        (cdr,) = wait_cdrs(switch, 1)
        assert (cdr["disposition"], cdr["caller_number"], cdr["destination"]) == (
            "ANSWERED",
            "100",
            "101",
        )
        assert cdr["q850_name"] == "NORMAL_CLEARING"
        assert float(cdr["billsec"]) > 2
