"""StreamFramer: Content-Length framing, keep-alives and errors, fed in every possible split."""

from __future__ import annotations

import json

import pytest

from softswitch.sip.framing import (
    PING,
    FramedItem,
    FramingError,
    StreamFramer,
    minimal_response,
)
from tests.unit.torture_expectations import (
    CLOSED,
    TORTURE_CORPUS,
    TORTURE_STREAM,
    TORTURE_STREAM_REQUESTS,
    WAITS,
)

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@example.com>\r\n"
    b"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 12\r\n"
    b"\r\n"
    b"v=0\r\no=x\r\n\r\n"  # body ends in a blank line: must not confuse the framer
)
OPTIONS_COMPACT = (
    b"OPTIONS sip:carol@example.com SIP/2.0\r\n"
    b"v: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKx\r\n"
    b"i: 42@example\r\n"
    b"L :  0\r\n"
    b"\r\n"
)
RESPONSE = b"SIP/2.0 200 OK\r\nCONTENT-LENGTH: 3\r\nX-Content-Length: 7\r\n\r\nabc"


def feed_split(data: bytes, *cuts: int, framer: StreamFramer | None = None) -> list[FramedItem]:
    framer = framer or StreamFramer()
    out: list[FramedItem] = []
    start = 0
    for cut in (*cuts, len(data)):
        out += framer.feed(data[start:cut])
        start = cut
    return out


def feed_bytewise(data: bytes) -> list[FramedItem]:
    framer = StreamFramer()
    out: list[FramedItem] = []
    for i in range(len(data)):
        out += framer.feed(data[i : i + 1])
    return out


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        pytest.param(INVITE, [INVITE], id="one-message"),
        pytest.param(INVITE + OPTIONS_COMPACT, [INVITE, OPTIONS_COMPACT], id="two-messages"),
        pytest.param(RESPONSE, [RESPONSE], id="upper-case-name-and-decoy-header"),
        pytest.param(b"\r\n\r\n", [PING], id="ping"),
        pytest.param(b"\r\n\r\n\r\n\r\n", [PING, PING], id="two-pings"),
        pytest.param(b"\r\n", [], id="pong-alone"),
        pytest.param(b"\r\n" + INVITE, [INVITE], id="stray-crlf-before-message"),
        pytest.param(b"\r\n\r\n\r\n" + INVITE, [PING, INVITE], id="ping-then-crlf-then-message"),
        pytest.param(INVITE + b"\r\n\r\n" + RESPONSE, [INVITE, PING, RESPONSE], id="ping-between"),
        pytest.param(INVITE + b"\r\n" + RESPONSE, [INVITE, RESPONSE], id="crlf-between"),
        pytest.param(
            b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\n\r\n\r\n",
            [b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\n\r\n\r\n"],
            id="body-of-crlfs-is-body",
        ),
        pytest.param(
            b"OPTIONS sip:a@b SIP/2.0\r\nl:5\r\ncontent-length: 5\r\n\r\nhello",
            [b"OPTIONS sip:a@b SIP/2.0\r\nl:5\r\ncontent-length: 5\r\n\r\nhello"],
            id="duplicate-equal-length",
        ),
    ],
)
def test_frames_whole_and_bytewise(stream: bytes, expected: list[FramedItem]) -> None:
    assert StreamFramer().feed(stream) == expected
    assert feed_bytewise(stream) == expected


def test_two_messages_split_at_every_offset() -> None:
    stream = b"\r\n" + INVITE + b"\r\n\r\n" + OPTIONS_COMPACT
    expected = [INVITE, PING, OPTIONS_COMPACT]
    for cut in range(len(stream) + 1):
        assert feed_split(stream, cut) == expected, cut
    # and in three pieces, around the message boundary
    boundary = 2 + len(INVITE)
    for first in range(boundary - 8, boundary + 6):
        for second in range(first, len(stream) + 1, 7):
            assert feed_split(stream, first, second) == expected, (first, second)


def test_message_items_are_bytes_and_buffer_drains() -> None:
    framer = StreamFramer()
    items = framer.feed(INVITE + OPTIONS_COMPACT[:10])
    assert items == [INVITE] and type(items[0]) is bytes
    assert framer.buffered == 10
    assert framer.feed(OPTIONS_COMPACT[10:]) == [OPTIONS_COMPACT]
    assert framer.buffered == 0


def _request(headers: bytes, body: bytes = b"") -> bytes:
    return (
        b"INVITE sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n"
        b"Call-ID: c1\r\nCSeq: 1 INVITE\r\n" + headers + b"\r\n" + body
    )


@pytest.mark.parametrize(
    ("stream", "status", "reason"),
    [
        (_request(b""), 400, "Missing Content-Length"),
        (_request(b"Content-Length: -1\r\n"), 400, "Bad Content-Length"),
        (_request(b"Content-Length: abc\r\n"), 400, "Bad Content-Length"),
        (_request(b"Content-Length: \r\n"), 400, "Bad Content-Length"),
        (_request(b"Content-Length: 1 2\r\n"), 400, "Bad Content-Length"),
        (_request(b"Content-Length: +5\r\n"), 400, "Bad Content-Length"),
        (_request("Content-Length: ٣\r\n".encode()), 400, "Bad Content-Length"),
        (_request(b"Content-Length: 99999999999999999999\r\n"), 400, "Bad Content-Length"),
        (_request(b"Content-Length: 1\r\nl: 2\r\n"), 400, "Conflicting Content-Length"),
        (_request(b"Content-Length: 99999999\r\n"), 413, "Request Entity Too Large"),
        (_request(b"Content-Length: 65535\r\n"), 413, "Request Entity Too Large"),
        (_request(b"X-Pad: " + b"a" * 20000 + b"\r\nContent-Length: 0\r\n"), 513, None),
        (b"INVITE sip:x SIP/2.0\r\nX: " + b"y" * 70000, 513, "Message Too Large"),
        (b"A" * 20000, 513, "Message Too Large"),
        (bytes(range(256)) * 100, 400, "Not a SIP Message"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "Not a SIP Message"),
        (b"\r\n\r\n\r\n\x00INVITE", 400, "Not a SIP Message"),
        (b" INVITE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", 400, "Not a SIP Message"),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, "Missing Content-Length"),
    ],
)
def test_errors(stream: bytes, status: int, reason: str | None) -> None:
    for items in (StreamFramer().feed(stream), feed_split(stream, len(stream) // 3)):
        error = items[-1]
        assert all(item is PING for item in items[:-1])
        assert isinstance(error, FramingError)
        assert error.status == status
        assert reason is None or error.reason == reason


def test_error_stops_the_framer_and_frees_the_buffer() -> None:
    framer = StreamFramer()
    items = framer.feed(INVITE + _request(b"Content-Length: abc\r\n") + INVITE)
    assert items[0] == INVITE and isinstance(items[1], FramingError)
    assert len(items) == 2
    assert framer.failed is items[1]
    assert framer.buffered == 0
    assert framer.feed(INVITE) == []


def test_endless_header_is_cut_at_the_limit() -> None:
    """A 10 MB header line without CRLF: the framer gives up early and holds little."""
    framer = StreamFramer(max_message_size=65535)
    chunk = b"INVITE sip:x SIP/2.0\r\nX-Junk: " + b"j" * 65536
    fed = 0
    error: FramedItem | None = None
    while fed < 10_000_000 and error is None:
        items = framer.feed(chunk)
        fed += len(chunk)
        assert framer.buffered <= 16384 + len(chunk)
        error = items[0] if items else None
    assert isinstance(error, FramingError) and error.status == 513
    assert fed <= 2 * len(chunk)


def test_body_limit_counts_headers_too() -> None:
    head = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 100\r\n\r\n"
    fits = StreamFramer(max_message_size=len(head) + 100)
    assert fits.feed(head + b"x" * 100) == [head + b"x" * 100]
    too_small = StreamFramer(max_message_size=len(head) + 99)
    [error] = too_small.feed(head)
    assert isinstance(error, FramingError) and error.status == 413


def test_header_limit_is_configurable() -> None:
    framer = StreamFramer(max_message_size=65535, max_header_size=64)
    [error] = framer.feed(INVITE)
    assert isinstance(error, FramingError) and error.status == 513


def test_waits_for_the_whole_body() -> None:
    framer = StreamFramer()
    head, body = INVITE[:-12], INVITE[-12:]
    assert framer.feed(head) == []
    assert framer.feed(body[:5]) == []
    assert framer.feed(body[5:]) == [INVITE]


def test_error_response_copies_the_dialog_headers() -> None:
    [error] = StreamFramer().feed(_request(b"Content-Length: 99999999\r\n"))
    assert isinstance(error, FramingError)
    response = error.response()
    assert response is not None
    lines = response.split(b"\r\n")
    assert lines[0] == b"SIP/2.0 413 Request Entity Too Large"
    assert b"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1" in lines
    assert b"From: <sip:a@example.com>;tag=1" in lines
    assert b"Call-ID: c1" in lines and b"CSeq: 1 INVITE" in lines
    [to] = [line for line in lines if line.startswith(b"To:")]
    assert to.startswith(b"To: <sip:bob@example.com>;tag=")
    assert response.endswith(b"Content-Length: 0\r\n\r\n")


@pytest.mark.parametrize(
    ("header_block", "answered"),
    [
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h\r\nf: <sip:x@y>;tag=2\r\n"
            b"t: <sip:a@b>;tag=3\r\ni: id\r\nCSeq: 2 OPTIONS",
            True,
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>;tag=2\r\n"
            b"To: <sip:a@b>\r\nCSeq: 2 OPTIONS",
            False,
        ),  # no Call-ID
        (
            b"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>;tag=2\r\n"
            b"To: <sip:a@b>\r\nCall-ID: i\r\nCSeq: 2 ACK",
            False,
        ),  # never answer an ACK
        (
            b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>;tag=2\r\n"
            b"To: <sip:a@b>\r\nCall-ID: i\r\nCSeq: 2 INVITE",
            False,
        ),  # a response
        (b"\x00\xffjunk\r\nVia: x", False),
        (b"", False),
    ],
)
def test_minimal_response_only_when_matchable(header_block: bytes, answered: bool) -> None:
    response = minimal_response(header_block, 400, "Bad Request")
    assert (response is not None) == answered
    if response is not None:
        assert response.startswith(b"SIP/2.0 400 Bad Request\r\n")
        assert b"To: <sip:a@b>;tag=3\r\n" in response  # an existing tag is kept
        assert b"Call-ID: id\r\n" in response


def test_folded_to_header_gets_its_tag_at_the_end() -> None:
    block = (
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>;tag=2\r\n"
        b"To: Bob\r\n <sip:a@b>\r\nCall-ID: i\r\nCSeq: 2 OPTIONS"
    )
    response = minimal_response(block, 400, "Bad Request")
    assert response is not None
    assert b"To: Bob <sip:a@b>;tag=" in response


def test_rejects_silly_limits() -> None:
    with pytest.raises(ValueError):
        StreamFramer(max_message_size=0)


# -- the RFC 4475 / RFC 5118 torture corpus on a stream ----------------------------------------


def _corpus() -> list[tuple[str, bytes]]:
    cases = []
    for corpus in ("rfc4475", "rfc5118"):
        manifest = json.loads((TORTURE_CORPUS / corpus / "manifest.json").read_text())
        for case in manifest["cases"]:
            cases.append((case["name"], (TORTURE_CORPUS / corpus / case["file"]).read_bytes()))
    return cases


CORPUS = _corpus()


@pytest.mark.parametrize(("name", "data"), CORPUS, ids=[name for name, _ in CORPUS])
def test_torture_case_frames_as_the_tcp_table_says(name: str, data: bytes) -> None:
    """Each corpus message alone on a stream, whole and byte by byte: the messages a stream
    carries come out exactly as sent; the others as TORTURE_STREAM says."""
    framer = StreamFramer()
    items = framer.feed(data)
    assert feed_bytewise(data) == items
    outcome = TORTURE_STREAM.get(name)
    messages = [item for item in items if isinstance(item, bytes)]
    errors = [item for item in items if isinstance(item, FramingError)]
    if outcome is None:
        assert items == [data] and framer.buffered == 0
    elif outcome == WAITS:
        assert items == [] and framer.buffered == len(data)
    else:
        assert outcome == CLOSED
        assert len(messages) == TORTURE_STREAM_REQUESTS.get(name, 0)
        position = 0
        for message in messages:  # each as sent, in order (CRLFs between them skipped)
            position = data.index(message, position) + len(message)
        assert len(errors) == 1 and items[-1] is errors[0] and errors[0].status == 400
