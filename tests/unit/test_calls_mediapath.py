"""The media path a call gets once, at creation: pass-through (SDP relayed, NAT fix) or
anchored (the media engine's endpoints), and what each makes of the caller's SDP. Driven
without sockets, as in test_calls_manager."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from config.media import MediaSettings
from media.engine import EngineSettings, MediaEngine
from softswitch.calls.anchor import MediaAnchor
from softswitch.calls.call import Call
from softswitch.calls.mediapath import AnchoredMedia, PassThroughMedia
from softswitch.sip.address import Address
from softswitch.sip.message import SipRequest
from tests.unit.callkit import SDP, Net, place_call

NATTED = SDP.replace(b"c=IN IP4 198.51.100.1", b"c=IN IP4 192.168.1.20")
PUBLIC = Address("UDP", "93.184.216.34", 5060)


@pytest.fixture
def engine() -> Iterator[MediaEngine]:
    engine = MediaEngine(EngineSettings(address="127.0.0.1", port_min=42000, port_max=42999))
    yield engine
    asyncio.run(engine.close())


def _call_from(net: Net, body: bytes, content_type: str | None) -> Call:
    """A call in progress whose caller's INVITE carried ``body``."""
    net.register("102", "203.0.113.1")
    place_call(net, "102")
    (call,) = net.mgr.calls.values()
    headers = [(n, v) for n, v in call.inbound.invite.headers if n != "Content-Type"]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    call.inbound.invite = SipRequest("INVITE", "sip:102@pbx.test", headers, body)
    call.inbound.peer = PUBLIC
    return call


def test_without_an_anchor_every_call_passes_media_through() -> None:
    net = Net()
    assert isinstance(net.mgr.media_path, PassThroughMedia)
    net.register("102", "203.0.113.1")
    place_call(net, "102")
    (call,) = net.mgr.calls.values()
    assert call.media_path is net.mgr.media_path and call.media is None


def test_with_an_anchor_every_call_is_anchored(engine: MediaEngine) -> None:
    net = Net(anchor=MediaAnchor(engine, MediaSettings(address="127.0.0.1")))
    assert isinstance(net.mgr.media_path, AnchoredMedia)
    net.register("102", "203.0.113.1")
    place_call(net, "102")
    (call,) = net.mgr.calls.values()
    assert call.media_path is net.mgr.media_path and call.media is not None
    assert call.inbound.media is not None  # the caller's offer got an endpoint


@pytest.mark.parametrize(
    ("body", "content_type", "offered"),
    [
        # Behind NAT: the caller's public source replaces its private c= address.
        (NATTED, "application/sdp", NATTED.replace(b"192.168.1.20", b"93.184.216.34")),
        (SDP, None, b""),  # a body without a type is not passed on
        (b"", "application/sdp", b""),
    ],
)
def test_pass_through_offers_the_callers_sdp(
    body: bytes, content_type: str | None, offered: bytes
) -> None:
    net = Net()
    call = _call_from(net, body, content_type)
    sdp, sent_type, endpoint = PassThroughMedia().branch_offer(call)
    assert (sdp, endpoint) == (offered, None)
    assert sent_type == (content_type if offered else None)


def test_pass_through_offers_nothing_to_a_transfer_target() -> None:
    net = Net()
    call = _call_from(net, SDP, "application/sdp")
    call.transfer = object()
    assert PassThroughMedia().branch_offer(call) == (b"", None, None)


def test_pass_through_answers_no_offer_itself() -> None:
    net = Net()
    call = _call_from(net, SDP, "application/sdp")
    path = PassThroughMedia()
    leg = call.inbound
    assert not path.answers_offers(call, leg)
    assert not path.ack_answer(leg, SDP)
    assert path.application_media(leg) is None
    assert path.ended(call) == (None, {}, [])
