"""The call layer with the toll-fraud guard, without sockets: an emergency call passes the
tenant's call limit and the switch's overload shedding and leaves by the emergency trunk
with the emergency caller ID; a refused outside call is a 403 with a Reason and no INVITE."""

from __future__ import annotations

from softswitch.security.tollfraud import TollFraudGuard
from softswitch.sip.address import Address
from softswitch.sip.message import SipResponse
from tests.unit.callkit import CALLER, Net, invite, place_call

CARRIER = Address("UDP", "203.0.113.10", 5060)
E911 = Address("UDP", "203.0.113.11", 5060)


def _net(**calling: object) -> Net:
    return Net(
        trunks=[
            {"name": "carrier", "gateways": [{"host": CARRIER.host}], "caller_id": "+14155550100"},
            {"name": "e911", "gateways": [{"host": E911.host}]},
        ],
        outbound_trunks=["carrier"],
        calling={"emergency_trunk": "e911", "emergency_caller_id": "+14155550199", **calling},
        max_calls=1,
        tollfraud=TollFraudGuard(lambda: 1000.0, {}),
    )


def _final(net: Net, call_id: str) -> SipResponse:
    return next(
        m
        for m in net.take(CALLER)
        if isinstance(m, SipResponse) and m.status >= 300 and m.call_id == call_id
    )


def test_emergency_call_passes_the_tenant_limit_and_leaves_by_the_emergency_trunk() -> None:
    net = _net()
    place_call(net, "+16505550123", call_id="first")  # rings the carrier: the one call allowed
    assert len(net.requests(CARRIER, "INVITE")) == 1
    net.take()
    place_call(net, "+16505550124", call_id="second")
    assert _final(net, "second").status == 503  # the tenant's limit
    place_call(net, "911", call_id="emergency")
    (sent,) = net.requests(E911, "INVITE")
    assert sent.ruri.user == "911"
    assert "<sip:+14155550199@" in (sent.get("From") or "")
    assert (sent.get("P-Asserted-Identity") or "").startswith("<sip:+14155550199@")
    assert net.requests(CARRIER, "INVITE") == []


def test_the_overload_guard_lets_emergency_calls_in() -> None:
    net = _net()
    assert net.mgr.emergency(invite("911"), CALLER)
    assert net.mgr.emergency(invite("112"), CALLER)
    assert not net.mgr.emergency(invite("102"), CALLER)
    assert not net.mgr.emergency(invite("+16505550123"), CALLER)
    # The same number dialled by a carrier is not our user's emergency call.
    trunk_net = Net(
        trunks=[
            {"name": "c", "gateways": [{"host": CARRIER.host}], "inbound_addresses": [CARRIER.host]}
        ],
        tollfraud=TollFraudGuard(lambda: 1000.0, {}),
    )
    assert not trunk_net.mgr.emergency(invite("911"), CARRIER)


def test_a_refused_outside_call_is_a_403_with_a_reason_and_sends_nothing() -> None:
    net = _net(allowed_classes=["internal", "national", "local"])
    place_call(net, "+442079460000", call_id="london")
    final = _final(net, "london")
    assert (final.status, final.reason) == (403, "International Calls Not Permitted")
    assert 'text="tenant t: calling.allowed_classes' in (final.get("Reason") or "")
    assert net.requests(CARRIER, "INVITE") == []
