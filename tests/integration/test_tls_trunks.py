"""Mutual TLS for trunks (issue 19) against the real switch with Python ``ssl`` clients:
a TLS connection from a trunk's address is kept only with a certificate that the trunk's
CA issued for the trunk's name; phones elsewhere still connect without one."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peers.switchproc import SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import append_lines, trunk_lines
from tests.integration.tlskit import TlsGateway, certificate_authority, issued, self_signed

pytestmark = pytest.mark.integration


@dataclass
class Pki:
    port: int  # the switch's TLS port
    good: tuple[Path, Path]  # CA A's certificate for carrier.example
    wrong_ca: tuple[Path, Path]  # CA B's (trusted for another trunk) for carrier.example
    wrong_name: tuple[Path, Path]  # CA A's for elsewhere.example
    other: tuple[Path, Path]  # CA B's for other.example (the other trunk's own)
    log: Path  # the switch's log
    sip_port: int  # the switch's UDP and TCP port


@dataclass
class Gateways:
    secure: TlsGateway  # verified against its CA and name, and pinned: gets the REGISTER
    mispinned: TlsGateway  # the right certificate, but not the pinned one
    untrusted: TlsGateway  # a certificate from a CA the trunk does not trust
    switch_cert: Path


def _gateway_trunk(trunk: str, port: int, **tls: object) -> list[str]:
    """A trunk registering over TLS to 127.0.0.1:``port`` with these ``tls`` keys."""
    return [
        "[[tenants.trunks]]",
        f'name = "{trunk}"',
        "registration = true",
        f'username = "{trunk}"',
        'password = "secret"',
        "[[tenants.trunks.gateways]]",
        'host = "127.0.0.1"',
        f"port = {port}",
        'transport = "tls"',
        "[tenants.trunks.tls]",
        *(f"{key} = {json.dumps(value)}" for key, value in tls.items()),
    ]


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pki, Gateways]]:
    directory = tmp_path_factory.mktemp("tls-trunks")
    server = self_signed(directory, "server")
    ca_a = certificate_authority(directory, "Carrier CA")
    ca_b = certificate_authority(directory, "Other CA")
    pki = Pki(
        free_port(),
        issued(directory, ca_a, "carrier.example", "good"),
        issued(directory, ca_b, "carrier.example", "wrong-ca"),
        issued(directory, ca_a, "elsewhere.example", "wrong-name"),
        issued(directory, ca_b, "other.example", "other"),
        directory / "switch" / "switch.log",
        free_port(),
    )
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pki.good[0].read_text())).hexdigest()
    ports = [free_port() for _ in range(3)]
    gateways = Gateways(
        *(TlsGateway(pki.good, server[0], port, seconds=60) for port in ports), server[0]
    )
    config = SwitchConfigFile(
        directory / "switch",
        port=pki.sip_port,
        tls_port=pki.port,
        tls_certificate=server[0],
        tls_private_key=server[1],
        security_toml=f'allow = ["127.0.0.1/32"]\ntrunk_ca_file = "{ca_b[0]}"',
    )
    verified = {"verify_server": True, "name": "carrier.example", "ca_file": str(ca_a[0])}
    lines = [
        *trunk_lines("carrier", [free_port()], inbound_addresses=["127.0.0.2/32"]),
        "[tenants.trunks.tls]",
        "require_client_certificate = true",
        'name = "carrier.example"',
        f'ca_file = "{ca_a[0]}"',
        *trunk_lines("other", [free_port()], inbound_addresses=["127.0.0.3/32"]),
        "[tenants.trunks.tls]",  # no ca_file: [security] trunk_ca_file
        "require_client_certificate = true",
        'name = "other.example"',
        *_gateway_trunk("secure", ports[0], **verified, pin_sha256=digest),
        *_gateway_trunk("mispinned", ports[1], pin_sha256="ab" * 32),
        *_gateway_trunk("untrusted", ports[2], verify_server=True, name="carrier.example"),
    ]
    path = append_lines(config.write(), lines)
    try:
        with SwitchProcess(path, port=config.port):
            yield pki, gateways
    finally:
        for gateway in (gateways.secure, gateways.mispinned, gateways.untrusted):
            gateway.close()


@pytest.fixture(scope="module")
def pki(switch: tuple[Pki, Gateways]) -> Pki:
    return switch[0]


def _options(
    port: int, source: str, cert: tuple[Path, Path] | None = None, scheme: str = "sip"
) -> int | None:
    """One OPTIONS over a new TLS connection from ``source``: the answer's status, or None
    when the switch closed the connection (or the handshake failed) instead."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test trusts the switch; the switch checks us
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    try:
        with context.wrap_socket(raw) as tls:
            local = tls.getsockname()
            request = (
                f"OPTIONS {scheme}:127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/TLS {local[0]}:{local[1]};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:probe@{source}>;tag=t1\r\n"
                f"To: <sip:127.0.0.1:{port}>\r\nCall-ID: {uuid.uuid4().hex}\r\n"
                "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            tls.sendall(request.encode())
            data = tls.recv(65535)
    except (ssl.SSLError, OSError):
        return None
    finally:
        raw.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"SIP/2.0 ") else None


def test_the_trunks_certificate_is_accepted(pki: Pki) -> None:
    assert _options(pki.port, "127.0.0.2", pki.good) == 200
    assert _options(pki.port, "127.0.0.3", pki.other) == 200  # CA from [security]


@pytest.mark.parametrize("which", ["none", "wrong_ca", "wrong_name"])
def test_a_trunk_address_without_the_trunks_certificate_is_refused(pki: Pki, which: str) -> None:
    cert = None if which == "none" else getattr(pki, which)
    assert _options(pki.port, "127.0.0.2", cert) is None
    reason = {
        "none": "no verified client certificate",
        "wrong_ca": "not issued by the trunk's CA",  # CA B is trusted, for the other trunk
        "wrong_name": "does not name carrier.example",
    }
    assert reason[which] in pki.log.read_text()


def test_phones_elsewhere_connect_without_a_certificate(pki: Pki) -> None:
    assert _options(pki.port, "127.0.0.1") == 200


def test_outbound_tls_presents_our_certificate_and_checks_the_gateways(
    switch: tuple[Pki, Gateways],
) -> None:
    pki, gateways = switch
    secure, mispinned, untrusted = gateways.secure, gateways.mispinned, gateways.untrusted
    assert secure.wait(lambda: any(data for _, data in secure.received))
    peer, data = next((peer, data) for peer, data in secure.received if data)
    assert data.startswith(b"REGISTER sip:")
    assert peer is not None and (("commonName", "127.0.0.1"),) in peer["subject"]
    # the other two were tried, and never got a message
    assert mispinned.wait(lambda: mispinned.attempts > 0)
    assert untrusted.wait(lambda: untrusted.attempts > 0)
    assert not any(data for _, data in mispinned.received + untrusted.received)
    assert "trunk_tls_pin_mismatch" in pki.log.read_text()


def test_a_sips_request_in_clear_gets_480_sips_required_and_over_tls_is_served(
    pki: Pki,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(5)
        local = udp.getsockname()[1]
        request = (
            f"OPTIONS sips:127.0.0.1:{pki.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sips:probe@127.0.0.1>;tag=t1\r\n"
            f"To: <sips:127.0.0.1:{pki.sip_port}>\r\nCall-ID: {uuid.uuid4().hex}\r\n"
            "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        udp.sendto(request.encode(), ("127.0.0.1", pki.sip_port))
        answer = udp.recv(65535).decode()
    assert answer.startswith("SIP/2.0 480 ")
    assert '381 127.0.0.1 "SIPS Required"' in answer
    assert _options(pki.port, "127.0.0.1", scheme="sips") == 200
