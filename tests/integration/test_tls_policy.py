"""TLS policy of the SIP listener (issue 19), tried with openssl s_client: TLS 1.2 at the
least, forward-secret AEAD suites only, and a renewed certificate served after SIGHUP
without a restart (a broken one refused, the old one kept)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port

pytestmark = pytest.mark.integration


def _certificate(cert: Path, key: Path, name: str) -> None:
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    subprocess.run(
        [*request, "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _handshake(port: int, *options: str) -> str:
    """What s_client reports of a handshake with the listener (its -brief summary)."""
    done = subprocess.run(
        ["openssl", "s_client", "-brief", "-connect", f"127.0.0.1:{port}", *options],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )
    return done.stdout + done.stderr


@dataclass
class TlsSwitch:
    switch: SwitchProcess
    port: int
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def tls_switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSwitch]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    _certificate(cert, key, "first.test")
    port = free_port()
    config = SwitchConfigFile(
        directory / "switch",
        users=[PhoneUser("100", "secret100")],
        tls_port=port,
        tls_certificate=cert,
        tls_private_key=key,
    )
    with SwitchProcess(config.write(), port=config.port) as switch:
        yield TlsSwitch(switch, port, cert, key)


def test_tls_1_2_with_a_forward_secret_aead_suite(tls_switch: TlsSwitch) -> None:
    summary = _handshake(tls_switch.port, "-tls1_2")
    assert "Protocol version: TLSv1.2" in summary, summary
    suite = summary.split("Ciphersuite: ", 1)[1].split()[0]
    assert suite.startswith(("ECDHE-", "DHE-")) and ("GCM" in suite or "CHACHA20" in suite)
    assert "Protocol version: TLSv1.3" in _handshake(tls_switch.port)


@pytest.mark.parametrize(
    "options",
    [
        ("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"),
        ("-tls1", "-cipher", "DEFAULT@SECLEVEL=0"),
        ("-tls1_2", "-cipher", "AES128-SHA:AES256-SHA256:AES128-GCM-SHA256"),  # static RSA
        ("-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384"),  # CBC
    ],
    ids=["tls1.1", "tls1.0", "static-rsa", "cbc"],
)
def test_old_protocols_and_weak_suites_are_refused(
    tls_switch: TlsSwitch, options: tuple[str, ...]
) -> None:
    summary = _handshake(tls_switch.port, *options)
    assert "Ciphersuite:" not in summary, summary


def _served_name(port: int) -> str:
    summary = _handshake(port)
    for line in summary.splitlines():
        if line.startswith("Peer certificate:"):
            return line.split("CN", 1)[1].strip(" =")
    raise AssertionError(summary)


def test_renewed_certificate_is_served_after_sighup_and_a_bad_one_is_refused(
    tls_switch: TlsSwitch, tmp_path: Path
) -> None:
    assert _served_name(tls_switch.port) == "first.test"
    # A certificate whose key does not match: refused, the old pair goes on being served.
    _certificate(tmp_path / "other.pem", tmp_path / "other.key", "other.test")
    original = tls_switch.cert.read_bytes()
    tls_switch.cert.write_bytes((tmp_path / "other.pem").read_bytes())
    os.kill(tls_switch.switch.pid, signal.SIGHUP)
    deadline = time.monotonic() + 15
    while "tls.reload_refused" not in tls_switch.switch.log():
        assert time.monotonic() < deadline, tls_switch.switch.log()[-3000:]
        time.sleep(0.2)
    assert _served_name(tls_switch.port) == "first.test"
    tls_switch.cert.write_bytes(original)
    # The renewed pair, written in place as certbot's deploy hook does.
    _certificate(tls_switch.cert, tls_switch.key, "renewed.test")
    os.kill(tls_switch.switch.pid, signal.SIGHUP)
    deadline = time.monotonic() + 15
    while _served_name(tls_switch.port) != "renewed.test":
        assert time.monotonic() < deadline, tls_switch.switch.log()[-3000:]
        time.sleep(0.2)
    assert tls_switch.switch.alive()
