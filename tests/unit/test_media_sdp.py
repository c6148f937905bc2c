"""SDP parsing/serialisation and offer/answer negotiation."""

from __future__ import annotations

import pytest

from media.sdp import (
    LocalOrigin,
    NegotiationError,
    SdpError,
    answer_direction,
    answer_offer,
    create_offer,
    parse_sdp,
    process_answer,
    with_direction,
)

RFC4566_EXAMPLE = """v=0
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
s=SDP Seminar
i=A Seminar on the session description protocol
u=http://www.example.com/seminars/sdp.pdf
e=j.doe@example.com (Jane Doe)
c=IN IP4 224.2.17.12/127
t=2873397496 2873404696
a=recvonly
m=audio 49170 RTP/AVP 0
m=video 51372 RTP/AVP 99
a=rtpmap:99 h263-1998/90000
"""

PHONE_OFFER = (
    "v=0\r\n"
    "o=- 1234 1 IN IP4 192.0.2.10\r\n"
    "s=call\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 9 0 8 18 101\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)


def offer(media: str, session: str = "c=IN IP4 192.0.2.10\n", extra: str = "") -> str:
    return f"v=0\no=- 1 1 IN IP4 192.0.2.10\ns=-\n{session}t=0 0\n{extra}{media}"


def test_parse_rfc4566_example_and_round_trip() -> None:
    sdp = parse_sdp(RFC4566_EXAMPLE)
    assert sdp.origin.username == "jdoe" and sdp.origin.session_version == 2890842807
    assert sdp.session_name == "SDP Seminar"
    assert sdp.connection is not None and sdp.connection.host == "224.2.17.12"
    assert sdp.direction == "recvonly"
    assert [m.media for m in sdp.media] == ["audio", "video"]
    assert sdp.media[1].rtpmaps() == {"99": ("h263-1998", 90000, 1)}
    again = parse_sdp(sdp.to_bytes())
    assert again.to_str() == sdp.to_str()
    assert again.other == sdp.other


def test_round_trip_is_byte_exact_for_canonical_input() -> None:
    assert parse_sdp(PHONE_OFFER).to_str() == PHONE_OFFER


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("o=- 1 1 IN IP4 1.2.3.4\n", "start with v="),
        ("v=1\no=- 1 1 IN IP4 1.2.3.4\n", "version"),
        ("v=0\ns=x\n", "no o="),
        ("v=0\no=- 1 x IN IP4 1.2.3.4\n", "bad o="),
        ("v=0\no=- 1 1 IN IP4 1.2.3.4\nhello\n", "not an SDP line"),
        ("v=0\no=- 1 1 IN IP4 1.2.3.4\nv=0\n", "duplicate"),
        (offer("m=audio 70000 RTP/AVP 0\n"), "bad port"),
        (offer("m=audio x RTP/AVP 0\n"), "bad port"),
        (offer("m=audio 4000/x RTP/AVP 0\n"), "port count"),
        (offer("m=audio\n"), "bad m="),
        (offer("m=audio 4000 RTP/AVP 0\n", session=""), "no c= line"),
        (offer("m=audio 4000 RTP/AVP 0\n", session="c=IN IP4 300.1.1.1\n"), "bad IP4"),
        (offer("m=audio 4000 RTP/AVP 0\n", session="c=IN IP7 1.1.1.1\n"), "unknown address"),
        (offer("m=audio 4000 RTP/AVP 0\n", session="c=IN IP4\n"), "bad c="),
        (offer("m=audio 4000 RTP/AVP 0\n", session="c=IN IP6 ::g\n"), "bad IP6"),
    ],
)
def test_malformed_sdp_raises(text: str, fragment: str) -> None:
    with pytest.raises(SdpError, match=fragment):
        parse_sdp(text)


def test_binary_garbage_is_an_sdp_error() -> None:
    for data in (b"\xff\xfe\x00", b"v=0\r\n\x00\x01", bytes(range(256))):
        with pytest.raises(SdpError):
            parse_sdp(data)


@pytest.mark.parametrize(
    ("session_c", "media_c", "expected_host"),
    [
        ("c=IN IP4 192.0.2.1\n", "", "192.0.2.1"),
        ("c=IN IP4 192.0.2.1\n", "c=IN IP4 198.51.100.7\n", "198.51.100.7"),
        ("", "c=IN IP6 2001:db8::1\n", "2001:db8::1"),
        ("c=IN IP6 2001:db8::5\n", "", "2001:db8::5"),
        ("c=IN IP4 pbx.example.com\n", "", "pbx.example.com"),
    ],
)
def test_connection_at_session_or_media_level(
    session_c: str, media_c: str, expected_host: str
) -> None:
    sdp = parse_sdp(offer(f"m=audio 4000 RTP/AVP 0\n{media_c}", session=session_c))
    _, streams = answer_offer(sdp, address="203.0.113.5", port=30000)
    assert streams[0].remote_host == expected_host
    assert streams[0].remote_port == 4000


def test_answer_to_phone_offer() -> None:
    answer, streams = answer_offer(parse_sdp(PHONE_OFFER), address="203.0.113.5", port=30000)
    text = answer.to_str()
    assert "c=IN IP4 203.0.113.5\r\n" in text
    assert "m=audio 30000 RTP/AVP 0 101\r\n" in text
    assert "a=fmtp:101 0-15\r\n" in text
    assert "a=ptime:20\r\n" in text and "a=sendrecv\r\n" in text
    assert "G729" not in text and "G722" not in text
    s = streams[0]
    assert s.accepted and s.codec is not None and s.codec.name == "PCMU"
    assert s.telephone_event is not None and s.telephone_event.payload_type == 101
    assert (s.remote_host, s.remote_port, s.local_port) == ("192.0.2.10", 40000, 30000)
    assert s.sends and s.receives
    assert parse_sdp(answer.to_bytes()).media[0].formats == ["0", "101"]


@pytest.mark.parametrize(
    ("formats", "rtpmaps", "codecs", "prefer_offer", "expected"),
    [
        ("0 8", "", ("PCMU", "PCMA"), True, ("PCMU", 0)),
        ("8 0", "", ("PCMU", "PCMA"), True, ("PCMA", 8)),
        ("8 0", "", ("PCMU", "PCMA"), False, ("PCMU", 0)),
        ("8 0", "", ("PCMU",), True, ("PCMU", 0)),
        ("18 8", "a=rtpmap:18 G729/8000\n", ("PCMU", "PCMA"), True, ("PCMA", 8)),
        ("96", "a=rtpmap:96 pcmu/8000\n", ("PCMU",), True, ("PCMU", 96)),  # dynamic, any case
        ("0", "a=rtpmap:0 G729/8000\n", ("PCMU",), True, ("PCMU", 0)),  # static PT wins
    ],
)
def test_codec_choice(
    formats: str,
    rtpmaps: str,
    codecs: tuple[str, ...],
    prefer_offer: bool,
    expected: tuple[str, int],
) -> None:
    sdp = parse_sdp(offer(f"m=audio 4000 RTP/AVP {formats}\n{rtpmaps}"))
    answer, streams = answer_offer(
        sdp, address="203.0.113.5", port=30000, codecs=codecs, prefer_offer_order=prefer_offer
    )
    codec = streams[0].codec
    assert codec is not None and (codec.name, codec.payload_type) == expected
    assert answer.media[0].formats == [str(expected[1])]


@pytest.mark.parametrize(
    "media",
    [
        "m=audio 4000 RTP/AVP 18 9\na=rtpmap:18 G729/8000\n",
        "m=audio 4000 RTP/AVP 101\na=rtpmap:101 telephone-event/8000\n",
        "m=audio 4000 RTP/AVP 96\na=rtpmap:96 PCMU/16000\n",
        "m=audio 4000 RTP/SAVP 0 8\n",
        "m=video 4000 RTP/AVP 31\n",
        "m=image 4000 udptl t38\n",
        "m=audio 0 RTP/AVP 0\n",
        "",
    ],
)
def test_nothing_acceptable_is_488(media: str) -> None:
    with pytest.raises(NegotiationError) as info:
        answer_offer(parse_sdp(offer(media)), address="203.0.113.5", port=30000)
    assert info.value.status == 488


def test_rejected_streams_keep_their_place() -> None:
    media = (
        "m=video 5000 RTP/AVP 31\n"
        "m=audio 4000 RTP/SAVP 0\n"
        "m=audio 4002 RTP/AVP 0 8\n"
        "m=image 6000 udptl t38\n"
        "m=audio 4004 RTP/AVP 0\n"
        "m=audio 0 RTP/AVP 0\n"
    )
    answer, streams = answer_offer(parse_sdp(offer(media)), address="203.0.113.5", port=30000)
    assert [(m.media, m.port, m.proto) for m in answer.media] == [
        ("video", 0, "RTP/AVP"),
        ("audio", 0, "RTP/SAVP"),
        ("audio", 30000, "RTP/AVP"),
        ("image", 0, "udptl"),
        ("audio", 0, "RTP/AVP"),  # only one audio stream is anchored
        ("audio", 0, "RTP/AVP"),
    ]
    assert [s.accepted for s in streams] == [False, False, True, False, False, False]
    assert answer.media[3].formats == ["t38"]
    assert parse_sdp(answer.to_bytes()).media[0].port == 0  # rejected streams need no c=


@pytest.mark.parametrize(
    ("offered", "wanted", "expected"),
    [
        ("sendrecv", "sendrecv", "sendrecv"),
        ("sendonly", "sendrecv", "recvonly"),
        ("recvonly", "sendrecv", "sendonly"),
        ("inactive", "sendrecv", "inactive"),
        ("sendrecv", "sendonly", "sendonly"),
        ("sendrecv", "recvonly", "recvonly"),
        ("sendrecv", "inactive", "inactive"),
        ("sendonly", "sendonly", "inactive"),
        ("recvonly", "recvonly", "inactive"),
        ("sendonly", "recvonly", "recvonly"),
    ],
)
def test_answer_direction_table(offered: str, wanted: str, expected: str) -> None:
    assert answer_direction(offered, wanted) == expected


@pytest.mark.parametrize(
    ("session_attr", "media_attr", "conn", "our_dir", "remote_hold", "remote_host"),
    [
        ("", "a=sendonly\n", "192.0.2.10", "recvonly", True, "192.0.2.10"),
        ("a=sendonly\n", "", "192.0.2.10", "recvonly", True, "192.0.2.10"),
        ("a=sendonly\n", "a=sendrecv\n", "192.0.2.10", "sendrecv", False, "192.0.2.10"),
        ("", "a=inactive\n", "192.0.2.10", "inactive", True, "192.0.2.10"),
        ("", "a=recvonly\n", "192.0.2.10", "sendonly", False, "192.0.2.10"),
        ("", "", "0.0.0.0", "recvonly", True, None),  # RFC 2543 hold
        ("", "a=recvonly\n", "0.0.0.0", "inactive", True, None),
    ],
)
def test_hold_offers(
    session_attr: str,
    media_attr: str,
    conn: str,
    our_dir: str,
    remote_hold: bool,
    remote_host: str | None,
) -> None:
    text = offer(f"m=audio 4000 RTP/AVP 0\n{media_attr}", f"c=IN IP4 {conn}\n", session_attr)
    answer, streams = answer_offer(parse_sdp(text), address="203.0.113.5", port=30000)
    s = streams[0]
    assert (s.direction, s.remote_hold, s.remote_host) == (our_dir, remote_hold, remote_host)
    assert answer.media[0].direction == our_dir


@pytest.mark.parametrize(
    ("fmtp", "expected"),
    [
        ("", "0-15"),
        ("a=fmtp:101 0-16\n", "0-16"),
        ("a=fmtp:101 0-15,66,70\n", "0-15"),
        ("a=fmtp:101 0-255\n", "0-16"),
        ("a=fmtp:101 1,3-5, 7\n", "1,3-5,7"),
    ],
)
def test_telephone_event_fmtp(fmtp: str, expected: str) -> None:
    media = f"m=audio 4000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\n{fmtp}"
    _, streams = answer_offer(parse_sdp(offer(media)), address="203.0.113.5", port=30000)
    ev = streams[0].telephone_event
    assert ev is not None and ev.fmtp == expected


def test_telephone_event_at_other_rate_is_dropped() -> None:
    media = "m=audio 4000 RTP/AVP 0 97\na=rtpmap:97 telephone-event/48000\n"
    answer, streams = answer_offer(parse_sdp(offer(media)), address="203.0.113.5", port=30000)
    assert streams[0].telephone_event is None
    assert answer.media[0].formats == ["0"]


def test_ipv6_anchor_address() -> None:
    answer, _ = answer_offer(parse_sdp(PHONE_OFFER), address="2001:db8::53", port=30000)
    text = answer.to_str()
    assert "c=IN IP6 2001:db8::53\r\n" in text and "IN IP6 2001:db8::53\r\n" in text


def test_offer_and_process_answer() -> None:
    ours = create_offer(address="203.0.113.5", port=30000, codecs=("PCMA", "PCMU"))
    text = ours.to_str()
    assert "m=audio 30000 RTP/AVP 8 0 101\r\n" in text
    assert "a=fmtp:101 0-16\r\n" in text
    # the far end answers with its own choice of what we offered
    answer, _ = answer_offer(parse_sdp(text), address="192.0.2.99", port=40000, codecs=("PCMU",))
    streams = process_answer(ours, parse_sdp(answer.to_bytes()))
    s = streams[0]
    assert s.codec is not None and s.codec.name == "PCMU"
    assert (s.remote_host, s.remote_port, s.local_port, s.direction) == (
        "192.0.2.99",
        40000,
        30000,
        "sendrecv",
    )
    assert s.telephone_event is not None and s.telephone_event.payload_type == 101


@pytest.mark.parametrize(
    "answer_media",
    [
        "m=audio 40000 RTP/AVP 18\na=rtpmap:18 G729/8000\n",  # codec we did not offer
        "m=audio 0 RTP/AVP 0\n",  # rejected
        "m=audio 40000 RTP/AVP 0\nm=audio 40002 RTP/AVP 0\n",  # stream count differs
    ],
)
def test_bad_answers(answer_media: str) -> None:
    ours = create_offer(address="203.0.113.5", port=30000, codecs=("PCMA",))
    with pytest.raises(NegotiationError):
        process_answer(ours, parse_sdp(offer(answer_media)))


def test_answer_putting_us_on_hold() -> None:
    ours = create_offer(address="203.0.113.5", port=30000)
    streams = process_answer(ours, parse_sdp(offer("m=audio 4000 RTP/AVP 0\na=recvonly\n")))
    assert streams[0].direction == "sendonly" and not streams[0].remote_hold


def test_with_direction_and_origin_versioning() -> None:
    origin = LocalOrigin(address="203.0.113.5", session_id="42")
    ours = origin.stamp(create_offer(address="203.0.113.5", port=30000))
    assert ours.origin.session_version == 0
    assert origin.stamp(create_offer(address="203.0.113.5", port=30000)).origin.session_version == 0
    held = origin.stamp(with_direction(ours, "sendonly"))
    assert held.origin.session_version == 1
    assert held.media[0].direction == "sendonly"
    assert ours.media[0].direction == "sendrecv"  # the original is untouched
    resumed = origin.stamp(with_direction(held, "sendrecv"))
    assert resumed.origin.session_version == 2
    assert "o=- 42 2 IN IP4 203.0.113.5" in resumed.to_str()


def test_lenient_real_world_quirks() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1 \r\n"  # trailing blank
        "c=IN IP4 10.0.0.1\r\n"  # no s= and no t=
        "m=audio 4000 RTP/AVP 0 8 101\r\n"
        "a=rtpmap:101 telephone-event\r\n"  # no clock rate: unusable, not fatal
        "a=rtpmap:bogus\r\n"
        "a=ptime:twenty\r\n"
        "x=unknown line\r\n\r\n"
    )
    sdp = parse_sdp(text)
    assert sdp.times == ["0 0"]
    _, streams = answer_offer(sdp, address="203.0.113.5", port=30000)
    assert streams[0].telephone_event is None
    assert ("x", "unknown line") in sdp.media[0].other


@pytest.mark.parametrize(
    ("port", "direction"), [(0, "sendrecv"), (70000, "sendrecv"), (4000, "up")]
)
def test_bad_local_parameters(port: int, direction: str) -> None:
    with pytest.raises(ValueError):
        answer_offer(parse_sdp(PHONE_OFFER), address="203.0.113.5", port=port, direction=direction)
