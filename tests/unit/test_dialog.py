"""Dialog state (RFC 3261 12): creation on both sides, CSeq checks, in-dialog requests."""

from __future__ import annotations

import pytest

from softswitch.sip.address import Address
from softswitch.sip.dialog import Dialog, DialogState, uri_address
from softswitch.sip.message import SipRequest, SipResponse, parse_message

VIA = "SIP/2.0/UDP 192.0.2.1:5060;rport"

INVITE = (
    "INVITE sip:102@pbx.test SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKabc\r\n"
    "Record-Route: <sip:p1.test;lr>, <sip:p2.test;lr>\r\n"
    'From: "Alice" <sip:100@pbx.test>;tag=alice1\r\n'
    "To: <sip:102@pbx.test>\r\n"
    "Call-ID: c1@host\r\n"
    "CSeq: 7 INVITE\r\n"
    "Contact: <sip:100@198.51.100.7:5062>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def _invite() -> SipRequest:
    msg = parse_message(INVITE.encode())
    assert isinstance(msg, SipRequest)
    return msg


def _response(
    status: int,
    record_route: str | None = "<sip:p2.test;lr>, <sip:p1.test;lr>",
    contact: str = "<sip:102@203.0.113.9:5070>",
) -> SipResponse:
    lines = [
        f"SIP/2.0 {status} X",
        "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKabc",
        'From: "Alice" <sip:100@pbx.test>;tag=alice1',
        "To: <sip:102@pbx.test>;tag=bob9",
        "Call-ID: c1@host",
        "CSeq: 7 INVITE",
        f"Contact: {contact}",
    ]
    if record_route:
        lines.append(f"Record-Route: {record_route}")
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, SipResponse)
    return msg


def test_uas_dialog_from_request() -> None:
    dialog = Dialog.from_uas(_invite(), "me1", "<sip:192.0.2.1:5060>")
    assert (dialog.call_id, dialog.local_tag, dialog.remote_tag) == ("c1@host", "me1", "alice1")
    assert dialog.remote_target == "sip:100@198.51.100.7:5062"
    assert dialog.route_set == ["<sip:p1.test;lr>", "<sip:p2.test;lr>"]
    assert dialog.remote_seq == 7
    bye = dialog.build_request("BYE", VIA)
    assert bye.uri == "sip:100@198.51.100.7:5062"
    assert bye.get("From") == "<sip:102@pbx.test>;tag=me1"
    assert bye.get("To") == '"Alice" <sip:100@pbx.test>;tag=alice1'
    assert bye.get_all("Route") == ["<sip:p1.test;lr>", "<sip:p2.test;lr>"]
    assert bye.cseq == (1, "BYE") and bye.get("Contact") is None
    assert bye.top_via is not None and (bye.top_via.branch or "").startswith("z9hG4bK")
    assert dialog.next_hop_uri() == "sip:p1.test;lr"


@pytest.mark.parametrize(
    ("status", "state"), [(180, DialogState.EARLY), (200, DialogState.CONFIRMED)]
)
def test_uac_dialog_from_response(status: int, state: DialogState) -> None:
    dialog = Dialog.from_uac(_invite(), _response(status), "<sip:192.0.2.1>")
    assert dialog.state is state
    assert (dialog.local_tag, dialog.remote_tag) == ("alice1", "bob9")
    assert dialog.route_set == ["<sip:p1.test;lr>", "<sip:p2.test;lr>"]  # reversed
    assert dialog.remote_target == "sip:102@203.0.113.9:5070"
    assert dialog.local_seq == 7
    reinvite = dialog.build_request("INVITE", VIA, body=b"v=0\r\n", content_type="application/sdp")
    assert reinvite.cseq == (8, "INVITE")
    assert reinvite.get("Contact") == "<sip:192.0.2.1>"
    assert reinvite.get("Content-Type") == "application/sdp" and reinvite.body == b"v=0\r\n"
    ack = dialog.build_ack(8, VIA)
    assert ack.cseq == (8, "ACK") and ack.uri == "sip:102@203.0.113.9:5070"


def test_strict_route_puts_the_first_route_in_the_request_uri() -> None:
    dialog = Dialog.from_uac(_invite(), _response(200, "<sip:strict.test>"), "<sip:me>")
    bye = dialog.build_request("BYE", VIA)
    assert bye.uri == "sip:strict.test"
    assert bye.get_all("Route") == ["<sip:102@203.0.113.9:5070>"]


@pytest.mark.parametrize(
    ("method", "cseq", "ok"),
    [
        ("BYE", 8, True),
        ("BYE", 7, False),
        ("INFO", 3, False),
        ("ACK", 7, True),
        ("CANCEL", 7, True),
        ("UPDATE", 100, True),
    ],
)
def test_remote_cseq_must_grow(method: str, cseq: int, ok: bool) -> None:
    dialog = Dialog.from_uas(_invite(), "me1", "<sip:me>")
    request = SipRequest(method, "sip:me", [("CSeq", f"{cseq} {method}")])
    assert dialog.accept_cseq(request) is ok
    assert dialog.remote_seq == (cseq if ok and method not in ("ACK", "CANCEL") else 7)


def test_target_refresh() -> None:
    dialog = Dialog.from_uas(_invite(), "me1", "<sip:me>")
    dialog.refresh_target(_response(200, None, "<sip:100@198.51.100.99:6000>"))
    assert dialog.remote_target == "sip:100@198.51.100.99:6000"


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("sip:100@198.51.100.7:5062", Address("UDP", "198.51.100.7", 5062)),
        ("sip:100@198.51.100.7;transport=tcp", Address("TCP", "198.51.100.7", 5060)),
        ("sips:100@example.test", Address("TLS", "example.test", 5061)),
        ("sip:[2001:db8::1]:5070", Address("UDP", "2001:db8::1", 5070)),
        ("sip:x@h.test;maddr=192.0.2.9", Address("UDP", "192.0.2.9", 5060)),
    ],
)
def test_uri_address(uri: str, address: Address) -> None:
    assert uri_address(uri) == address
