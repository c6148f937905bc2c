"""Mutual TLS for carrier trunks (``[tenants.trunks.tls]``).

A trunk with ``require_client_certificate`` must present, on every TLS connection from one
of its ``inbound_addresses``, a certificate that a CA trusts (the trunk's ``ca_file``,
else ``[security] trunk_ca_file``), issued directly by that CA, and whose subject common
name or a DNS/IP subject alternative name equals ``name``; any other TLS connection from
those addresses is closed before a message is read.

Outbound, the switch presents its own certificate (``[sip] tls_certificate``) to the
trunk's TLS gateways; with ``verify_server`` it checks the gateway's certificate against
``ca_file`` (else the system's CAs) and ``name`` (else the gateway's host), and with
``pin_sha256`` the gateway's certificate must have that SHA-256 fingerprint.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["TrunkTls"]


class TrunkTls(BaseModel):
    """TLS checks on one trunk's connections (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    require_client_certificate: bool = False
    # The name the trunk's certificate must carry (subject CN or a subjectAltName).
    name: str | None = Field(default=None, min_length=1, max_length=253)
    ca_file: Path | None = None  # PEM CA certificate(s); else [security] trunk_ca_file
    verify_server: bool = False
    pin_sha256: str | None = None  # hex, colons allowed: the gateway certificate's digest

    @field_validator("pin_sha256")
    @classmethod
    def _pin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace(":", "").strip().lower()
        if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
            raise ValueError("must be a SHA-256 fingerprint: 64 hex digits (colons allowed)")
        return digits

    @model_validator(mode="after")
    def _named(self) -> TrunkTls:
        if self.require_client_certificate and self.name is None:
            raise ValueError("require_client_certificate = true needs name")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file {str(self.ca_file)!r} is not a readable file")
        return self
