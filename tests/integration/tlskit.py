"""Throwaway TLS material for tests (a self-signed certificate, a CA and certificates it
issues, made with the openssl CLI) and a TLS server standing in for a carrier's gateway."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def self_signed(directory: Path, name: str = "cert") -> tuple[Path, Path]:
    """A self-signed RSA certificate for 127.0.0.1 (CN and subjectAltName) valid two days,
    and its key: ``directory/<name>.pem`` and ``directory/<name>.key``."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2")


def certificate_authority(directory: Path, name: str) -> tuple[Path, Path]:
    """A throwaway CA (subject ``CN=<name>``): ``directory/<name>-ca.pem`` and its key."""
    cert, key = directory / f"{name}-ca.pem", directory / f"{name}-ca.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", *_EC, "-subj", f"/CN={name}"),
            *("-addext", "basicConstraints=critical,CA:TRUE"),
            *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def issued(directory: Path, ca: tuple[Path, Path], name: str, file: str) -> tuple[Path, Path]:
    """A certificate for ``name`` (CN and DNS subjectAltName) signed by ``ca``:
    ``directory/<file>.pem`` and ``directory/<file>.key``."""
    cert, key = directory / f"{file}.pem", directory / f"{file}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-CA", str(ca[0]), "-CAkey", str(ca[1]), *_EC),
            *("-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:FALSE"),
            *("-addext", f"subjectAltName=DNS:{name}"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class TlsGateway:
    """A TLS server on 127.0.0.1 standing in for a carrier's gateway: accepts connections
    for ``seconds`` (in a thread) and keeps, per handshake that completed, the client's
    certificate (checked against ``client_ca``) and the first bytes it sent."""

    def __init__(
        self, cert: tuple[Path, Path], client_ca: Path, port: int, seconds: float = 20.0
    ) -> None:
        self.received: list[tuple[dict[str, Any] | None, bytes]] = []
        self.attempts = 0  # connections accepted, handshake or not
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(str(cert[0]), str(cert[1]))
        self._context.load_verify_locations(cafile=str(client_ca))
        self._context.verify_mode = ssl.CERT_OPTIONAL
        self._server = socket.create_server(("127.0.0.1", port))
        self._server.settimeout(0.5)
        self._deadline = time.monotonic() + seconds
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while time.monotonic() < self._deadline:
            try:
                raw, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.attempts += 1
            raw.settimeout(3)
            try:
                with self._context.wrap_socket(raw, server_side=True) as tls:
                    peer = tls.getpeercert()
                    try:
                        data = tls.recv(65535)
                    except (OSError, ssl.SSLError):
                        data = b""
                    self.received.append((peer or None, data))
            except (OSError, ssl.SSLError):
                raw.close()

    def wait(self, predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
        deadline = time.monotonic() + seconds
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.1)
        return predicate()

    def close(self) -> None:
        self._deadline = 0.0
        self._server.close()
        self._thread.join(timeout=5)
