"""Throwaway TLS material for tests: a self-signed certificate made with the openssl CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path


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
