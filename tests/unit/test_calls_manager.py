"""The call layer driven without sockets: a transaction layer, the CallManager and a fake
clock; the tests play caller and phones by hand and read what the switch sends."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest

from softswitch.sip.address import Address
from softswitch.sip.auth import build_authorization
from softswitch.sip.message import SipRequest, SipResponse, make_response
from tests.unit.callkit import (
    CALLER,
    SDP,
    Net,
    answer,
    caller_request,
    cyclic_garbage,
    invite,
    place_call,
)


@pytest.fixture
def net() -> Net:
    return Net()


def test_sim_ring_first_answer_wins_the_rest_are_cancelled(net: Net) -> None:
    phones = [net.register("102", f"203.0.113.{i}") for i in (1, 2, 3)]
    place_call(net, "102")
    invites = [net.requests(p, "INVITE")[0] for p in phones]
    # Each leg is its own dialog: fresh Call-ID, no trace of the caller's headers.
    assert len({r.call_id for r in invites}) == 3 and "call-1" not in {r.call_id for r in invites}
    assert all(r.get("Proxy-Authorization") is None and len(r.vias) == 1 for r in invites)
    for i, (phone, request) in enumerate(zip(phones, invites, strict=True)):
        answer(net, request, 180, phone, f"ph{i}")
    assert net.statuses().count(180) == 1  # one ringback for the caller
    answer(net, invites[1], 200, phones[1], "ph1", SDP)
    final = next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 200)
    assert final.body == SDP and final.to is not None and final.to.tag
    assert [len(net.requests(p, "CANCEL")) for p in phones] == [1, 0, 1]
    assert len(net.requests(phones[1], "ACK")) == 1
    for i in (0, 2):
        answer(net, invites[i], 487, phones[i], f"ph{i}")
    ack = caller_request(net, "ACK", 2, final)
    net.deliver(ack, CALLER)
    net.advance(2.0)
    assert net.statuses().count(200) == 0  # ACKed: no 2xx retransmission
    net.deliver(caller_request(net, "BYE", 3, final), CALLER)
    assert len(net.requests(phones[1], "BYE")) == 1
    (cdr,) = net.cdrs
    assert (cdr.disposition, cdr.sip_code, cdr.destination) == ("ANSWERED", 200, "102")
    assert sorted(leg["status"] for leg in cdr.legs) == [200, 487, 487]
    assert len(net.mgr) == 0 and net.mgr.dialog_count == 0


@pytest.mark.parametrize(
    ("statuses", "caller_gets", "disposition"),
    [
        ((486, 486), 480, "BUSY"),  # busy everywhere; the voicemail fallback is not there yet
        ((603, None), 603, "BUSY"),  # 6xx ends the search at once, the other branch CANCELled
        ((404, 500), 480, "FAILED"),  # unreachable
    ],
)
def test_failed_branches(
    net: Net, statuses: tuple[int | None, ...], caller_gets: int, disposition: str
) -> None:
    phones = [net.register("102", f"203.0.113.{i}") for i in (1, 2)]
    place_call(net, "102")
    invites = [net.requests(p, "INVITE")[0] for p in phones]
    for i, (phone, request) in enumerate(zip(phones, invites, strict=True)):
        answer(net, request, 180, phone, f"ph{i}")
    for i, status in enumerate(statuses):
        if status is not None:
            answer(net, invites[i], status, phones[i], f"ph{i}")
    assert net.statuses()[-1] == caller_gets
    if None in statuses:
        assert len(net.requests(phones[statuses.index(None)], "CANCEL")) == 1
    (cdr,) = net.cdrs
    assert (cdr.disposition, cdr.sip_code) == (disposition, caller_gets)


def test_ring_time_runs_out_no_answer(net: Net) -> None:
    phone = net.register("102", "203.0.113.1")
    place_call(net, "102")
    request = net.requests(phone, "INVITE")[0]
    answer(net, request, 180, phone, "ph")
    net.advance(24.0)
    assert not net.requests(phone, "CANCEL")
    net.advance(2.0)  # the default ring time is 25 s
    assert len(net.requests(phone, "CANCEL")) == 1
    assert net.statuses()[-1] == 480
    (cdr,) = net.cdrs
    assert (cdr.disposition, cdr.q850_name) == ("NO ANSWER", "NO_ANSWER")


def test_cancel_waits_for_a_provisional_and_caller_gets_487(net: Net) -> None:
    phone = net.register("102", "203.0.113.1")
    first = place_call(net, "102")
    request = net.requests(phone, "INVITE")[0]
    cancel = SipRequest(
        "CANCEL",
        first.uri,
        [
            ("Via", first.get_all("Via")[0]),
            ("Max-Forwards", "70"),
            ("From", first.get("From") or ""),
            ("To", first.get("To") or ""),
            ("Call-ID", "call-1"),
            ("CSeq", "2 CANCEL"),
        ],
    )
    net.deliver(cancel, CALLER)
    assert net.statuses()[-2:] == [200, 487]
    assert not net.requests(phone, "CANCEL")  # RFC 3261 9.1: not before a provisional
    answer(net, request, 180, phone, "ph")
    assert len(net.requests(phone, "CANCEL")) == 1
    (cdr,) = net.cdrs
    assert (cdr.disposition, cdr.sip_code) == ("CANCELLED", 487)
    assert len(net.mgr) == 0


def test_missing_ack_retransmits_the_2xx_then_hangs_up(net: Net) -> None:
    phone = net.register("102", "203.0.113.1")
    place_call(net, "102")
    request = net.requests(phone, "INVITE")[0]
    answer(net, request, 200, phone, "ph", SDP)
    net.advance(40.0)
    assert net.statuses().count(200) >= 5  # 0.5, 1, 2, 4, 4, ... seconds apart
    assert len(net.requests(phone, "BYE")) == 1
    assert len(net.requests(CALLER, "BYE")) == 1
    (cdr,) = net.cdrs
    assert (cdr.disposition, cdr.sip_code) == ("FAILED", 408)


def test_late_2xx_is_acked_and_hung_up(net: Net) -> None:
    phones = [net.register("102", f"203.0.113.{i}") for i in (1, 2)]
    place_call(net, "102")
    invites = [net.requests(p, "INVITE")[0] for p in phones]
    for i, (phone, request) in enumerate(zip(phones, invites, strict=True)):
        answer(net, request, 180, phone, f"ph{i}")
    answer(net, invites[0], 200, phones[0], "ph0", SDP)
    answer(net, invites[1], 200, phones[1], "ph1", SDP)  # crossed our CANCEL
    assert len(net.requests(phones[1], "ACK")) == 1
    assert len(net.requests(phones[1], "BYE")) == 1
    answer(net, invites[1], 200, phones[1], "ph1", SDP)  # retransmitted: ACK again only
    acks = [
        m
        for m, d in net.out
        if isinstance(m, SipRequest) and m.method == "ACK" and d.host == phones[1].host
    ]
    assert len(acks) == 2 and acks[0].to_bytes() == acks[1].to_bytes()
    assert len(net.requests(phones[1], "BYE")) == 1


@pytest.mark.parametrize(
    ("password", "from_user", "status"),
    [
        ("wrong", "100", 403),
        ("pw100", "102", 403),  # authenticated as 100 but claims to be 102
    ],
)
def test_refused_callers(net: Net, password: str, from_user: str, status: int) -> None:
    net.register("102", "203.0.113.1")
    net.deliver(invite(from_user=from_user), CALLER)
    challenge = next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 407)
    value = challenge.get("Proxy-Authenticate")
    assert value is not None
    auth = build_authorization(value, "INVITE", "sip:102@pbx.test", "100", password)
    net.deliver(invite(cseq=2, auth=auth, from_user=from_user), CALLER)
    assert net.statuses()[-1] == status
    assert not net.cdrs and len(net.mgr) == 0


def test_offline_user_and_unknown_number(net: Net) -> None:
    place_call(net, "102")  # nobody registered
    assert net.statuses()[-1] == 480
    place_call(net, "555", call_id="call-2")
    assert net.statuses()[-1] in (404, 484)
    assert [c.disposition for c in net.cdrs] == ["FAILED", "FAILED"]


def test_forward_on_busy_rings_the_target_with_diversion() -> None:
    net = Net(
        {
            "users": {
                "102": {
                    "default_rule": {
                        "simring": {},
                        "forward": {"when_busy": {"kind": "user", "target": "200"}},
                    }
                }
            }
        }
    )
    busy = net.register("102", "203.0.113.1")
    target = net.register("200", "203.0.113.9")
    place_call(net, "102")
    answer(net, net.requests(busy, "INVITE")[0], 486, busy, "b")
    forwarded = net.requests(target, "INVITE")
    assert len(forwarded) == 1
    assert "sip:102@pbx.test" in (forwarded[0].get("Diversion") or "")
    answer(net, forwarded[0], 200, target, "t", SDP)
    assert len(net.mgr) == 1 and not net.cdrs  # answered, still up


def test_early_media_sdp_reaches_the_caller(net: Net) -> None:
    phone = net.register("102", "203.0.113.1")
    place_call(net, "102")
    answer(net, net.requests(phone, "INVITE")[0], 183, phone, "ph", SDP)
    early = [m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 183]
    assert len(early) == 1 and early[0].body == SDP
    assert early[0].get("Content-Type") == "application/sdp"


def _established(net: Net) -> tuple[Address, SipRequest, SipResponse]:
    phone = net.register("102", "203.0.113.1")
    place_call(net, "102")
    request = net.requests(phone, "INVITE")[0]
    answer(net, request, 200, phone, "ph", SDP)
    final = next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 200)
    net.deliver(caller_request(net, "ACK", 2, final), CALLER)
    net.take()
    return phone, request, final


@pytest.mark.parametrize("method", ["UPDATE", "INFO", "INVITE"])
def test_in_dialog_requests_are_relayed_with_their_answers(net: Net, method: str) -> None:
    phone, _, final = _established(net)
    request = caller_request(net, method, 3, final)
    request.body = SDP.replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n")
    request.add("Content-Type", "application/sdp")
    net.deliver(request, CALLER)
    (relayed,) = net.requests(phone, method)
    assert relayed.body == request.body and relayed.call_id != "call-1"
    assert relayed.cseq is not None and relayed.cseq[0] == 2  # the leg's own CSeq
    reply = make_response(relayed, 200, body=b"v=0\r\nreply\r\n")
    reply.add("Content-Type", "application/sdp")
    net.deliver(reply, phone)
    back = [m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status != 100]
    assert [m.status for m in back] == [200] and back[0].body == b"v=0\r\nreply\r\n"
    if method == "INVITE":
        assert len(net.requests(phone, "ACK")) == 1  # the offer was in the re-INVITE


def test_reinvite_while_one_is_pending_gets_500_or_491(net: Net) -> None:
    phone, request, final = _established(net)
    net.deliver(caller_request(net, "INVITE", 3, final), CALLER)
    assert len(net.requests(phone, "INVITE")) == 1
    # The same party again before its first re-INVITE was answered: RFC 3261 14.2, 500
    # with Retry-After (the dialog layer's answer).
    net.deliver(caller_request(net, "INVITE", 4, final), CALLER)
    assert net.statuses()[-1] == 500
    retry = [m for m, _ in net.out if isinstance(m, SipResponse) and m.status == 500]
    assert retry[-1].get("Retry-After") is not None
    # The other party meanwhile: glare across the B2BUA, 491 (14.1).
    net.deliver(_from_phone(net, request, "INVITE", 2, []), phone)
    assert net.statuses(phone)[-1] == 491


def test_out_of_order_cseq_and_unknown_dialog(net: Net) -> None:
    _, _, final = _established(net)
    net.deliver(caller_request(net, "INFO", 1, final), CALLER)
    assert net.statuses()[-1] == 500
    stray = caller_request(net, "BYE", 9, final)
    stray.set("Call-ID", "nobody")
    net.deliver(stray, CALLER)
    assert net.statuses()[-1] == 481


def test_callee_hangs_up(net: Net) -> None:
    phone, request, _ = _established(net)
    bye = SipRequest(
        "BYE",
        "sip:192.0.2.1:5060",
        [
            ("Via", "SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKbye1"),
            ("From", f"{request.get('To')};tag=ph"),
            ("To", request.get("From") or ""),
            ("Call-ID", request.call_id or ""),
            ("CSeq", "1 BYE"),
            ("Max-Forwards", "70"),
        ],
    )
    net.deliver(bye, phone)
    assert [m.status for m in net.take(phone) if isinstance(m, SipResponse)] == [200]
    (to_caller,) = net.requests(CALLER, "BYE")
    assert to_caller.call_id == "call-1" and to_caller.uri == "sip:100@198.51.100.1:5060"
    assert to_caller.to is not None and to_caller.to.tag == "alice"
    (cdr,) = net.cdrs
    assert cdr.disposition == "ANSWERED" and len(net.mgr) == 0


TRUNK = {
    "name": "carrier",
    "inbound_addresses": ["192.0.2.64/26"],
    "caller_id": "+14155550100",
    "gateways": [{"host": "192.0.2.70", "priority": 1}, {"host": "192.0.2.71", "priority": 2}],
}
GW1, GW2 = Address("UDP", "192.0.2.70", 5060), Address("UDP", "192.0.2.71", 5060)


@pytest.mark.parametrize(
    ("first", "fails_over"),
    [
        (503, True),
        (408, True),
        (500, True),
        (486, False),
        (404, False),
    ],
)
def test_outbound_failover_between_gateways(first: int, fails_over: bool) -> None:
    net = Net(trunks=[TRUNK])
    place_call(net, "+16505550123")
    (out,) = net.requests(GW1, "INVITE")
    assert out.uri == "sip:+16505550123@192.0.2.70:5060"
    assert "+14155550100" in (out.get("From") or "")  # the trunk's caller ID
    answer(net, out, first, GW1, "g1")
    assert bool(net.requests(GW2, "INVITE")) is fails_over
    if fails_over:
        answer(net, net.requests(GW2, "INVITE")[0], 200, GW2, "g2", SDP)
        assert net.statuses()[-1] == 200
    else:
        assert net.statuses()[-1] >= 400
        (cdr,) = net.cdrs
        assert (cdr.direction, cdr.trunk) == ("outbound", "carrier")


def test_gateway_timeout_fails_over() -> None:
    net = Net(trunks=[TRUNK])
    place_call(net, "+16505550123")
    assert net.requests(GW1, "INVITE") and not net.requests(GW2, "INVITE")
    net.advance(33.0)  # Timer B
    assert net.requests(GW2, "INVITE")


def _trunk_invite(number: str) -> SipRequest:
    return SipRequest(
        "INVITE",
        f"sip:{number}@192.0.2.1",
        [
            ("Via", "SIP/2.0/UDP 192.0.2.70:5060;branch=z9hG4bKtrunk1"),
            ("Max-Forwards", "70"),
            ("From", "<sip:+16505550123@carrier.test>;tag=c1"),
            ("To", f"<sip:{number}@192.0.2.1>"),
            ("Call-ID", "trunk-call-1"),
            ("CSeq", "1 INVITE"),
            ("Contact", "<sip:192.0.2.70:5060>"),
            ("Content-Type", "application/sdp"),
        ],
        SDP,
    )


def test_inbound_did_from_a_listed_trunk_rings_the_user() -> None:
    net = Net({"dids": [{"number": "+14155550100", "destination": "102"}]}, [TRUNK])
    phone = net.register("102", "203.0.113.1")
    net.deliver(_trunk_invite("+14155550100"), GW1)
    (ringing,) = net.requests(phone, "INVITE")
    assert "+16505550123" in (ringing.get("From") or "")
    answer(net, ringing, 200, phone, "ph", SDP)
    assert net.statuses(GW1)[-1] == 200


def test_inbound_from_an_unlisted_address_is_refused() -> None:
    net = Net({"dids": [{"number": "+14155550100", "destination": "102"}]}, [TRUNK])
    net.register("102", "203.0.113.1")
    stranger = Address("UDP", "198.51.100.200", 5060)
    net.deliver(_trunk_invite("+14155550100"), stranger)
    assert net.statuses(stranger) == [100, 403]
    assert len(net.mgr) == 0


def test_new_calls_per_second_limit() -> None:
    net = Net(max_calls_per_second=2.0)
    statuses = []
    for n in range(3):
        place_call(net, "102", call_id=f"cps-{n}")
        statuses.append(net.statuses()[-1])
    assert 503 not in statuses[:2] and statuses[2] == 503
    response = [m for m, _ in net.out if isinstance(m, SipResponse) and m.status == 503]
    assert response[-1].get("Retry-After") == "5"
    net.advance(1.0)
    place_call(net, "102", call_id="cps-later")
    assert net.statuses()[-1] != 503


def _timed_call(net: Net, session_expires: str) -> tuple[Address, SipResponse | None]:
    phone = net.register("102", "203.0.113.1")
    net.deliver(invite(), CALLER)
    challenge = next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 407)
    auth = build_authorization(
        challenge.get("Proxy-Authenticate") or "", "INVITE", "sip:102@pbx.test", "100", "pw100"
    )
    request = invite(cseq=2, auth=auth)
    request.add("Session-Expires", session_expires)
    request.add("Supported", "timer")
    net.deliver(request, CALLER)
    if not net.requests(phone, "INVITE"):
        return phone, None
    answer(net, net.requests(phone, "INVITE")[0], 200, phone, "ph", SDP)
    final = next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 200)
    net.deliver(caller_request(net, "ACK", 2, final), CALLER)
    return phone, final


def test_session_timer_ends_a_call_whose_refresher_went_silent(net: Net) -> None:
    phone, final = _timed_call(net, "90;refresher=uac")
    assert final is not None
    assert final.get("Session-Expires") == "90;refresher=uac"
    assert final.get("Require") == "timer"
    net.advance(45.0)
    refresh = caller_request(net, "UPDATE", 3, final)
    net.deliver(refresh, CALLER)
    (relayed,) = net.requests(phone, "UPDATE")
    net.deliver(make_response(relayed, 200), phone)
    refreshed = [m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 200]
    assert refreshed[-1].get("Session-Expires") == "90;refresher=uac"
    net.advance(59.0)  # 104 s into the call, 59 s after the refresh: still up
    assert not net.requests(phone, "BYE") and len(net.mgr) == 1
    net.advance(2.0)  # 90 - 30 s after the refresh, no new refresh: the call is torn down
    assert len(net.requests(phone, "BYE")) == 1 and len(net.requests(CALLER, "BYE")) == 1
    (cdr,) = net.cdrs
    assert (cdr.disposition, cdr.q850_name) == ("ANSWERED", "RECOVERY_ON_TIMER_EXPIRE")


def test_session_interval_too_small_gets_422(net: Net) -> None:
    _, final = _timed_call(net, "30")
    assert final is None
    response = [m for m, _ in net.out if isinstance(m, SipResponse) and m.status == 422]
    assert response and response[-1].get("Min-SE") == "90"


def _from_phone(
    net: Net, request: SipRequest, method: str, cseq: int, headers: list[tuple[str, str]]
) -> SipRequest:
    """An in-dialog request from the phone that answered ``request`` (tag "ph")."""
    return SipRequest(
        method,
        "sip:192.0.2.1:5060",
        [
            ("Via", f"SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK{method}{cseq}ph"),
            ("From", f"{request.get('To')};tag=ph"),
            ("To", request.get("From") or ""),
            ("Call-ID", request.call_id or ""),
            ("CSeq", f"{cseq} {method}"),
            ("Max-Forwards", "70"),
            *headers,
        ],
    )


def _sipfrags(net: Net, phone: Address) -> list[bytes]:
    return [m.body.strip() for m in net.requests(phone, "NOTIFY")]


def test_blind_transfer_by_refer(net: Net) -> None:
    phone, request, _ = _established(net)  # 100 calls 102; 102 transfers 100 to 200
    target = net.register("200", "203.0.113.9")
    refer = _from_phone(net, request, "REFER", 1, [("Refer-To", "<sip:200@pbx.test>")])
    net.deliver(refer, phone)
    assert [m.status for m, d in net.out if isinstance(m, SipResponse) and d == phone] == [202]
    (ringing,) = net.requests(target, "INVITE")
    assert ringing.body == b""  # no offer: the target's 200 carries it
    answer(net, ringing, 180, target, "tg")
    answer(net, ringing, 200, target, "tg", SDP.replace(b"198.51.100.1", b"203.0.113.9"))
    assert _sipfrags(net, phone) == [
        b"SIP/2.0 100 Trying",
        b"SIP/2.0 180 Ringing",
        b"SIP/2.0 200 OK",
    ]
    assert len(net.requests(phone, "BYE")) == 1  # the transferor is released
    (reinvite,) = net.requests(CALLER, "INVITE")
    assert b"203.0.113.9" in reinvite.body and reinvite.call_id == "call-1"
    reply = make_response(reinvite, 200, body=SDP)
    reply.add("Content-Type", "application/sdp")
    net.deliver(reply, CALLER)
    assert len(net.requests(CALLER, "ACK")) == 1
    (ack,) = net.requests(target, "ACK")
    assert ack.body == SDP  # the caller's answer completes the target's offer
    (first,) = net.cdrs
    assert first.disposition == "ANSWERED" and first.destination == "102"
    bye = SipRequest(
        "BYE",
        "sip:192.0.2.1:5060",
        [
            ("Via", "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKbyeafter"),
            ("From", '"Alice" <sip:100@pbx.test>;tag=alice'),
            ("To", reinvite.get("From") or ""),
            ("Call-ID", "call-1"),
            ("CSeq", "9 BYE"),
            ("Max-Forwards", "70"),
        ],
    )
    net.deliver(bye, CALLER)
    assert len(net.requests(target, "BYE")) == 1
    second = net.cdrs[-1]
    assert (second.disposition, second.dialled, second.destination) == ("ANSWERED", "200", "200")
    assert len(net.mgr) == 0 and net.mgr.dialog_count == 0


def test_failed_transfer_returns_the_transferee(net: Net) -> None:
    phone, request, _ = _established(net)
    target = net.register("200", "203.0.113.9")
    net.deliver(_from_phone(net, request, "REFER", 1, [("Refer-To", "<sip:200@pbx.test>")]), phone)
    answer(net, net.requests(target, "INVITE")[0], 486, target, "tg")
    # Busy goes to the target's busy fallback, voicemail, which is not there yet: 480.
    assert _sipfrags(net, phone)[-1] == b"SIP/2.0 480 Temporarily Unavailable"
    assert not net.requests(phone, "BYE") and not net.requests(CALLER, "BYE")
    # Still bridged: the transferor can hang up as usual.
    net.deliver(_from_phone(net, request, "BYE", 2, []), phone)
    assert len(net.requests(CALLER, "BYE")) == 1
    assert len(net.mgr) == 0


@pytest.mark.parametrize(
    ("refer_to", "status"),
    [
        ("<sip:200@pbx.test?Replaces=abc%3Bto-tag%3Dx%3Bfrom-tag%3Dy>", 481),  # no such dialog
        ("not a uri <", 400),
    ],
)
def test_bad_refers(net: Net, refer_to: str, status: int) -> None:
    phone, request, _ = _established(net)
    net.deliver(_from_phone(net, request, "REFER", 1, [("Refer-To", refer_to)]), phone)
    assert [m.status for m in net.take(phone) if isinstance(m, SipResponse)] == [status]


def _hang_up_caller(net: Net) -> None:
    _, _, final = _established(net)
    net.deliver(caller_request(net, "BYE", 3, final), CALLER)


def _sim_ring_cancelled(net: Net) -> None:
    phones = [net.register("102", f"203.0.113.{i}") for i in (1, 2)]
    place_call(net, "102")
    invites = [net.requests(p, "INVITE")[0] for p in phones]
    answer(net, invites[0], 180, phones[0], "ph0")
    answer(net, invites[1], 200, phones[1], "ph1", SDP)
    answer(net, invites[0], 487, phones[0], "ph0")
    final = next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 200)
    net.deliver(caller_request(net, "ACK", 2, final), CALLER)
    net.deliver(caller_request(net, "BYE", 3, final), CALLER)


@pytest.mark.parametrize(
    "scenario",
    [
        _hang_up_caller,
        test_callee_hangs_up,
        _sim_ring_cancelled,
        test_cancel_waits_for_a_provisional_and_caller_gets_487,
        test_ring_time_runs_out_no_answer,
    ],
)
def test_ended_calls_leave_no_reference_cycles(scenario: Callable[[Net], None]) -> None:
    # Reference counting alone must free a call once its transactions are over: cycles
    # would leave every ended call to the collector's full passes (softswitch.collector).
    gc.collect()
    net = Net()
    scenario(net)
    assert len(net.mgr) == 0 and net.cdrs
    net.advance(40.0, step=1.0)  # Timers D, J, K, L, M: every transaction is gone
    assert cyclic_garbage() == set()


def test_a_second_fork_answering_the_same_invite_is_acked_and_hung_up(net: Net) -> None:
    phone, request, _ = _established(net)
    # A proxy in front of the phone forked the INVITE: another device answers it too.
    answer(net, request, 200, phone, "ph2", SDP)
    acks, byes = net.requests(phone, "ACK"), net.requests(phone, "BYE")
    assert len(acks) == 1 and len(byes) == 1
    assert byes[0].to is not None and byes[0].to.tag == "ph2"
    assert len(net.mgr) == 1 and not net.requests(CALLER, "BYE")  # the call stays up
    net.deliver(make_response(byes[0], 200), phone)
    assert net.mgr.dialog_count == 2  # the caller's and the winner's


def test_the_peer_ending_a_dialog_on_a_481_hangs_up_the_other_party(net: Net) -> None:
    phone, _, final = _established(net)
    net.deliver(caller_request(net, "INFO", 3, final), CALLER)
    (relayed,) = net.requests(phone, "INFO")
    net.deliver(make_response(relayed, 481), phone)  # the phone lost the dialog
    assert net.statuses()[-1] == 481  # relayed back to the caller
    assert len(net.requests(CALLER, "BYE")) == 1 and len(net.mgr) == 0
    (cdr,) = net.cdrs
    assert cdr.disposition == "ANSWERED"


def test_a_transferor_gone_from_its_dialog_leaves_the_transfer_running(net: Net) -> None:
    phone, request, _ = _established(net)
    target = net.register("200", "203.0.113.9")
    net.deliver(_from_phone(net, request, "REFER", 1, [("Refer-To", "<sip:200@pbx.test>")]), phone)
    (notify,) = net.requests(phone, "NOTIFY")
    net.deliver(make_response(notify, 481), phone)  # the transferor forgot the dialog
    (first,) = net.cdrs
    assert first.disposition == "ANSWERED"
    assert not net.requests(CALLER, "BYE")  # the transferee stays on, the target rings
    (ringing,) = net.requests(target, "INVITE")
    answer(net, ringing, 200, target, "tg", SDP.replace(b"198.51.100.1", b"203.0.113.9"))
    (reinvite,) = net.requests(CALLER, "INVITE")
    assert b"203.0.113.9" in reinvite.body
