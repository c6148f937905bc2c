"""Caller identity on the legs (PAI, privacy, Diversion/History-Info), loop detection and
the outbound trunk route, driven through the CallManager without sockets."""

from __future__ import annotations

from typing import Any

import pytest

from routing.plan import DiversionReason, Target, TargetKind
from softswitch.calls.identity import diversion_headers
from softswitch.calls.loops import LoopGuard
from softswitch.sip.address import Address
from softswitch.sip.auth import build_authorization
from softswitch.sip.message import SipRequest, SipResponse, parse_message
from tests.unit.callkit import CALLER, SDP, Net, answer, invite, place_call

CARRIER = Address("UDP", "192.0.2.70", 5060)
DID = "+14155550100"


def _trunk(**settings: Any) -> dict[str, Any]:
    return {
        "name": "carrier",
        "inbound_addresses": ["192.0.2.64/26"],
        "caller_id": DID,
        "gateways": [{"host": "192.0.2.70"}],
        **settings,
    }


def _carrier_invite(
    headers: list[tuple[str, str]], from_value: str = "<sip:+16505550123@carrier.test>;tag=c1"
) -> SipRequest:
    return SipRequest(
        "INVITE",
        f"sip:{DID}@192.0.2.1",
        [
            ("Via", "SIP/2.0/UDP 192.0.2.70:5060;branch=z9hG4bKtrunk1"),
            ("Max-Forwards", "70"),
            ("From", from_value),
            ("To", f"<sip:{DID}@192.0.2.1>"),
            ("Call-ID", "trunk-call-1"),
            ("CSeq", "1 INVITE"),
            ("Contact", "<sip:192.0.2.70:5060>"),
            *headers,
            ("Content-Type", "application/sdp"),
        ],
        SDP,
    )


PAI = ("P-Asserted-Identity", '"Carol" <sip:+16505550199@carrier.test;user=phone>')
PPI = ("P-Preferred-Identity", "<sip:+16505550177@carrier.test>")


@pytest.mark.parametrize(
    ("trusted", "headers", "from_value", "caller", "phone_from", "phone_pai"),
    [
        (
            True,
            [PAI],
            None,
            "+16505550199",
            '"Carol" <sip:+16505550199@pbx.test>',
            '"Carol" <sip:+16505550199@pbx.test>',
        ),
        (
            True,
            [("P-Asserted-Identity", "<tel:+1-650-555-0188>")],
            None,
            "+16505550188",
            "<sip:+16505550188@pbx.test>",
            "<sip:+16505550188@pbx.test>",
        ),
        (True, [], None, "+16505550123", "<sip:+16505550123@pbx.test>", None),
        (False, [PAI, PPI], None, "+16505550123", "<sip:+16505550123@pbx.test>", None),
        (
            True,
            [PAI, ("Privacy", "id")],
            None,
            "+16505550199",
            '"Anonymous" <sip:anonymous@anonymous.invalid>',
            None,
        ),
        (
            False,
            [],
            '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=c1',
            "anonymous",
            '"Anonymous" <sip:anonymous@anonymous.invalid>',
            None,
        ),
    ],
    ids=[
        "trusted-pai",
        "trusted-tel",
        "trusted-no-pai",
        "untrusted-stripped",
        "trusted-private",
        "untrusted-anonymous",
    ],
)
def test_inbound_identity_from_trunks(
    trusted: bool,
    headers: list[tuple[str, str]],
    from_value: str | None,
    caller: str,
    phone_from: str,
    phone_pai: str | None,
) -> None:
    net = Net({"dids": [{"number": DID, "destination": "102"}]}, [_trunk(trust_identity=trusted)])
    phone = net.register("102", "203.0.113.1")
    request = (
        _carrier_invite(headers) if from_value is None else _carrier_invite(headers, from_value)
    )
    net.deliver(request, CARRIER)
    (ringing,) = net.requests(phone, "INVITE")
    assert (ringing.get("From") or "").split(";tag=")[0] == phone_from
    assert ringing.get("P-Asserted-Identity") == phone_pai
    assert ringing.get("P-Preferred-Identity") is None
    assert "+16505550177" not in ringing.to_bytes().decode()  # the PPI never leaks
    answer(net, ringing, 486, phone, "ph")
    (cdr,) = net.cdrs
    assert cdr.caller_number == caller


USER_CID = "+14155550111"


def _outbound(
    trunk: dict[str, Any], extra: list[tuple[str, str]], from_value: str | None
) -> SipRequest:
    """User 100 (caller ID +14155550111) dials out; the INVITE the carrier gets."""
    users = [{"extension": e, "password": f"pw{e}"} for e in ("102", "200")]
    users.append(
        {"extension": "100", "password": "pw100", "caller_id": USER_CID, "display_name": "Alice"}
    )
    net = Net(trunks=[trunk], users=users)
    dialled = "+16505550123"
    first = invite(dialled)
    net.deliver(first, CALLER)
    challenge = next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 407)
    auth = build_authorization(
        challenge.get("Proxy-Authenticate") or "",
        "INVITE",
        f"sip:{dialled}@pbx.test",
        "100",
        "pw100",
    )
    request = invite(dialled, 2, auth)
    for name, value in extra:
        request.add(name, value)
    if from_value is not None:
        rewritten = parse_message(
            request.to_bytes().replace(b'"Alice" <sip:100@pbx.test>;tag=alice', from_value.encode())
        )
        assert isinstance(rewritten, SipRequest)
        request = rewritten
    net.deliver(request, CALLER)
    (out,) = net.requests(CARRIER, "INVITE")
    return out


ANON = '"Anonymous" <sip:anonymous@anonymous.invalid>'


@pytest.mark.parametrize(
    ("settings", "extra", "from_value", "expected_from", "pai", "privacy"),
    [
        ({}, [], None, f'"Alice" <sip:{USER_CID}@192.0.2.1>', f"<sip:{USER_CID}@192.0.2.1>", None),
        (
            {"caller_id_policy": "trunk"},
            [],
            None,
            f'"Alice" <sip:{DID}@192.0.2.1>',
            f"<sip:{USER_CID}@192.0.2.1>",
            None,
        ),
        ({"send_pai": False}, [], None, f'"Alice" <sip:{USER_CID}@192.0.2.1>', None, None),
        ({}, [("Privacy", "id")], None, ANON, f"<sip:{USER_CID}@192.0.2.1>", "id"),
        (
            {},
            [("P-Preferred-Identity", "<sip:+19995550000@pbx.test>")],
            None,
            f'"Alice" <sip:{USER_CID}@192.0.2.1>',
            f"<sip:{USER_CID}@192.0.2.1>",
            None,
        ),
        ({}, [], f"{ANON};tag=alice", ANON, f"<sip:{USER_CID}@192.0.2.1>", "id"),
    ],
    ids=["user-cid", "trunk-cid", "no-pai", "privacy-id", "ppi-ignored", "anonymous-from"],
)
def test_outbound_identity_by_caller_id_policy(
    settings: dict[str, Any],
    extra: list[tuple[str, str]],
    from_value: str | None,
    expected_from: str,
    pai: str | None,
    privacy: str | None,
) -> None:
    out = _outbound(_trunk(**settings), extra, from_value)
    assert (out.get("From") or "").split(";tag=")[0] == expected_from
    assert out.get("P-Asserted-Identity") == pai
    assert out.get("Privacy") == privacy
    assert "+19995550000" not in out.to_bytes().decode()


@pytest.mark.parametrize(
    ("hops", "diversion", "history"),
    [
        (
            (("102", DiversionReason.BUSY),),
            ["<sip:102@pbx.test>;reason=user-busy;counter=1"],
            "<sip:102@pbx.test?Reason=SIP%3Bcause%3D486>;index=1, "
            "<sip:200@pbx.test;cause=486>;index=1.1;mp=1",
        ),
        (
            (("102", DiversionReason.NO_ANSWER), ("103", DiversionReason.UNCONDITIONAL)),
            [
                "<sip:103@pbx.test>;reason=unconditional;counter=1",
                "<sip:102@pbx.test>;reason=no-answer;counter=1",
            ],
            "<sip:102@pbx.test?Reason=SIP%3Bcause%3D408>;index=1, "
            "<sip:103@pbx.test;cause=408?Reason=SIP%3Bcause%3D302>;index=1.1;mp=1, "
            "<sip:200@pbx.test;cause=302>;index=1.1.1;mp=1.1",
        ),
        ((), [], None),
    ],
)
def test_diversion_and_history_info(
    hops: tuple[tuple[str, DiversionReason], ...], diversion: list[str], history: str | None
) -> None:
    target = Target(
        TargetKind.USER_DEVICES,
        "200",
        diverted_by=tuple(h[0] for h in hops),
        diversion_reasons=tuple(h[1] for h in hops),
    )
    headers = diversion_headers(target, "pbx.test", "sip:200@pbx.test")
    assert [v for n, v in headers if n == "Diversion"] == diversion
    assert dict(headers).get("History-Info") == history


def test_forward_when_unanswered_reaches_the_target_with_history_info() -> None:
    net = Net(
        {
            "users": {
                "102": {
                    "ring_time": 5,
                    "default_rule": {
                        "simring": {},
                        "forward": {"when_unanswered": {"kind": "user", "target": "200"}},
                    },
                }
            }
        }
    )
    net.register("102", "203.0.113.1")
    target = net.register("200", "203.0.113.9")
    place_call(net, "102")
    net.advance(6.0)
    (forwarded,) = net.requests(target, "INVITE")
    assert forwarded.get("Diversion") == "<sip:102@pbx.test>;reason=no-answer;counter=1"
    history = forwarded.get_all("History-Info")
    assert history == [
        "<sip:102@pbx.test?Reason=SIP%3Bcause%3D408>;index=1",
        "<sip:200@pbx.test;cause=408>;index=1.1;mp=1",
    ]


# ------------------------------------------------------------------------ loops
def test_an_invite_of_ours_sent_back_to_us_gets_482() -> None:
    net = Net()
    phone = net.register("102", "203.0.113.1")
    place_call(net, "102")
    (ours,) = net.requests(phone, "INVITE")
    us = Address("UDP", "192.0.2.1", 5060)
    net.deliver(ours, us)  # the phone's contact pointed back at the switch
    assert net.statuses(us)[-1] == 482
    assert net.mgr.counters["loops"] == 1
    assert len(net.mgr) == 1  # the first call is still ringing the phone


def _proxied(request: SipRequest, ruri_user: str) -> SipRequest:
    """``request`` as a proxy forwarding it back to us would: its Via on top, ours below."""
    lines = [("Via", "SIP/2.0/UDP 198.51.100.9:5060;branch=z9hG4bKproxy1")]
    lines += [(n, v) for n, v in request.headers if n != "Via"]
    lines.insert(1, ("Via", request.get("Via") or ""))
    return SipRequest("INVITE", f"sip:{ruri_user}@192.0.2.1", lines, request.body)


@pytest.mark.parametrize(
    ("ruri_user", "looped"),
    [
        ("102", True),  # the same routing inputs came back: a loop
        ("200", False),  # a different number: a spiral, routed normally
    ],
)
def test_loop_marker_below_a_proxy(ruri_user: str, looped: bool) -> None:
    guard = LoopGuard()
    received = invite("102")
    sent = SipRequest(
        "INVITE",
        "sip:102@203.0.113.1",
        [
            ("Via", f"SIP/2.0/UDP 192.0.2.1:5060;branch={guard.branch(received)}"),
            *[(n, v) for n, v in received.headers if n != "Via"],
        ],
    )
    assert guard.looped(sent)  # sent to ourselves directly
    assert guard.looped(_proxied(sent, ruri_user)) is looped
    assert not LoopGuard().looped(sent)  # another switch's marker means nothing to us
    assert not guard.looped(received)


def test_a_loop_through_two_rounds_is_seen_in_the_third() -> None:
    """DID X forwards to Y, Y to X, and a carrier's proxy routes both back: our second
    INVITE carries the first one's digest, so X coming back a second time is a loop."""
    guard = LoopGuard()

    def stamped(received: SipRequest, ruri_user: str) -> SipRequest:
        sent = SipRequest(
            "INVITE",
            f"sip:{ruri_user}@192.0.2.70",
            [
                ("Via", f"SIP/2.0/UDP 192.0.2.1:5060;branch={guard.branch(received)}"),
                *[(n, v) for n, v in received.headers if n != "Via"],
            ],
        )
        return _proxied(sent, ruri_user)

    first = invite("+14155550100")
    second = stamped(first, "+14155550101")
    assert not guard.looped(second)  # Y: a new number, a spiral so far
    third = stamped(second, "+14155550100")
    assert guard.looped(third)


@pytest.mark.parametrize(
    ("hosts", "host", "port", "is_us"),
    [
        (["127.0.0.1"], "127.0.0.1", 5070, True),
        (["127.0.0.1"], "127.0.0.1", 5071, False),
        (["0.0.0.0", "pbx-host"], "127.0.0.5", 5070, True),
        (["0.0.0.0", "pbx-host"], "PBX-HOST", 5070, True),
        (["192.0.2.1"], "127.0.0.1", 5070, False),
        (["0.0.0.0"], "carrier.example", 5070, False),
    ],
)
def test_gateway_is_us(hosts: list[str], host: str, port: int, is_us: bool) -> None:
    assert LoopGuard(hosts).is_us(host, port, 5070) is is_us


# ------------------------------------------------------------------------ trunks in order
GW_SELF = {"host": "192.0.2.1", "port": 5060, "priority": 0}


def _net_with_route(outbound: list[str] | None) -> Net:
    trunks: list[dict[str, Any]] = [
        {"name": "a", "gateways": [GW_SELF, {"host": "192.0.2.70", "priority": 1}]},
        {"name": "b", "gateways": [{"host": "192.0.2.80"}, {"host": "192.0.2.81", "priority": 1}]},
    ]
    settings: dict[str, Any] = {} if outbound is None else {"outbound_trunks": outbound}
    net = Net(trunks=trunks, **settings)
    net.mgr.loops = LoopGuard({"192.0.2.1"})  # the switch's own address
    return net


def test_failover_runs_through_every_gateway_of_every_trunk_in_order() -> None:
    net = _net_with_route(None)
    place_call(net, "+16505550123")
    # Trunk a's first gateway is this switch itself: skipped, counted, never sent to.
    assert not net.requests(Address("UDP", "192.0.2.1", 5060), "INVITE")
    assert net.mgr.counters["loops"] == 1
    for host in ("192.0.2.70", "192.0.2.80", "192.0.2.81"):
        gateway = Address("UDP", host, 5060)
        (out,) = net.requests(gateway, "INVITE")
        answer(net, out, 503, gateway, "g")
    assert net.statuses()[-1] == 480
    (cdr,) = net.cdrs
    assert [leg["status"] for leg in cdr.legs] == [503, 503, 503]
    assert cdr.trunk == "b" and net.mgr.calls_in_setup == 0


def test_outbound_trunks_set_the_order_and_answer_wins() -> None:
    net = _net_with_route(["b", "a"])
    place_call(net, "+16505550123")
    first = Address("UDP", "192.0.2.80", 5060)
    answer(net, net.requests(first, "INVITE")[0], 500, first, "g1")
    second = Address("UDP", "192.0.2.81", 5060)
    answer(net, net.requests(second, "INVITE")[0], 200, second, "g2", SDP)
    assert net.statuses()[-1] == 200
    assert not net.requests(Address("UDP", "192.0.2.70", 5060), "INVITE")
    assert net.mgr.calls_in_setup == 0 and len(net.mgr) == 1


def test_busy_from_a_carrier_does_not_fail_over_to_the_next_trunk() -> None:
    net = _net_with_route(["b", "a"])
    place_call(net, "+16505550123")
    first = Address("UDP", "192.0.2.80", 5060)
    answer(net, net.requests(first, "INVITE")[0], 486, first, "g1")
    assert net.statuses()[-1] == 486
    assert not net.requests(Address("UDP", "192.0.2.81", 5060), "INVITE")
