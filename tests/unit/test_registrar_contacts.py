"""The registrar tells which REGISTER added a contact: a phone new among a user's bindings
is what message waiting lights unsolicited, and a refresh (nearly every REGISTER) must not
cost that work."""

from __future__ import annotations

from config.models import RegistrarSettings, SwitchConfig
from softswitch.directory import Directory
from softswitch.location import LocationService
from softswitch.registrar import Registrar
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator, build_authorization
from softswitch.sip.message import SipRequest, SipResponse

PHONE = Address("udp", "203.0.113.1", 5062)


def _registrar() -> Registrar:
    config = SwitchConfig.model_validate(
        {
            "tenants": [
                {
                    "name": "t",
                    "domain": "pbx.test",
                    "users": [{"extension": "102", "password": "pw102"}],
                }
            ]
        }
    )
    return Registrar(
        RegistrarSettings(),
        Directory(config, frozenset({"192.0.2.1"})),
        DigestAuthenticator(b"secret", algorithms=("MD5",)),
        LocationService(store=None),  # type: ignore[arg-type]  # never flushed
    )


def _register(registrar: Registrar, contact: str, cseq: int, expires: int = 600) -> SipResponse:
    def request(auth: str | None, number: int) -> SipRequest:
        headers = [
            ("Via", f"SIP/2.0/UDP 203.0.113.1:5062;branch=z9hG4bKreg{cseq}-{number}"),
            ("Max-Forwards", "70"),
            ("From", "<sip:102@pbx.test>;tag=reg"),
            ("To", "<sip:102@pbx.test>"),
            ("Call-ID", "reg-1"),
            ("CSeq", f"{2 * cseq + number} REGISTER"),
            ("Contact", f"<{contact}>;expires={expires}"),
        ]
        if auth:
            headers.append(("Authorization", auth))
        return SipRequest("REGISTER", "sip:pbx.test", headers)

    challenge = registrar.handle(request(None, 0), PHONE)
    assert challenge.status == 401 and registrar.contact_added is None
    value = challenge.get("WWW-Authenticate")
    assert value is not None
    auth = build_authorization(value, "REGISTER", "sip:pbx.test", "102", "pw102")
    return registrar.handle(request(auth, 1), PHONE)


def test_only_a_register_that_adds_a_contact_reports_it() -> None:
    registrar = _registrar()
    assert _register(registrar, "sip:102@203.0.113.1:5062", 1).status == 200
    added = registrar.contact_added
    assert added is not None
    subscriber, domain = added
    assert (subscriber.user.extension, domain) == ("102", "pbx.test")
    assert _register(registrar, "sip:102@203.0.113.1:5062", 2).status == 200
    assert registrar.contact_added is None  # a refresh
    assert _register(registrar, "sip:102@203.0.113.1:5064", 3).status == 200
    assert registrar.contact_added is not None  # a second phone
    assert _register(registrar, "sip:102@203.0.113.1:5064", 4, expires=0).status == 200
    assert registrar.contact_added is None  # a removal
