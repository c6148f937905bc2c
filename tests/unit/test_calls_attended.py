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
from softswitch.sip.auth import build_authorization
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


def _invite_with_replaces(net: Net, phone: Address, replaces: str) -> SipRequest:
    """200 at ``phone`` sends an authenticated INVITE with Replaces for 102's dialog."""

    def request(cseq: int, auth: str | None) -> SipRequest:
        headers = [
            ("Via", f"SIP/2.0/UDP {phone.host}:5060;branch=z9hG4bKtakeover{cseq}"),
            ("Max-Forwards", "70"),
            ("From", "<sip:200@pbx.test>;tag=taker"),
            ("To", "<sip:102@pbx.test>"),
            ("Call-ID", "call-takeover"),
            ("CSeq", f"{cseq} INVITE"),
            ("Contact", f"<sip:200@{phone.host}:5060>"),
            ("Replaces", replaces),
            ("Content-Type", "application/sdp"),
            *([("Proxy-Authorization", auth)] if auth else []),
        ]
        return SipRequest("INVITE", "sip:102@pbx.test", headers, C_SDP)

    net.deliver(request(1, None), phone)
    challenge = next(m for m in net.take(phone) if isinstance(m, SipResponse) and m.status == 407)
    value = challenge.get("Proxy-Authenticate") or ""
    authed = request(2, build_authorization(value, "INVITE", "sip:102@pbx.test", "200", "pw200"))
    net.deliver(authed, phone)
    return authed


def test_an_invite_with_replaces_takes_over_the_named_leg(net: Net) -> None:
    b = net.register("102", "203.0.113.1")
    c = Address("UDP", "203.0.113.9", 5060)
    place_call(net, "102")
    (to_b,) = net.requests(b, "INVITE")
    answer(net, to_b, 200, b, "b", B_SDP)
    final = next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 200)
    net.deliver(_from_a(final, "ACK", 2), CALLER)
    net.take()
    ours = parse_name_addr(to_b.get("From") or "").params["tag"]
    _invite_with_replaces(net, c, f"{to_b.call_id};to-tag={ours};from-tag=b")
    # Pass-through: A gets the new phone's offer; its answer goes to the new phone.
    (reinvite,) = net.requests(CALLER, "INVITE")
    assert reinvite.body == C_SDP and reinvite.call_id == "call-1"
    reply = make_response(reinvite, 200, body=SDP)
    reply.add("Content-Type", "application/sdp")
    net.deliver(reply, CALLER)
    (ok,) = [m for m in net.take(c) if isinstance(m, SipResponse) and m.status == 200]
    assert ok.body == SDP
    assert len(net.requests(b, "BYE")) == 1  # the replaced leg is released
    (replaced,) = net.cdrs
    assert replaced.legs[0]["transfer"]["kind"] == "replaces"
    ack = SipRequest(
        "ACK",
        "sip:192.0.2.1:5060",
        [
            ("Via", "SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKtakeoverack"),
            ("Max-Forwards", "70"),
            ("From", "<sip:200@pbx.test>;tag=taker"),
            ("To", ok.get("To") or ""),
            ("Call-ID", "call-takeover"),
            ("CSeq", "2 ACK"),
        ],
    )
    net.deliver(ack, c)
    net.deliver(_from_a(final, "BYE", 9), CALLER)
    assert len(net.requests(c, "BYE")) == 1
    taken = net.cdrs[-1]
    assert (taken.caller_number, taken.destination) == ("100", "200")
    assert len(net.mgr) == 0 and net.mgr.dialog_count == 0


@pytest.mark.parametrize(
    ("replaces", "status"),
    [("nope;to-tag=x;from-tag=y", 481), ("nope;to-tag=x", 400)],
)
def test_an_invite_with_a_bad_replaces_is_refused(net: Net, replaces: str, status: int) -> None:
    c = Address("UDP", "203.0.113.9", 5060)
    _invite_with_replaces(net, c, replaces)
    assert [m.status for m in net.take(c) if isinstance(m, SipResponse)][-1] == status
    assert len(net.mgr) == 0


def test_anchored_an_invite_with_replaces_is_answered_from_the_engine() -> None:
    engine = MediaEngine(EngineSettings(address="127.0.0.1", port_min=41000, port_max=41999))
    try:
        net = Net(anchor=MediaAnchor(engine, MediaSettings(address="127.0.0.1")))
        b = net.register("102", "203.0.113.1")
        c = Address("UDP", "203.0.113.9", 5060)
        place_call(net, "102")
        (to_b,) = net.requests(b, "INVITE")
        answer(net, to_b, 200, b, "b", B_SDP)
        final = next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 200)
        net.deliver(_from_a(final, "ACK", 2), CALLER)
        net.take()
        ours = parse_name_addr(to_b.get("From") or "").params["tag"]
        _invite_with_replaces(net, c, f"{to_b.call_id};to-tag={ours};from-tag=b")
        assert not net.requests(CALLER, "INVITE")  # no re-INVITE: the endpoints are bridged
        (ok,) = [m for m in net.take(c) if isinstance(m, SipResponse) and m.status == 200]
        assert b"127.0.0.1" in ok.body
        assert len(net.requests(b, "BYE")) == 1
        (call,) = net.mgr.calls.values()
        assert call.winner is not None and call.inbound.media is not None
        assert call.inbound.media.peer is call.winner.media  # type: ignore[attr-defined]
    finally:
        asyncio.run(engine.close())
