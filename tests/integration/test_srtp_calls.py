"""SRTP leg by leg with real phones (issue 19): baresip over TLS with mandatory SRTP calls
baresip over UDP with plain RTP; both hear each other's tone through the switch."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.audiokit import file_dominant, heard, tone

pytestmark = pytest.mark.integration


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    names = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*request, *names, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_tls_phone_with_mandatory_srtp_calls_a_plain_rtp_phone(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls_port = free_port()
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=[PhoneUser("100", "secret100"), PhoneUser("101", "secret101")],
        tls_port=tls_port,
        tls_certificate=cert,
        tls_private_key=key,
    )
    secure = (
        f"<sip:100@127.0.0.1:{tls_port};transport=tls>;auth_pass=secret100;regint=120;"
        "mediaenc=srtp-mand"
    )
    plain = f"<sip:101@127.0.0.1:{config.port}>;auth_pass=secret101;regint=120;answermode=auto"
    with (
        SwitchProcess(config.write(), port=config.port) as switch,
        BaresipPhone(
            tmp_path / "a",
            secure,
            audio_source=tone(tmp_path / "440.wav", 440.0),
            extra_config=[f"sip_cafile {cert}", "module srtp.so"],
        ) as a,
        BaresipPhone(tmp_path / "b", plain, audio_source=tone(tmp_path / "1k.wav", 1000.0)) as b,
    ):
        rows = switch.wait_registrations(lambda rows: len(rows) == 2, timeout=20)
        assert len(rows) == 2, a.output() + b.output()
        a.command("dial", f"sip:101@127.0.0.1:{tls_port}")
        a.wait_event("CALL_ESTABLISHED", timeout=15)
        menc = a.wait_event("CALL_MENC", timeout=10)  # baresip: the media is encrypted
        assert "AES_CM_128_HMAC_SHA1_80" in str(menc.get("param")), menc
        b.wait_event("CALL_ESTABLISHED", timeout=15)
        time.sleep(3.0)  # audio to judge (the recordings), not a timing assertion
        a.command("hangup")
        a.wait_event("CALL_CLOSED", timeout=15)
        b.wait_event("CALL_CLOSED", timeout=15)
    assert abs(file_dominant(heard(tmp_path / "a")) - 1000.0) < 20
    assert abs(file_dominant(heard(tmp_path / "b")) - 440.0) < 20
    assert "SRTP is Enabled" in a.output()
