"""SipMessage parsing, lazy views, serialisation, limits, make_response, check_request, fuzz."""

from __future__ import annotations

import contextlib
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softswitch.sip.headers import Via
from softswitch.sip.message import (
    MAX_HEADER_LINE,
    MAX_HEADERS,
    MAX_LINES,
    SipMessage,
    SipParseError,
    SipRequest,
    SipResponse,
    check_request,
    contact_uri,
    make_request,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
    via_value,
)
from softswitch.sip.uri import SipUri
from tests.unit.torture_expectations import TORTURE_CORPUS


def wire(*lines: str, body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"

INVITE_LINES = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.example.com>",
    'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@pc33.atlanta.example.com>",
    "Content-Type: application/sdp",
    f"Content-Length: {len(SDP)}",
)
INVITE = wire(*INVITE_LINES, body=SDP)

RESPONSE = wire(
    "SIP/2.0 180 Ringing",
    "Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3",
    "Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1",
    "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710",
    "CSeq: 314159 INVITE",
    "Content-Length: 0",
)


def req(data: bytes) -> SipRequest:
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    return msg


def lines_of(msg: SipMessage) -> list[str]:
    return msg.to_bytes().split(b"\r\n\r\n", 1)[0].decode().split("\r\n")


# --------------------------------------------------------------------------- parsing


def test_parse_request() -> None:
    msg = req(INVITE)
    assert (msg.method, msg.uri, msg.version) == ("INVITE", "sip:bob@biloxi.example.com", "SIP/2.0")
    assert msg.is_request and msg.ruri.user == "bob"
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.cseq == (314159, "INVITE")
    assert msg.top_via is not None and msg.top_via.branch == "z9hG4bKnashds8"
    assert msg.from_ is not None and msg.from_.tag == "1928301774"
    assert msg.to is not None and msg.to.tag is None and msg.to.display_name == "Bob"
    assert [str(c.uri) for c in msg.contacts] == ["sip:alice@pc33.atlanta.example.com"]
    assert (msg.max_forwards, msg.content_length, msg.expires) == (70, len(SDP), None)
    assert msg.body == SDP
    assert msg.to_bytes() == INVITE and not msg.modified
    assert msg.headers[0] == ("Via", "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8")
    assert repr(msg) == "<SipRequest INVITE sip:bob@biloxi.example.com>"


def test_parse_response() -> None:
    msg = parse_message(RESPONSE)
    assert isinstance(msg, SipResponse) and not msg.is_request
    assert (msg.status, msg.reason, msg.version) == (180, "Ringing", "SIP/2.0")
    assert [v.host for v in msg.vias] == [
        "server10.biloxi.example.com",
        "bigbox3.site3.atlanta.example.com",
    ]
    assert msg.top_via is not None and msg.top_via.received == "192.0.2.3"
    assert msg.to is not None and msg.to.tag == "a6c85cf"
    assert msg.body == b"" and msg.to_bytes() == RESPONSE
    assert repr(msg) == "<SipResponse 180 Ringing>"


@pytest.mark.parametrize(
    ("line", "status", "reason"),
    [
        ("SIP/2.0 200 OK", 200, "OK"),
        ("SIP/2.0 100 ", 100, ""),
        ("SIP/2.0 100", 100, ""),
        ("SIP/2.0 486 Busy  Here", 486, "Busy  Here"),
        ("sip/2.0 699 x", 699, "x"),
        ("SIP/2.0 200 = 2**3 * 5**2 но", 200, "= 2**3 * 5**2 но"),
    ],
)
def test_status_lines(line: str, status: int, reason: str) -> None:
    msg = parse_message(wire(line, "Content-Length: 0"))
    assert isinstance(msg, SipResponse) and (msg.status, msg.reason) == (status, reason)


def test_compact_forms_and_case_insensitive_access() -> None:
    msg = req(
        wire(
            "OPTIONS sip:carol@chicago.example.com SIP/2.0",
            "v: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKx",
            "i: 42@example",
            "f: <sip:a@x>;tag=1",
            "t: <sip:carol@chicago.example.com>",
            "CSEQ: 1 OPTIONS",
            "m: <sip:a@192.0.2.1>",
            "k: timer, 100rel",
            "L :  0",
            "x-custom: one",
            "X-CUSTOM: two",
        )
    )
    assert [name for name, _ in msg.header_items()] == [
        "Via",
        "Call-ID",
        "From",
        "To",
        "CSeq",
        "Contact",
        "Supported",
        "Content-Length",
        "x-custom",
        "X-CUSTOM",
    ]
    for name in ("Call-ID", "call-id", "CALL-ID", "i", "I"):
        assert msg.get(name) == "42@example"
    assert msg.get_all("Supported") == msg.get_all("k") == ["timer", "100rel"]
    assert msg.get_all("X-Custom") == ["one", "two"] and msg.get("x-CUSTOM") == "one"
    assert msg.count("x-custom") == 2 and msg.count("Via") == 1 and msg.count("Route") == 0
    assert msg.get("Nope") is None and msg.get_all("Nope") == []
    assert msg.content_length == 0


def test_repeated_and_comma_separated_headers() -> None:
    msg = req(
        wire(
            "INVITE sip:b@x SIP/2.0",
            "Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
            "Route: <sip:p1;lr>, <sip:p2;lr>",
            "Via: SIP/2.0/UDP c;branch=z9hG4bK3",
            "Route: <sip:p3;lr>",
            "Record-Route: <sip:rr1;lr>",
            'Contact: "Doe, J" <sip:a@x>, <sip:b@y>',
            "Date: Sat, 13 Nov 2010 23:29:00 GMT",
            "Allow: INVITE, ACK,BYE",
            "Allow: CANCEL",
            "Supported: ",
        )
    )
    assert [v.host for v in msg.vias] == ["a", "b", "c"]
    assert msg.top_via is not None and msg.top_via.host == "a"
    assert msg.get_all("Via") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1",
        "SIP/2.0/UDP b;branch=z9hG4bK2",
        "SIP/2.0/UDP c;branch=z9hG4bK3",
    ]
    assert [str(r.uri) for r in msg.routes] == ["sip:p1;lr", "sip:p2;lr", "sip:p3;lr"]
    assert [str(r.uri) for r in msg.record_routes] == ["sip:rr1;lr"]
    assert [c.display_name for c in msg.contacts] == ["Doe, J", None]
    assert msg.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]  # not a list header
    assert msg.get_all("Allow") == ["INVITE", "ACK", "BYE", "CANCEL"]
    assert msg.get_all("Supported") == [] and msg.get("Supported") == ""


def test_line_folding_joins_with_one_space() -> None:
    msg = req(
        wire(
            "OPTIONS sip:a@x SIP/2.0",
            "Subject: first",
            " \t second  ",
            "\tthird",
            "To:",
            "  <sip:a@x>",
            "Content-Length:",
            " 0",
        )
    )
    assert msg.get("Subject") == "first second third"
    assert msg.get("To") == "<sip:a@x>"
    assert msg.content_length == 0


@pytest.mark.parametrize(
    "data",
    [
        INVITE[: INVITE.index(b"\r\n\r\n")].replace(b"\r\n", b"\n") + b"\n\n" + SDP,
        b"\r\n\r\n" + INVITE,
        b"\n" + INVITE,
        INVITE.replace(b"\r\nMax-Forwards", b"\nMax-Forwards"),
    ],
    ids=["bare-lf", "leading-crlf", "leading-lf", "mixed"],
)
def test_liberal_line_ends(data: bytes) -> None:
    msg = req(data)
    assert msg.header_items() == req(INVITE).header_items()
    assert msg.max_forwards == 70


def test_request_line_tolerance() -> None:
    msg = req(wire("INVITE  sip:a@x  SIP/2.0  ", "Content-Length: 0"))
    assert (msg.uri, msg.version) == ("sip:a@x", "SIP/2.0")
    assert req(wire("OPTIONS sip:a@x sip/2.0", "l: 0")).version == "SIP/2.0"
    assert req(wire("OPTIONS sip:a@x SIP/7.0", "l: 0")).version == "SIP/7.0"


def test_message_without_blank_line_reads_as_headers_only() -> None:
    msg = req(b"OPTIONS sip:a@x SIP/2.0\r\nCall-ID: 1\r\nl: 0\r\n")
    assert msg.call_id == "1" and msg.body == b"" and msg.modified
    assert msg.to_bytes().endswith(b"Content-Length: 0\r\n\r\n")


def test_undecodable_bytes_survive() -> None:
    raw = b"MESSAGE sip:a@x SIP/2.0\r\nSubject: caf\xe9\r\nl: 3\r\n\r\n\xff\x00\xfe"
    msg = req(raw)
    assert msg.get("Subject") == "caf\udce9" and msg.body == b"\xff\x00\xfe"
    msg.set("X-Touch", "1")
    again = req(msg.to_bytes())
    assert again.get("Subject") == "caf\udce9" and b"caf\xe9" in msg.to_bytes()


# ------------------------------------------------------------------------ datagrams


def test_datagram_without_content_length_takes_the_rest() -> None:
    msg = req(wire(*INVITE_LINES[:-1], body=SDP))
    assert msg.body == SDP and msg.content_length is None
    assert msg.to_bytes() == wire(*INVITE_LINES[:-1], body=SDP)


def test_datagram_extra_bytes_are_discarded() -> None:
    data = INVITE + b"\r\nINVITE sip:x SIP/2.0\r\n\r\n"
    msg = req(data)
    assert msg.body == SDP and msg.to_bytes() == INVITE


def test_datagram_content_length_beyond_the_data() -> None:
    data = INVITE[:-5]
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == 400
    partial = info.value.message
    assert isinstance(partial, SipRequest) and partial.call_id is not None
    assert partial.modified


def test_stream_mode_requires_exact_framing() -> None:
    assert parse_message(INVITE, datagram=False).body == SDP
    for data in (wire(*INVITE_LINES[:-1], body=SDP), INVITE + b"x"):
        with pytest.raises(SipParseError) as info:
            parse_message(data, datagram=False)
        assert info.value.status == 400 and info.value.message is not None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("-1", "Bad Content-Length"),
        ("abc", "Bad Content-Length"),
        ("1e3", "Bad Content-Length"),
        ("99999999999", "Bad Content-Length"),
        ("١٢", "Bad Content-Length"),
    ],
)
def test_bad_content_length(value: str, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(wire(*INVITE_LINES[:-1], f"Content-Length: {value}", body=SDP))
    assert (info.value.status, info.value.reason) == (400, reason)


def test_conflicting_and_identical_content_lengths() -> None:
    same = req(wire(*INVITE_LINES, f"l: {len(SDP)}", body=SDP))
    assert same.body == SDP
    with pytest.raises(SipParseError) as info:
        parse_message(wire(*INVITE_LINES, "l: 3", body=SDP))
    assert info.value.reason == "Conflicting Content-Length"
    with pytest.raises(SipParseError):  # a folded duplicate is still a conflict
        parse_message(wire(*INVITE_LINES, "l:", " 3", body=SDP))


# ---------------------------------------------------------------------- bad messages


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"\x00\x01\x02",
        b"hello",
        b"INVITE sip:a@x\r\n\r\n",
        b"INVITE\r\n\r\n",
        b"SIP/2.0\r\n\r\n",
        b"SIP/2.0 99 Low\r\n\r\n",
        b"SIP/2.0 700 High\r\n\r\n",
        b"SIP/2.0 4294967301 big\r\n\r\n",
        b"SIP/2.0 2x0 OK\r\n\r\n",
        b"SIP/2.0 \xd9\xa2\xd9\xa0\xd9\xa0 OK\r\n\r\n",
        b"IN VITE sip:a@x HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b'INV"ITE sip:a@x SIP/2.0\r\n\r\n',
    ],
)
def test_unusable_start_line_gives_no_message(data: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == 400 and info.value.message is None


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("Foobar roobar", "Bad header line"),
        (": no name", "Bad header line"),
        ("Bad Name: x", "Bad header line"),
        ('Na"me: x', "Bad header line"),
        ("Via", "Bad header line"),
    ],
)
def test_bad_header_line_keeps_a_partial_message(extra: str, reason: str) -> None:
    lines = list(INVITE_LINES)
    lines.insert(3, extra)
    with pytest.raises(SipParseError) as info:
        parse_message(wire(*lines, body=SDP))
    assert (info.value.status, info.value.reason) == (400, reason)
    partial = info.value.message
    assert isinstance(partial, SipRequest)
    assert partial.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    response = make_response(partial, 400, info.value.reason)
    assert response.get("CSeq") == "314159 INVITE" and response.reason == reason


def test_continuation_of_start_line() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(wire("OPTIONS sip:a@x SIP/2.0", " folded", "Call-ID: 1", "l: 0"))
    assert info.value.status == 400 and info.value.message is not None
    assert info.value.message.call_id == "1"


# -------------------------------------------------------------------------- limits


def test_oversize_message_413_with_headers() -> None:
    data = wire(*INVITE_LINES[:-1], "Content-Length: 70000", body=b"x" * 70000)
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert (info.value.status, info.value.reason) == (413, "Request Entity Too Large")
    assert info.value.message is not None and info.value.message.call_id is not None


def test_oversize_message_without_header_end_513() -> None:
    data = b"INVITE sip:a@x SIP/2.0\r\nX: " + b"y" * 70000
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert (info.value.status, info.value.message) == (513, None)


def test_max_size_is_configurable() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(INVITE, max_size=len(INVITE) - 1)
    assert info.value.status == 413
    assert parse_message(INVITE, max_size=len(INVITE)).body == SDP


def test_too_many_headers_513() -> None:
    lines = [*INVITE_LINES[:-1], *[f"X-H{i}: {i}" for i in range(MAX_HEADERS)], "l: 0"]
    with pytest.raises(SipParseError) as info:
        parse_message(wire(*lines))
    assert info.value.status == 513 and info.value.message is not None
    assert info.value.message.call_id is not None
    exactly = wire(
        "OPTIONS sip:a@x SIP/2.0", *[f"X-H{i}: {i}" for i in range(MAX_HEADERS - 1)], "l: 0"
    )
    assert parse_message(exactly).get("l") == "0"


def test_header_line_too_long_513() -> None:
    ok = wire("OPTIONS sip:a@x SIP/2.0", "X: " + "y" * (MAX_HEADER_LINE - 3), "l: 0")
    assert parse_message(ok).get("X") is not None
    for data in (
        wire("OPTIONS sip:a@x SIP/2.0", "X: " + "y" * MAX_HEADER_LINE, "l: 0"),
        wire("OPTIONS sip:a@x SIP/2.0", "X: a", *([" " + "y" * 100] * 90), "l: 0"),
    ):
        with pytest.raises(SipParseError) as info:
            parse_message(data)
        assert info.value.status == 513


def test_too_many_lines_513() -> None:
    data = wire("OPTIONS sip:a@x SIP/2.0", "X: a", *([" b"] * MAX_LINES), "l: 0")
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == 513


# ------------------------------------------------------------------ structured errors


@pytest.mark.parametrize(
    ("header", "prop"),
    [
        ("Via: garbage", "vias"),
        ("Via: garbage", "top_via"),
        ("CSeq: x INVITE", "cseq"),
        ("From: <sip:a@b", "from_"),
        ('To: "open <sip:a@b>', "to"),
        ("Contact: <sip:a@b>;;", "contacts"),
        ("Route: <sip:a", "routes"),
        ("Record-Route: ,", "record_routes"),
        ("Content-Length: 5 5", "content_length"),
        ("Max-Forwards: -1", "max_forwards"),
        ("Expires: soon", "expires"),
    ],
)
def test_structured_properties_raise_only_sip_parse_error(header: str, prop: str) -> None:
    name, _, value = header.partition(": ")
    msg = SipRequest("OPTIONS", "sip:a@x", [(name, value)])  # the parser would refuse some
    with pytest.raises(SipParseError) as info:
        getattr(msg, prop)
    assert info.value.status == 400 and "Bad" in info.value.reason


def test_bad_request_uri_raises_on_access() -> None:
    msg = req(wire("INVITE <sip:a@x> SIP/2.0", "l: 0"))
    with pytest.raises(SipParseError) as info:
        msg.ruri  # noqa: B018
    assert (info.value.status, info.value.reason) == (400, "Bad Request-URI")


def test_expires_saturates() -> None:
    assert req(wire("REGISTER sip:x SIP/2.0", "Expires: 1" + "0" * 50)).expires == 2**32 - 1
    assert req(wire("REGISTER sip:x SIP/2.0", "Expires: 3600")).expires == 3600


# --------------------------------------------------------------------- modification


def test_set_add_remove_and_reserialise() -> None:
    msg = req(INVITE)
    msg.set("Max-Forwards", "69")
    assert msg.modified and msg.max_forwards == 69
    msg.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1", first=True)
    msg.add("Record-Route", "<sip:proxy.example.com;lr>")
    msg.add("Via", "SIP/2.0/UDP last;branch=z9hG4bKlast")
    msg.remove("contact")
    lines = lines_of(msg)
    assert lines[0] == "INVITE sip:bob@biloxi.example.com SIP/2.0"
    assert lines[1:4] == [
        "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1",
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8",
        "Via: SIP/2.0/UDP last;branch=z9hG4bKlast",
    ]
    assert "Max-Forwards: 69" in lines and "Record-Route: <sip:proxy.example.com;lr>" in lines
    assert not any(line.startswith("Contact") for line in lines)
    assert lines[-2:] == [f"Content-Length: {len(SDP)}", "Record-Route: <sip:proxy.example.com;lr>"]
    again = req(msg.to_bytes())
    assert again.header_items() == msg.header_items() and again.body == SDP
    assert msg.top_via is not None and msg.top_via.host == "proxy.example.com"
    assert msg.to_bytes() is msg.to_bytes()  # cached until the next change


def test_body_change_updates_content_length() -> None:
    msg = req(INVITE)
    msg.body = b"hello"
    assert msg.to_bytes().endswith(b"Content-Length: 5\r\n\r\nhello")
    msg.remove("Content-Length")
    assert msg.to_bytes().endswith(b"Content-Length: 5\r\n\r\nhello")


def test_set_replaces_in_place_and_caches_follow() -> None:
    msg = req(INVITE)
    assert msg.to is not None and msg.to.tag is None
    msg.set("t", "Bob <sip:bob@biloxi.example.com>;tag=xyz")
    assert msg.to is not None and msg.to.tag == "xyz"
    assert [name for name, _ in msg.header_items()].index("To") == 2
    msg.set("X-New", "1")
    assert msg.header_items()[-1] == ("X-New", "1")


def test_headers_property_counts_as_modification() -> None:
    msg = req(INVITE)
    assert msg.from_ is not None
    headers = msg.headers
    assert msg.modified
    headers[3] = ("From", "<sip:eve@example.com>;tag=evil")
    assert msg.from_ is not None and msg.from_.tag == "evil"
    assert b"From: <sip:eve@example.com>;tag=evil\r\n" in msg.to_bytes()
    headers.append(("X-Late", "1"))  # changed after to_bytes: invalidate() tells the message
    msg.invalidate()
    assert b"X-Late: 1\r\n" in msg.to_bytes()
    msg.headers = [["Call-ID", "new"]]
    assert msg.call_id == "new"


def test_start_line_changes() -> None:
    msg = req(INVITE)
    msg.uri = "sip:carol@chicago.example.com"
    assert msg.ruri.user == "carol" and msg.to_bytes().startswith(b"INVITE sip:carol@chicago")
    msg.ruri = SipUri("sip", "dave", "example.org", 5070)
    assert msg.uri == "sip:dave@example.org:5070"
    msg.method = "OPTIONS"
    assert msg.to_bytes().startswith(b"OPTIONS sip:dave@example.org:5070 SIP/2.0\r\n")
    with pytest.raises(ValueError):
        msg.method = "BAD METHOD"
    resp = parse_message(RESPONSE)
    assert isinstance(resp, SipResponse)
    resp.status, resp.reason = 183, "Session Progress"
    resp.version = "SIP/2.0"
    assert resp.to_bytes().startswith(b"SIP/2.0 183 Session Progress\r\n")


def test_set_top_via_and_remove_top_via() -> None:
    msg = req(
        wire(
            "INVITE sip:b@x SIP/2.0",
            "Via: SIP/2.0/UDP a;branch=z9hG4bK1;rport, SIP/2.0/UDP b;branch=z9hG4bK2",
            "Via: SIP/2.0/UDP c;branch=z9hG4bK3",
            "l: 0",
        )
    )
    via = msg.top_via
    assert via is not None
    via.params["rport"] = "5062"
    via.params["received"] = "192.0.2.9"
    msg.set_top_via(via)
    assert msg.get_all("Via")[:2] == [
        "SIP/2.0/UDP a;branch=z9hG4bK1;rport=5062;received=192.0.2.9",
        "SIP/2.0/UDP b;branch=z9hG4bK2",
    ]
    removed = msg.remove_top_via()
    assert removed is not None and removed.host == "a"
    assert [v.host for v in msg.vias] == ["b", "c"]
    assert msg.remove_top_via() is not None and msg.remove_top_via() is not None
    assert msg.remove_top_via() is None and msg.vias == []
    msg.set_top_via(Via("TCP", "new", 5060, {"branch": "z9hG4bKn"}))
    assert msg.get("Via") == "SIP/2.0/TCP new:5060;branch=z9hG4bKn"


def test_construct_messages_and_reject_injection() -> None:
    request = SipRequest(
        "OPTIONS",
        SipUri("sip", "bob", "example.com"),
        [
            ("v", f"SIP/2.0/UDP 192.0.2.1;branch={new_branch()}"),
            ("Max-Forwards", "70"),
            ("To", "<sip:bob@example.com>"),
            ("From", f"<sip:a@x>;tag={new_tag()}"),
            ("Call-ID", new_call_id("x")),
            ("CSeq", "1 OPTIONS"),
        ],
    )
    assert request.ruri.user == "bob" and check_request(request) is None
    data = request.to_bytes()
    assert data.startswith(b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1")
    assert data.endswith(b"Content-Length: 0\r\n\r\n")
    assert parse_message(data).header_items() == [*request.header_items(), ("Content-Length", "0")]
    with pytest.raises(ValueError):
        request.set("Subject", "x\r\nEvil: 1")
    with pytest.raises(ValueError):
        request.add("Bad Name", "x")
    with pytest.raises(ValueError):
        SipRequest("IN VITE", "sip:x")
    with pytest.raises(ValueError):
        SipResponse(99)
    with pytest.raises(ValueError):
        SipResponse(200, "OK\r\nX: y")
    assert SipResponse(404).reason == "Not Found" and SipResponse(299).reason == "Unknown"


def test_identifiers() -> None:
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100
    assert all(re.fullmatch(r"z9hG4bK[0-9a-f]{16}", b) for b in branches)
    assert re.fullmatch(r"[0-9a-f]{12}", new_tag())
    assert re.fullmatch(r"[0-9a-f]{32}", new_call_id())
    assert new_call_id("pbx.example.com").endswith("@pbx.example.com")


# ------------------------------------------------------------------- make_response


def test_make_response_copies_text_as_received() -> None:
    data = wire(
        "INVITE sip:b@x SIP/2.0",
        "v:  SIP/2.0/UDP a;branch=z9hG4bK1 , SIP/2.0/UDP b;branch=z9hG4bK2",
        "Via: SIP/2.0/UDP c;branch=z9hG4bK3",
        "f: Alice  <sip:a@x> ; tag = 1",
        "t:   sip:b@x",
        "i: weird@ID",
        "cseq:  0009   INVITE",
        "Max-Forwards: 70",
        "Record-Route: <sip:rr;lr>",
        "l: 0",
    )
    request = req(data)
    response = make_response(request, 180, to_tag="tt")
    assert lines_of(response) == [
        "SIP/2.0 180 Ringing",
        "Via: SIP/2.0/UDP a;branch=z9hG4bK1 , SIP/2.0/UDP b;branch=z9hG4bK2",
        "Via: SIP/2.0/UDP c;branch=z9hG4bK3",
        "From: Alice  <sip:a@x> ; tag = 1",
        "To: sip:b@x;tag=tt",
        "Call-ID: weird@ID",
        "CSeq: 0009   INVITE",
        "Content-Length: 0",
    ]
    again = parse_message(response.to_bytes())
    assert again.to is not None and again.to.tag == "tt"


def test_make_response_keeps_existing_to_tag_and_adds_extras() -> None:
    request = req(wire(*INVITE_LINES[:3], "To: <sip:b@x>;tag=old", *INVITE_LINES[4:], body=SDP))
    response = make_response(
        request, 200, "Fine", to_tag="new", headers=[("m", "<sip:b@192.0.2.2>")], body=b"abc"
    )
    assert response.get("To") == "<sip:b@x>;tag=old"
    assert response.reason == "Fine" and response.get("Contact") == "<sip:b@192.0.2.2>"
    assert response.to_bytes().endswith(b"Content-Length: 3\r\n\r\nabc")
    assert make_response(request, 100).get("To") == "<sip:b@x>;tag=old"


def test_make_response_with_unreadable_to_copies_it_untouched() -> None:
    request = req(
        wire(
            "INVITE sip:b@x SIP/2.0",
            "Via: SIP/2.0/UDP a",
            'To: "open <sip:b@x>',
            "Call-ID: 1",
            "CSeq: 1 INVITE",
            "l: 0",
        )
    )
    response = make_response(request, 400, to_tag="t")
    assert response.get("To") == '"open <sip:b@x>'
    assert response.get("From") is None and response.call_id == "1"


# -------------------------------------------------------------------- check_request

GOOD = (
    "OPTIONS sip:bob@example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
    "Max-Forwards: 70",
    "To: <sip:bob@example.com>",
    "From: <sip:alice@example.com>;tag=1",
    "Call-ID: c1",
    "CSeq: 1 OPTIONS",
    "Content-Length: 0",
)


def variant(
    replace: dict[str, str | None], start: str | None = None, extra: tuple[str, ...] = ()
) -> bytes:
    """GOOD with headers replaced (None: removed), another start line, extra headers."""
    lines = [start or GOOD[0]]
    for line in GOOD[1:]:
        name = line.split(":", 1)[0]
        if name in replace:
            if replace[name] is not None:
                lines.append(f"{name}: {replace[name]}")
        else:
            lines.append(line)
    return wire(*lines, *extra)


CHECKS: list[tuple[str, bytes, tuple[int, str] | None]] = [
    ("good", variant({}), None),
    ("no-max-forwards", variant({"Max-Forwards": None}), None),
    ("max-forwards-0", variant({"Max-Forwards": "0"}), None),
    ("tel-ruri", variant({}, "OPTIONS tel:+4930123 SIP/2.0"), None),
    ("sips-ruri", variant({}, "OPTIONS sips:bob@example.com SIP/2.0"), None),
    ("version", variant({}, "OPTIONS sip:bob@example.com SIP/3.0"), (505, "Version Not Supported")),
    ("no-via", variant({"Via": None}), (400, "Missing Via header")),
    ("no-to", variant({"To": None}), (400, "Missing To header")),
    ("no-from", variant({"From": None}), (400, "Missing From header")),
    ("no-call-id", variant({"Call-ID": None}), (400, "Missing Call-ID header")),
    ("no-cseq", variant({"CSeq": None}), (400, "Missing CSeq header")),
    ("empty-call-id", variant({"Call-ID": ""}), (400, "Bad Call-ID header")),
    ("spaced-call-id", variant({"Call-ID": "a b"}), (400, "Bad Call-ID header")),
    ("cseq-method", variant({"CSeq": "1 INVITE"}), (400, "CSeq method does not match")),
    ("cseq-case", variant({"CSeq": "1 options"}), (400, "CSeq method does not match")),
    ("cseq-big", variant({"CSeq": "2147483648 OPTIONS"}), (400, "Bad CSeq header")),
    ("cseq-max", variant({"CSeq": "2147483647 OPTIONS"}), None),
    ("cseq-negative", variant({"CSeq": "-1 OPTIONS"}), (400, "Bad CSeq header")),
    ("cseq-text", variant({"CSeq": "one OPTIONS"}), (400, "Bad CSeq header")),
    ("mf-negative", variant({"Max-Forwards": "-1"}), (400, "Bad Max-Forwards header")),
    ("mf-text", variant({"Max-Forwards": "ten"}), (400, "Bad Max-Forwards header")),
    ("expires-text", variant({}, extra=("Expires: never",)), (400, "Bad Expires header")),
    ("expires-huge", variant({}, extra=("Expires: " + "9" * 40,)), None),
    ("content-length-text", variant({"Content-Length": "x"}), None),  # parse rejects first
    ("bad-to-uri", variant({"To": "<sip:bob@exa mple.com>"}), (400, "Bad To header")),
    ("bad-from", variant({"From": '"x <sip:a@b>;tag=1'}), (400, "Bad From header")),
    ("to-other-scheme", variant({"To": "<isbn:2983792873>"}), None),
    ("bad-via", variant({"Via": "SIP/2.0/UDP host;;"}), (400, "Bad Via header")),
    ("bad-contact", variant({}, extra=("Contact: <sip:a@b c>",)), (400, "Bad Contact header")),
    ("star-contact", variant({}, extra=("Contact: *",)), None),
    (
        "ruri-scheme",
        variant({}, "OPTIONS http://example.com SIP/2.0"),
        (416, "Unsupported URI Scheme"),
    ),
    ("ruri-bad", variant({}, "OPTIONS sip:bob@ SIP/2.0"), (400, "Bad Request-URI")),
    (
        "ruri-headers",
        variant({}, "OPTIONS sip:bob@example.com?Subject=x SIP/2.0"),
        (400, "Bad Request-URI"),
    ),
    ("two-to", variant({}, extra=("To: <sip:x@y>",)), (400, "Multiple To headers")),
    ("two-call-id", variant({}, extra=("i: c2",)), (400, "Multiple Call-ID headers")),
    ("two-mf", variant({}, extra=("Max-Forwards: 5",)), (400, "Multiple Max-Forwards headers")),
]


@pytest.mark.parametrize(("name", "data", "expected"), CHECKS, ids=[c[0] for c in CHECKS])
def test_check_request(name: str, data: bytes, expected: tuple[int, str] | None) -> None:
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        assert name == "content-length-text" and exc.status == 400
        return
    assert isinstance(msg, SipRequest)
    assert check_request(msg) == expected


def test_check_request_schemes_and_body_length() -> None:
    msg = req(variant({}, "OPTIONS tel:+4930123 SIP/2.0"))
    assert check_request(msg, schemes=frozenset({"sip", "sips"})) == (416, "Unsupported URI Scheme")
    built = req(variant({"Content-Length": None}))
    built.set("Content-Length", "10")  # e.g. a message put together by hand
    assert check_request(built) == (400, "Body shorter than Content-Length")


# ---------------------------------------------------------------------------- fuzz

CORPUS = TORTURE_CORPUS


def _seeds() -> list[bytes]:
    seeds = [INVITE, RESPONSE, variant({})]
    for corpus in ("rfc4475", "rfc5118"):
        manifest = CORPUS / corpus / "manifest.json"
        for case in json.loads(manifest.read_text())["cases"]:
            seeds.append((CORPUS / corpus / case["file"]).read_bytes())
    return seeds


SEEDS = _seeds()
STRUCTURED = (
    "vias",
    "top_via",
    "call_id",
    "cseq",
    "from_",
    "to",
    "contacts",
    "routes",
    "record_routes",
    "content_length",
    "max_forwards",
    "expires",
)
SPECIAL = [
    b"\r\n",
    b"\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b'"',
    b"<",
    b">",
    b"\\",
    b"[",
    b"]",
    b"%",
    b"=",
    b"@",
    b"\x00",
    b"\xff",
    b"\r\n ",
    b"\r\n\r\n",
    b"SIP/2.0",
    b"9" * 12,
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.integers(0, 4))
        if kind == 0:
            data[pos:pos] = draw(st.sampled_from(SPECIAL))
        elif kind == 1:
            del data[pos : pos + draw(st.integers(1, 20))]
        elif kind == 2 and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif kind == 3:
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def exercise(data: bytes, max_size: int = 65535) -> None:
    """Everything a server does with untrusted bytes raises SipParseError or nothing."""
    try:
        msg: SipMessage | None = parse_message(data, max_size=max_size)
        ok = True
    except SipParseError as exc:
        assert 400 <= exc.status <= 599
        msg, ok = exc.message, False
    if msg is None:
        return
    for prop in STRUCTURED:
        try:
            value = getattr(msg, prop)
        except SipParseError as exc:
            assert exc.status == 400
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            str(item)
            with contextlib.suppress(SipParseError):
                getattr(item, "uri", None)
    if isinstance(msg, SipRequest):
        with contextlib.suppress(SipParseError):
            msg.ruri  # noqa: B018
        result = check_request(msg)
        assert result is None or (isinstance(result[0], int) and isinstance(result[1], str))
        response = make_response(msg, result[0] if result else 200, to_tag="x")
        parse_message(response.to_bytes())  # our own answers always parse
    msg.to_bytes()
    if ok:
        msg.set("X-Fuzz", "1")
        again = parse_message(msg.to_bytes())
        assert [h for h in again.header_items() if h[0] != "Content-Length"] == [
            h for h in msg.header_items() if h[0] != "Content-Length"
        ]
        assert again.body == msg.body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    exercise(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300).map(lambda b: b"INVITE sip:a@b SIP/2.0\r\n" + b))
def test_fuzz_random_headers(data: bytes) -> None:
    exercise(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzz_mutated_messages(data: bytes) -> None:
    exercise(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.integers(16, 1200))
def test_fuzz_small_size_limits(data: bytes, max_size: int) -> None:
    exercise(data, max_size)


@pytest.mark.parametrize("seed", SEEDS, ids=range(len(SEEDS)))
def test_every_seed_survives_exercise(seed: bytes) -> None:
    exercise(seed)


def test_make_request_builds_a_uac_request_with_one_host_formatter() -> None:
    request = make_request(
        "OPTIONS",
        "sip:100@[2001:db8::5]:5070",
        via=via_value("udp", "2001:db8::1", 5060),
        from_="<sip:qualify@[2001:db8::1]>;tag=f1",
        to="<sip:100@[2001:db8::5]:5070>",
        call_id="c1",
        cseq=7,
        contact=f"<{contact_uri('2001:db8::1', 5060, 'UDP', 'switch')}>",
        routes=("<sip:[2001:db8::9];lr>",),
        headers=(("User-Agent", "test"),),
        body=b"x=1",
        content_type="text/plain",
    )
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, SipRequest)
    via = parsed.top_via
    assert via is not None and via.host == "2001:db8::1" and via.port == 5060
    assert via.branch is not None and via.branch.startswith("z9hG4bK") and "rport" in via.params
    assert parsed.cseq == (7, "OPTIONS") and parsed.max_forwards == 70
    assert parsed.get("Contact") == "<sip:switch@[2001:db8::1]:5060;transport=udp>"
    assert parsed.get_all("Route") == ["<sip:[2001:db8::9];lr>"]
    assert parsed.get("Content-Type") == "text/plain" and parsed.body == b"x=1"
    assert [name for name, _ in parsed.headers][:6] == [
        "Via",
        "Max-Forwards",
        "From",
        "To",
        "Call-ID",
        "CSeq",
    ]
    with pytest.raises(ValueError):
        make_request(
            "OPTIONS",
            "sip:a@b",
            via="SIP/2.0/UDP h",
            from_="x\r\nEvil: 1",
            to="y",
            call_id="c",
            cseq=1,
        )
