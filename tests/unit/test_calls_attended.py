"""Attended transfer (REFER with Replaces) through the call layer, without sockets: the
caller 100 (A) talks with 102 (B) and with 200 (C), then joins B and C."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from config.media import MediaSettings
from media.engine import EngineSettings, MediaEngine
from softswitch.calls.anchor import MediaAnchor
from softswitch.sip.address import Address
from softswitch.sip.headers import parse_name_addr
from softswitch.sip.message import SipRequest, SipResponse, make_response
from tests.unit.callkit import CALLER, SDP, Net, answer, place_call

B_SDP = SDP.replace(b"198.51.100.1", b"203.0.113.1")
C_SDP = SDP.replace(b"198.51.100.1", b"203.0.113.9")


@pytest.fixture
def net() -> Net:
    return Net()


def _from_a(final: SipResponse, method: str, cseq: int, *extra: tuple[str, str]) -> SipRequest:
    """A request of A (the caller) in the dialog the switch's ``final`` 200 confirmed."""
    call_id = final.call_id or ""
    return SipRequest(
        method,
        "sip:192.0.2.1:5060",
        [
            ("Via", f"SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK{method}{cseq}{call_id}"),
            ("Max-Forwards", "70"),
            ("From", '"Alice" <sip:100@pbx.test>;tag=alice'),
            ("To", final.get("To") or ""),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            *extra,
        ],
    )


def _call(net: Net, dialled: str, call_id: str, phone: Address, tag: str) -> SipResponse:
    """A calls ``dialled``; the phone answers; A ACKs. Returns the switch's 200 to A."""
    place_call(net, dialled, call_id=call_id)
    (request,) = net.requests(phone, "INVITE")
    answer(net, request, 200, phone, tag, B_SDP if tag == "b" else C_SDP)
    final = next(
        m
        for m in net.take(CALLER)
        if isinstance(m, SipResponse) and m.status == 200 and m.call_id == call_id
    )
    net.deliver(_from_a(final, "ACK", 2), CALLER)
    net.take()
    return final


def _replaces(final: SipResponse) -> str:
    """Refer-To naming the dialog of ``final`` as A sees it (to-tag: the switch's tag)."""
    to_tag = parse_name_addr(final.get("To") or "").params["tag"]
    value = f"{final.call_id};to-tag={to_tag};from-tag=alice"
    return f"<sip:200@pbx.test?Replaces={quote(value, safe='')}>"


def _transfer(net: Net) -> tuple[Address, Address]:
    b = net.register("102", "203.0.113.1")
    c = net.register("200", "203.0.113.9")
    first = _call(net, "102", "call-1", b, "b")
    second = _call(net, "200", "call-2", c, "c")
    net.deliver(_from_a(first, "REFER", 3, ("Refer-To", _replaces(second))), CALLER)
    return b, c


def test_a_refer_with_replaces_joins_the_other_parties(net: Net) -> None:
    b, c = _transfer(net)
    to_a = net.take(CALLER)
    assert [m.status for m in to_a if isinstance(m, SipResponse)] == [202]
    (notify,) = [m for m in to_a if isinstance(m, SipRequest) and m.method == "NOTIFY"]
    assert notify.body.strip() == b"SIP/2.0 200 OK" and notify.call_id == "call-1"
    byes = [m for m in to_a if isinstance(m, SipRequest) and m.method == "BYE"]
    assert sorted(m.call_id or "" for m in byes) == ["call-1", "call-2"]  # A is gone
    # Pass-through: C is asked for an offer, which B gets; B's answer goes to C's ACK.
    (ask,) = net.requests(c, "INVITE")
    assert ask.body == b""
    reply = make_response(ask, 200, body=C_SDP)
    reply.add("Content-Type", "application/sdp")
    net.deliver(reply, c)
    (offer,) = net.requests(b, "INVITE")
    assert offer.body == C_SDP
    reply = make_response(offer, 200, body=B_SDP)
    reply.add("Content-Type", "application/sdp")
    net.deliver(reply, b)
    assert len(net.requests(b, "ACK")) == 1
    (ack,) = net.requests(c, "ACK")
    assert ack.body == B_SDP
    # A's two calls are over, their CDRs tell who went where.
    first, second = net.cdrs
    for cdr in (first, second):
        (leg,) = cdr.legs
        assert leg["transfer"]["kind"] == "attended"
        assert (leg["transfer"]["by"], leg["transfer"]["transferee"], leg["transfer"]["to"]) == (
            "100",
            "102",
            "200",
        )
    # B hanging up ends the joined call at C.
    bye = SipRequest(
        "BYE",
        "sip:192.0.2.1:5060",
        [
            ("Via", "SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKbyeb"),
            ("From", f"{offer.get('To')}"),
            ("To", offer.get("From") or ""),
            ("Call-ID", offer.call_id or ""),
            ("CSeq", "9 BYE"),
            ("Max-Forwards", "70"),
        ],
    )
    net.deliver(bye, b)
    assert len(net.requests(c, "BYE")) == 1
    joined = net.cdrs[-1]
    assert (joined.caller_number, joined.destination, joined.disposition) == (
        "102",
        "200",
        "ANSWERED",
    )
    assert joined.legs[0]["transfer"]["call"] == joined.call_id
    assert len(net.mgr) == 0 and net.mgr.dialog_count == 0


def test_a_replaces_naming_no_dialog_of_the_switch_is_refused(net: Net) -> None:
    b = net.register("102", "203.0.113.1")
    first = _call(net, "102", "call-1", b, "b")
    refer_to = "<sip:200@pbx.test?Replaces=nope%3Bto-tag%3Dx%3Bfrom-tag%3Dy>"
    net.deliver(_from_a(first, "REFER", 3, ("Refer-To", refer_to)), CALLER)
    assert [m.status for m in net.take(CALLER) if isinstance(m, SipResponse)] == [481]
    assert not net.requests(b, "BYE")  # call 1 goes on


def test_a_broken_replaces_is_a_400(net: Net) -> None:
    b = net.register("102", "203.0.113.1")
    first = _call(net, "102", "call-1", b, "b")
    refer_to = "<sip:200@pbx.test?Replaces=nope%3Bto-tag%3Dx>"
    net.deliver(_from_a(first, "REFER", 3, ("Refer-To", refer_to)), CALLER)
    assert [m.status for m in net.take(CALLER) if isinstance(m, SipResponse)] == [400]


def test_anchored_the_endpoints_of_b_and_c_are_bridged_without_reinvites() -> None:
    engine = MediaEngine(EngineSettings(address="127.0.0.1", port_min=41000, port_max=41999))
    try:
        net = Net(anchor=MediaAnchor(engine, MediaSettings(address="127.0.0.1")))
        b, c = _transfer(net)
        to_a = net.take(CALLER)
        assert [m.status for m in to_a if isinstance(m, SipResponse)] == [202]
        assert sum(1 for m in to_a if isinstance(m, SipRequest) and m.method == "BYE") == 2
        assert not net.requests(b, "INVITE") and not net.requests(c, "INVITE")
        (joined,) = net.mgr.calls.values()
        transferee, target = joined.inbound, joined.winner
        assert target is not None and transferee.media is not None
        assert transferee.media.peer is target.media  # type: ignore[attr-defined]
        assert len(net.cdrs) == 2  # A's calls; their endpoints of A are released
        assert len(engine._endpoints) == 2
    finally:
        asyncio.run(engine.close())


def test_a_dialog_of_another_tenant_cannot_be_named() -> None:
    net = Net()
    b = net.register("102", "203.0.113.1")
    c = net.register("200", "203.0.113.9")
    first = _call(net, "102", "call-1", b, "b")
    second = _call(net, "200", "call-2", c, "c")
    (other,) = [call for call in net.mgr.calls.values() if call.inbound.call_id == "call-2"]
    other.tenant = "elsewhere"  # as if call 2 were a call of another tenant
    net.deliver(_from_a(first, "REFER", 3, ("Refer-To", _replaces(second))), CALLER)
    assert [m.status for m in net.take(CALLER) if isinstance(m, SipResponse)] == [481]
    assert not net.requests(b, "BYE") and not net.requests(c, "BYE")
