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
