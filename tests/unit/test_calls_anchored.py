"""The call layer with media anchored in a real (unclocked) media engine: the SDP each leg
sees is the switch's, offers on a leg are answered by the switch, endpoints are released
with the call. Driven without SIP sockets, as in test_calls_manager."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from config.media import MediaSettings
from media.engine import EngineSettings, MediaEngine
from media.sdp import parse_sdp
from softswitch.calls.anchor import MediaAnchor
from softswitch.calls.apps import AppCall
from softswitch.sip.auth import build_authorization
from softswitch.sip.message import SipRequest, SipResponse
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

G729 = SDP.replace(b"RTP/AVP 0", b"RTP/AVP 18")


@pytest.fixture
def engine() -> Iterator[MediaEngine]:
    engine = MediaEngine(EngineSettings(address="127.0.0.1", port_min=41000, port_max=41999))
    yield engine
    asyncio.run(engine.close())


@pytest.fixture
def net(engine: MediaEngine) -> Net:
    return Net(anchor=MediaAnchor(engine, MediaSettings(address="127.0.0.1")))


def _ours(body: bytes) -> tuple[str, int]:
    sdp = parse_sdp(body)
    media = sdp.media[0]
    host = (media.connection or sdp.connection).address  # type: ignore[union-attr]
    return host, media.port


def _final(net: Net, status: int = 200) -> SipResponse:
    return next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == status)


def _authorised_invite(net: Net, body: bytes) -> SipRequest:
    challenge = net.mgr.auth.challenge("pbx.test")[0]
    request = invite(
        "102", 2, build_authorization(challenge, "INVITE", "sip:102@pbx.test", "100", "pw100")
    )
    request.body = body
    return request


def test_each_leg_sees_the_switch_and_the_call_releases_its_endpoints(
    net: Net, engine: MediaEngine
) -> None:
    phone = net.register("102", "203.0.113.1")
    place_call(net, "102")
    (out,) = net.requests(phone, "INVITE")
    host, port = _ours(out.body)
    assert host == "127.0.0.1" and 41000 <= port <= 41999  # not the caller's 198.51.100.1:4000
    assert b"telephone-event" in out.body
    answer(net, out, 200, phone, "ph", SDP.replace(b"198.51.100.1", b"203.0.113.1"))
    assert len(net.requests(phone, "ACK")) == 1  # the callee answered our offer: ACK at once
    final = _final(net)
    caller_host, caller_port = _ours(final.body)
    assert caller_host == "127.0.0.1" and caller_port not in (port, 4000)
    assert engine.stats().endpoints == 2
    net.deliver(caller_request(net, "ACK", 2, final), CALLER)
    net.deliver(caller_request(net, "BYE", 3, final), CALLER)
    assert engine.stats().endpoints == 0
    (cdr,) = net.cdrs
    assert cdr.disposition == "ANSWERED" and cdr.quality == {} and cdr.mos is None


def test_an_offer_without_a_usable_codec_gets_488(net: Net, engine: MediaEngine) -> None:
    phone = net.register("102", "203.0.113.1")
    net.deliver(_authorised_invite(net, G729), CALLER)
    assert 488 in net.statuses()
    assert net.requests(phone, "INVITE") == []
    assert engine.stats().endpoints == 0
    (cdr,) = net.cdrs
    assert (cdr.disposition, cdr.sip_code) == ("FAILED", 488)


def _answered(net: Net) -> tuple[object, SipResponse]:
    phone = net.register("102", "203.0.113.1")
    place_call(net, "102")
    (out,) = net.requests(phone, "INVITE")
    answer(net, out, 200, phone, "ph", SDP.replace(b"198.51.100.1", b"203.0.113.1"))
    final = _final(net)
    net.deliver(caller_request(net, "ACK", 2, final), CALLER)
    net.take()
    return phone, final


def test_hold_is_answered_by_the_switch_not_relayed(net: Net) -> None:
    phone, final = _answered(net)
    hold = caller_request(net, "INVITE", 3, final)
    hold.body = SDP.replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n")
    hold.add("Content-Type", "application/sdp")
    net.deliver(hold, CALLER)
    answer_ = _final(net)
    assert b"a=recvonly" in answer_.body
    assert net.requests(phone, "INVITE") == []  # the callee is not re-INVITEd: it hears MOH
    net.deliver(caller_request(net, "ACK", 3, answer_), CALLER)
    net.advance(3.0)
    assert net.statuses().count(200) == 0  # ACKed: no retransmission


def test_reinvite_without_sdp_gets_our_offer_and_the_ack_answers(net: Net) -> None:
    _, final = _answered(net)
    net.deliver(caller_request(net, "INVITE", 3, final), CALLER)
    offer = _final(net)
    assert b"m=audio" in offer.body and b"a=sendrecv" in offer.body
    ack = caller_request(net, "ACK", 3, offer)
    ack.body = SDP
    ack.add("Content-Type", "application/sdp")
    net.deliver(ack, CALLER)
    net.advance(3.0)
    assert net.statuses().count(200) == 0


def test_late_offer_caller_gets_the_offer_in_our_200(net: Net, engine: MediaEngine) -> None:
    phone = net.register("102", "203.0.113.1")
    net.deliver(_authorised_invite(net, b""), CALLER)
    (out,) = net.requests(phone, "INVITE")
    assert b"m=audio" in out.body  # the callee gets our offer all the same
    answer(net, out, 200, phone, "ph", SDP)
    assert len(net.requests(phone, "ACK")) == 1
    final = _final(net)
    assert b"m=audio" in final.body
    ack: SipRequest = caller_request(net, "ACK", 2, final)
    ack.body = SDP
    ack.add("Content-Type", "application/sdp")
    net.deliver(ack, CALLER)
    ep = net.mgr.calls[next(iter(net.mgr.calls))].inbound.media
    assert ep is not None and ep.stream is not None and ep.sdp_remote == ("198.51.100.1", 4000)


def test_losing_branches_and_cancelled_calls_release_their_endpoints(
    net: Net, engine: MediaEngine
) -> None:
    phones = [net.register("102", f"203.0.113.{i}") for i in (1, 2)]
    place_call(net, "102")
    invites = [net.requests(p, "INVITE")[0] for p in phones]
    assert engine.stats().endpoints == 3
    answer(net, invites[0], 200, phones[0], "ph0", SDP)
    assert engine.stats().endpoints == 2  # the loser's is gone at once
    net.take()
    place_call(net, "102", call_id="call-2")
    assert engine.stats().endpoints == 5
    cancel = SipRequest(
        "CANCEL",
        "sip:102@pbx.test",
        [
            ("Via", "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKcaller2call-2"),
            ("Max-Forwards", "70"),
            ("From", '"Alice" <sip:100@pbx.test>;tag=alice'),
            ("To", "<sip:102@pbx.test>"),
            ("Call-ID", "call-2"),
            ("CSeq", "2 CANCEL"),
        ],
    )
    net.deliver(cancel, CALLER)
    assert 487 in net.statuses()
    assert engine.stats().endpoints == 2


async def test_originated_call_runs_its_application_on_the_answering_leg(
    net: Net, engine: MediaEngine
) -> None:
    phone = net.register("102", "203.0.113.1")
    sessions: list[AppCall] = []
    done = asyncio.Event()

    async def app(session: AppCall) -> None:
        sessions.append(session)
        await session.ended.wait()
        done.set()

    call = net.mgr.originate("t", "102", app, caller_number="800", caller_name="Team")
    assert call is not None
    net._pump()  # what the switch's scheduler does after a callback
    (out,) = net.requests(phone, "INVITE")
    assert b"m=audio" in out.body and out.from_ is not None and out.from_.uri.user == "800"
    answer(net, out, 200, phone, "ph", SDP.replace(b"198.51.100.1", b"203.0.113.1"))
    assert len(net.requests(phone, "ACK")) == 1
    await asyncio.sleep(0)
    (session,) = sessions
    assert session.endpoint is call.winner.media and session.user == "102"  # type: ignore[union-attr]
    bye = SipRequest(
        "BYE",
        "sip:192.0.2.1:5060",
        [
            ("Via", "SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKbye1"),
            ("Max-Forwards", "70"),
            ("From", out.get("To") + ";tag=ph"),
            ("To", out.get("From") or ""),  # type: ignore[operator]
            ("Call-ID", out.call_id or ""),
            ("CSeq", "2 BYE"),
        ],
    )
    net.deliver(bye, phone)
    await asyncio.wait_for(done.wait(), 2)
    (cdr,) = net.cdrs
    assert (cdr.disposition, cdr.caller_number, cdr.destination) == ("ANSWERED", "800", "102")
    assert engine.stats().endpoints == 0


def test_originating_to_nobody_leaves_a_failed_cdr(net: Net, engine: MediaEngine) -> None:
    async def app(session: AppCall) -> None:
        raise AssertionError("never answered")

    net.mgr.originate("t", "102", app, caller_number="800")  # 102 is not registered
    (cdr,) = net.cdrs
    assert cdr.disposition != "ANSWERED" and engine.stats().endpoints == 0
    assert net.mgr.originate("nope", "102", app, caller_number="800") is None


def test_an_ended_anchored_call_leaves_no_reference_cycles(net: Net, engine: MediaEngine) -> None:
    gc.collect()
    _, final = _answered(net)
    net.deliver(caller_request(net, "BYE", 3, final), CALLER)
    assert net.cdrs and engine.stats().endpoints == 0
    net.advance(40.0, step=1.0)
    assert cyclic_garbage() == set()
