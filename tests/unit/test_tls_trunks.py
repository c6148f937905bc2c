"""Mutual TLS for trunks: the configuration's checks and which names a certificate carries
(the handshakes themselves are in tests/integration/test_tls_trunks.py)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from config.models import SwitchConfig
from config.security import SecuritySettings
from softswitch.sip.tls_trunks import GatewayTls, TrunkCertificates, certificate_names


def _config(tls: dict[str, Any], **trunk: Any) -> SwitchConfig:
    carrier = {"name": "carrier", "gateways": [{"host": "192.0.2.7"}], **trunk, "tls": tls}
    tenant = {"name": "t", "domain": "pbx.test", "trunks": [carrier]}
    return SwitchConfig.model_validate({"tenants": [tenant]})


def test_requiring_a_certificate_needs_the_name_it_must_carry() -> None:
    with pytest.raises(ValidationError) as error:
        _config({"require_client_certificate": True})
    (problem,) = error.value.errors()
    assert problem["loc"] == ("tenants", 0, "trunks", 0, "tls")
    assert "needs name" in problem["msg"]


def test_a_missing_ca_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"ca_file .* is not a readable file"):
        _config({"ca_file": str(tmp_path / "nope.pem")})
    with pytest.raises(ValidationError, match="trunk_ca_file"):
        SecuritySettings(trunk_ca_file=tmp_path / "nope.pem")


def test_a_required_certificate_needs_a_ca_and_addresses() -> None:
    tls = {"require_client_certificate": True, "name": "carrier.example"}
    config = _config(tls, inbound_addresses=["192.0.2.0/28"])
    with pytest.raises(ValueError, match=r"tenants\.t\.trunks\.carrier\.tls\.ca_file"):
        TrunkCertificates(config.tenants)
    config = _config(tls)
    with pytest.raises(ValueError, match="no inbound_addresses"):
        TrunkCertificates(config.tenants, Path(__file__))


def test_trunks_without_the_requirement_leave_tls_as_it_was() -> None:
    certificates = TrunkCertificates(_config({}).tenants)
    assert not certificates.active
    assert certificates.admit("192.0.2.7", None)


def test_certificate_names() -> None:
    cert = {
        "subject": ((("countryName", "US"),), (("commonName", "Carrier.Example"),)),
        "subjectAltName": (("DNS", "sip.carrier.example"), ("IP Address", "192.0.2.7")),
    }
    assert certificate_names(cert) == {"carrier.example", "sip.carrier.example", "192.0.2.7"}


def test_a_pin_is_64_hex_digits_and_colons_are_dropped() -> None:
    pin = ":".join(["AB"] * 32)
    (tenant,) = _config({"pin_sha256": pin}).tenants
    assert tenant.trunks[0].tls.pin_sha256 == "ab" * 32
    with pytest.raises(ValidationError, match="SHA-256 fingerprint"):
        _config({"pin_sha256": "abc"})


def test_only_tls_gateways_get_a_client_set_up() -> None:
    tls_gateway = {"host": "192.0.2.8", "port": 5061, "transport": "tls"}
    carrier = {
        "name": "carrier",
        "gateways": [{"host": "192.0.2.7"}, tls_gateway],
        "tls": {"verify_server": True, "name": "carrier.example"},
    }
    config = SwitchConfig.model_validate(
        {"tenants": [{"name": "t", "domain": "pbx.test", "trunks": [carrier]}]}
    )
    gateways = GatewayTls(config.tenants)
    assert gateways.client_for("192.0.2.7", 5060) is None
    chosen = gateways.client_for("192.0.2.8", 5061)
    assert chosen is not None
    context, name, _ = chosen
    assert name == "carrier.example" and context.verify_mode == ssl.CERT_REQUIRED
