"""Mutual TLS for carrier trunks (``config.security_tls``): which inbound TLS connections
must carry a client certificate, and whether the one presented belongs to the trunk.

The listeners' context asks every client for a certificate (``CERT_OPTIONAL``: phones
without one still connect) and trusts the union of the trunks' CAs; OpenSSL checks the
chain and validity during the handshake. Once a connection is up, the transport asks
:meth:`TrunkCertificates.admit` about it: a connection from a trunk's address that
requires a certificate is kept only when the peer's certificate was issued directly by
one of *that trunk's* CAs and names the trunk (subject CN or subjectAltName).

Outbound, :class:`GatewayTls` gives the transport the context for a connection to one of
the trunks' TLS gateways (the switch's certificate presented, the gateway's checked when
the trunk says so) and the pin check made once the handshake is done.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from config.models import Tenant
from config.security_tls import TrunkTls
from softswitch.sip.transport import client_ssl_context

__all__ = ["GatewayTls", "TlsClient", "TrunkCertificates", "certificate_names"]

#: What the transport needs to open a TLS connection to a gateway: the context, the name
#: to send (SNI) and check, and the check of the connected peer (the pin).
TlsClient = tuple[ssl.SSLContext, str | None, Callable[[Any], bool]]

log = structlog.get_logger(__name__)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Name = tuple[tuple[tuple[str, str], ...], ...]  # ssl's decoded distinguished name


@dataclass(frozen=True, slots=True)
class _Rule:
    trunk: str
    networks: tuple[_Network, ...]
    name: str
    issuers: frozenset[_Name]  # subjects of the trunk's CA certificates


def _subjects(ca_file: Path) -> frozenset[_Name]:
    """The subjects of the CA certificates in a PEM file (raises ssl.SSLError/OSError)."""
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    scratch.load_verify_locations(cafile=str(ca_file))
    ca_certs: list[dict[str, Any]] = scratch.get_ca_certs()
    return frozenset(cert["subject"] for cert in ca_certs)


def certificate_names(cert: dict[str, Any]) -> set[str]:
    """Every name a decoded peer certificate carries: subject CN, DNS and IP SANs."""
    names = {
        value.lower()
        for rdn in cert.get("subject", ())
        for key, value in rdn
        if key == "commonName"
    }
    for kind, value in cert.get("subjectAltName", ()):
        if kind in ("DNS", "IP Address"):
            names.add(value.lower())
    return names


class TrunkCertificates:
    """The trunks that require client certificates, and the check of one connection."""

    def __init__(self, tenants: Iterable[Tenant], default_ca: Path | None = None) -> None:
        rules: list[_Rule] = []
        ca_files: list[Path] = []
        for tenant in tenants:
            for trunk in tenant.trunks:
                tls = trunk.tls
                if not tls.require_client_certificate:
                    continue
                where = f"tenants.{tenant.name}.trunks.{trunk.name}.tls"
                ca = tls.ca_file or default_ca
                if ca is None:
                    raise ValueError(
                        f"{where}.ca_file: a client certificate is required but no CA is set "
                        "(here or [security] trunk_ca_file)"
                    )
                if not trunk.inbound_addresses:
                    raise ValueError(
                        f"{where}.require_client_certificate: the trunk has no "
                        "inbound_addresses to require it from"
                    )
                try:
                    issuers = _subjects(ca)
                except (OSError, ssl.SSLError) as error:
                    raise ValueError(f"{where}.ca_file: {ca}: {error}") from None
                assert tls.name is not None  # TrunkTls checks it
                rules.append(_Rule(trunk.name, tuple(trunk.networks()), tls.name.lower(), issuers))
                if ca not in ca_files:
                    ca_files.append(ca)
        self._rules = rules
        self.ca_files = ca_files

    @property
    def active(self) -> bool:
        """Whether any trunk requires a client certificate."""
        return bool(self._rules)

    def configure(self, context: ssl.SSLContext) -> None:
        """Make a listeners' server context ask for client certificates and trust the
        trunks' CAs (phones without a certificate still connect)."""
        if not self._rules:
            return
        for ca in self.ca_files:
            context.load_verify_locations(cafile=str(ca))
        context.verify_mode = ssl.CERT_OPTIONAL

    def _rule_for(self, host: str) -> _Rule | None:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return None
        for rule in self._rules:
            if any(address in network for network in rule.networks):
                return rule
        return None

    def admit(self, host: str, ssl_object: Any) -> bool:
        """Whether an inbound TLS connection from ``host`` may stay open (its handshake
        done; ``ssl_object`` is the connection's ``ssl.SSLObject``)."""
        rule = self._rule_for(host)
        if rule is None:
            return True
        cert = ssl_object.getpeercert() if ssl_object is not None else None
        reason = ""
        if not cert:
            reason = "no verified client certificate"
        elif cert.get("issuer") not in rule.issuers:
            reason = "certificate not issued by the trunk's CA"
        elif rule.name not in certificate_names(cert):
            reason = f"certificate does not name {rule.name}"
        if reason:
            log.warning("trunk_tls_refused", trunk=rule.trunk, source=host, reason=reason)
            return False
        return True


class _Pin:
    """The pin check of one trunk's gateways (a callable, so the transport stays unaware)."""

    __slots__ = ("digest", "trunk")

    def __init__(self, trunk: str, digest: str | None) -> None:
        self.trunk = trunk
        self.digest = digest

    def __call__(self, ssl_object: Any) -> bool:
        if self.digest is None:
            return True
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der and hashlib.sha256(der).hexdigest() == self.digest:
            return True
        log.warning("trunk_tls_pin_mismatch", trunk=self.trunk)
        return False


class GatewayTls:
    """TLS towards the trunks' gateways: one client context per trunk."""

    def __init__(
        self,
        tenants: Iterable[Tenant],
        certificate: Path | None = None,
        private_key: Path | None = None,
        default_ca: Path | None = None,
    ) -> None:
        self._clients: dict[tuple[str, int], TlsClient] = {}
        for tenant in tenants:
            for trunk in tenant.trunks:
                gateways = [g for g in trunk.gateways if g.transport == "tls"]
                if not gateways:
                    continue
                where = f"tenants.{tenant.name}.trunks.{trunk.name}.tls"
                try:
                    context = self._context(trunk.tls, certificate, private_key, default_ca)
                except (OSError, ssl.SSLError) as error:
                    raise ValueError(f"{where}: {error}") from None
                pin = _Pin(trunk.name, trunk.tls.pin_sha256)
                for gateway in gateways:
                    name = (trunk.tls.name or gateway.host) if trunk.tls.verify_server else None
                    self._clients[(gateway.host, gateway.port)] = (context, name, pin)

    @staticmethod
    def _context(
        tls: TrunkTls, certificate: Path | None, key: Path | None, default_ca: Path | None
    ) -> ssl.SSLContext:
        ca = tls.ca_file or default_ca
        context = client_ssl_context(
            verify=tls.verify_server, cafile=str(ca) if ca is not None else None
        )
        if certificate is not None:
            context.load_cert_chain(str(certificate), str(key) if key is not None else None)
        return context

    def client_for(self, host: str, port: int) -> TlsClient | None:
        """The TLS client set-up for a connection to ``host``:``port`` when it is a
        trunk's gateway (None: the transport's default context)."""
        return self._clients.get((host.lower(), port))
