"""SRTP policy per tenant, user and trunk (issue 19): the configuration's checks, which
policy governs which leg, and the outcome of each leg's offer/answer in the call layer
with a real (unclocked) media engine, driven without SIP sockets as in test_calls_anchored."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from config.media import MediaSettings
from config.models import SwitchConfig, Tenant
from config.trunks import Trunk
from media.engine import EngineSettings, MediaEngine
from media.sdp import parse_sdp
from softswitch.calls.anchor import MediaAnchor
from softswitch.provisioning.model import assemble_tenant, split_tenant
from softswitch.security.media_policy import phone_policy, trunk_policy
from softswitch.sip.address import Address
from softswitch.sip.auth import build_authorization
from softswitch.sip.message import SipResponse
from tests.unit.callkit import CALLER, SDP, Net, invite

KEY = "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
CRYPTO_AVP = SDP + f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 {KEY}\r\n".encode()
CRYPTO_SAVP = CRYPTO_AVP.replace(b"RTP/AVP", b"RTP/SAVP")
TRUNK = {
    "name": "carrier",
    "caller_id": "+14155550100",
    "gateways": [{"host": "192.0.2.70"}],
}
GATEWAY = Address("UDP", "192.0.2.70", 5060)
PHONE = "203.0.113.1"


@pytest.fixture
def engine() -> Iterator[MediaEngine]:
    engine = MediaEngine(EngineSettings(address="127.0.0.1", port_min=43000, port_max=43999))
    yield engine
    asyncio.run(engine.close())


def _net(engine: MediaEngine, **settings: Any) -> Net:
    return Net(anchor=MediaAnchor(engine, MediaSettings(address="127.0.0.1")), **settings)


def _call(net: Net, body: bytes, dialled: str = "102") -> list[int]:
    """User 100 calls ``dialled`` offering ``body``; the statuses the caller got."""
    challenge = net.mgr.auth.challenge("pbx.test")[0]
    uri = f"sip:{dialled}@pbx.test"
    request = invite(dialled, 2, build_authorization(challenge, "INVITE", uri, "100", "pw100"))
    request.body = body
    net.deliver(request, CALLER)
    return net.statuses()


def _media(body: bytes) -> tuple[str, list[str]]:
    """The proto and the a=crypto values of an SDP body's audio stream."""
    m = parse_sdp(body).media[0]
    return m.proto, m.attribute_values("crypto")


def _answer_of(net: Net, status: int = 200) -> SipResponse | None:
    for message in net.take(CALLER):
        if isinstance(message, SipResponse) and message.status == status:
            return message
    return None


# ------------------------------------------------------------------ configuration
@pytest.mark.parametrize(
    ("where", "loc"),
    [
        ({"srtp": "mandatory"}, ("tenants", 0, "srtp")),
        ({"users": [{"extension": "100", "srtp": "yes"}]}, ("tenants", 0, "users", 0, "srtp")),
        ({"trunks": [{**TRUNK, "srtp": "on"}]}, ("tenants", 0, "trunks", 0, "srtp")),
    ],
)
def test_a_policy_outside_off_optional_required_is_refused_by_name(
    where: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    tenant = {"name": "t", "domain": "pbx.test", **where}
    with pytest.raises(ValidationError) as error:
        SwitchConfig.model_validate({"tenants": [tenant]})
    (problem,) = error.value.errors()
    assert problem["loc"] == loc
    assert "'off', 'optional' or 'required'" in problem["msg"]


def test_policy_of_each_leg() -> None:
    tenant = Tenant.model_validate(
        {
            "name": "t",
            "domain": "pbx.test",
            "srtp": "required",
            "users": [
                {"extension": "100", "password": "a"},
                {"extension": "101", "password": "b", "srtp": "off"},
            ],
            "trunks": [TRUNK, {**TRUNK, "name": "secure", "srtp": "required"}],
        }
    )
    assert phone_policy(tenant, "100") == "required"  # the tenant's
    assert phone_policy(tenant, "101") == "off"  # the user's own
    assert phone_policy(tenant, "999") == "required"  # no such user: the tenant's
    assert trunk_policy(tenant, "carrier") == "optional"  # the default
    assert trunk_policy(tenant, "secure") == "required"
    assert phone_policy(None, "100") == trunk_policy(None, "x") == "optional"
    assert Trunk.model_validate(TRUNK).srtp == "optional"


# ------------------------------------------------------------------ the caller's leg
def test_required_refuses_a_plain_offer_with_488_before_any_leg(engine: MediaEngine) -> None:
    net = _net(engine, srtp="required")
    phone = net.register("102", PHONE)
    assert 488 in _call(net, SDP)
    assert net.requests(phone, "INVITE") == []
    assert engine.stats().endpoints == 0
    (cdr,) = net.cdrs
    assert (cdr.disposition, cdr.sip_code) == ("FAILED", 488)


@pytest.mark.parametrize("offer", [CRYPTO_AVP, CRYPTO_SAVP])
def test_required_answers_keys_and_offers_only_savp_to_the_callee(
    engine: MediaEngine, offer: bytes
) -> None:
    net = _net(engine, srtp="required")
    phone = net.register("102", PHONE)
    _call(net, offer)
    (out,) = net.requests(phone, "INVITE")
    proto, crypto = _media(out.body)
    assert proto == "RTP/SAVP" and len(crypto) == 2  # both suites, keys of our own
    assert all(KEY not in line for line in crypto)
    (call,) = net.mgr.calls.values()
    assert call.inbound.media is not None and call.inbound.media.srtp_policy == "required"


def test_off_never_offers_nor_answers_keys(engine: MediaEngine) -> None:
    net = _net(engine, srtp="off")
    phone = net.register("102", PHONE)
    _call(net, CRYPTO_AVP)  # best-effort keys: answered plain
    (out,) = net.requests(phone, "INVITE")
    assert _media(out.body) == ("RTP/AVP", [])
    net2 = _net(engine, srtp="off")
    assert 488 in _call(net2, CRYPTO_SAVP)  # insists on SRTP: refused


def test_optional_answers_keys_when_offered_and_offers_them_best_effort(
    engine: MediaEngine,
) -> None:
    net = _net(engine)
    phone = net.register("102", PHONE)
    _call(net, SDP)  # a plain caller stays plain
    (out,) = net.requests(phone, "INVITE")
    proto, crypto = _media(out.body)
    assert proto == "RTP/AVP" and len(crypto) == 2
    (call,) = net.mgr.calls.values()
    assert call.inbound.media is not None and call.inbound.media.srtp_policy == "optional"


def test_a_users_own_policy_overrides_the_tenants_on_its_legs(engine: MediaEngine) -> None:
    users = [{"extension": e, "password": f"pw{e}"} for e in ("100", "200")]
    users.append({"extension": "102", "password": "pw102", "srtp": "off"})
    net = _net(engine, srtp="required", users=users)
    phone = net.register("102", PHONE)
    _call(net, CRYPTO_SAVP)  # 100 follows the tenant: required, and its offer has keys
    (out,) = net.requests(phone, "INVITE")
    assert _media(out.body) == ("RTP/AVP", [])  # 102's leg: off


# ------------------------------------------------------------------ trunk legs
@pytest.mark.parametrize(
    ("trunk_policy_", "proto", "keys"),
    [("required", "RTP/SAVP", 2), ("off", "RTP/AVP", 0), ("optional", "RTP/AVP", 2)],
)
def test_the_trunk_leg_follows_the_trunks_policy_not_the_tenants(
    engine: MediaEngine, trunk_policy_: str, proto: str, keys: int
) -> None:
    tenant_policy = "off" if trunk_policy_ == "required" else "required"
    caller_offer = SDP if tenant_policy == "off" else CRYPTO_SAVP
    net = _net(engine, srtp=tenant_policy, trunks=[{**TRUNK, "srtp": trunk_policy_}])
    _call(net, caller_offer, "+16505550123")
    (out,) = net.requests(GATEWAY, "INVITE")
    got_proto, crypto = _media(out.body)
    assert (got_proto, len(crypto)) == (proto, keys)


def test_a_trunk_requiring_srtp_that_answers_plain_gets_no_media(engine: MediaEngine) -> None:
    net = _net(engine, trunks=[{**TRUNK, "srtp": "required"}])
    _call(net, SDP, "+16505550123")
    assert len(net.requests(GATEWAY, "INVITE")) == 1
    (call,) = net.mgr.calls.values()
    (leg,) = call.outbound
    anchor = MediaAnchor.__new__(MediaAnchor)  # remote_answer reads only the leg
    assert not anchor.remote_answer(leg, SDP)  # a plain answer to our RTP/SAVP offer
    assert leg.media is not None and leg.media.srtp is None and leg.media.stream is None


def test_the_provisioning_model_keeps_the_policies() -> None:
    """One schema: the Store's documents (and so the API) carry the same keys."""
    tenant = Tenant.model_validate(
        {
            "name": "t",
            "domain": "pbx.test",
            "srtp": "off",
            "users": [{"extension": "100", "password": "a", "srtp": "required"}],
            "trunks": [{**TRUNK, "srtp": "required"}],
        }
    )
    again = Tenant.model_validate(assemble_tenant(split_tenant(tenant)))
    assert (again.srtp, again.users[0].srtp, again.trunks[0].srtp) == (
        "off",
        "required",
        "required",
    )
