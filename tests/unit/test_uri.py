"""SipUri / parse_uri: RFC 3261 19.1, RFC 3966 tel, RFC 5118 IPv6, RFC 3261 19.1.4 equality."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softswitch.sip.uri import (
    SipParseError,
    SipUri,
    format_host,
    parse_host_port,
    parse_uri,
    unescape,
)

# text -> (scheme, user, password, host, port, params, headers)
PARSE_CASES: list[tuple[str, tuple[object, ...]]] = [
    ("sip:alice@atlanta.example.com", ("sip", "alice", None, "atlanta.example.com", None, {}, {})),
    (
        "sips:bob@biloxi.example.com:5061;transport=tcp",
        ("sips", "bob", None, "biloxi.example.com", 5061, {"transport": "tcp"}, {}),
    ),
    (
        "sip:alice:secretword@atlanta.com;transport=tcp",
        ("sip", "alice", "secretword", "atlanta.com", None, {"transport": "tcp"}, {}),
    ),
    (
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        ("sip", "+1-212-555-1212", "1234", "gateway.com", None, {"user": "phone"}, {}),
    ),
    ("sip:192.0.2.4", ("sip", None, None, "192.0.2.4", None, {}, {})),
    (
        "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
        (
            "sip",
            None,
            None,
            "atlanta.com",
            None,
            {"method": "REGISTER"},
            {"to": "alice%40atlanta.com"},
        ),
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        (
            "sip",
            "alice",
            None,
            "atlanta.com",
            None,
            {},
            {"subject": "project%20x", "priority": "urgent"},
        ),
    ),
    ("sip:proxy.example.com;lr", ("sip", None, None, "proxy.example.com", None, {"lr": None}, {})),
    (
        "SIP:Alice@Example.COM;Transport=UDP",
        ("sip", "Alice", None, "Example.COM", None, {"transport": "UDP"}, {}),
    ),
    ("sip:[2001:db8::10]", ("sip", None, None, "2001:db8::10", None, {}, {})),
    ("sip:[2001:db8::10]:5070", ("sip", None, None, "2001:db8::10", 5070, {}, {})),
    ("sip:user@[2001:db8::10:5070]", ("sip", "user", None, "2001:db8::10:5070", None, {}, {})),
    (
        "sip:user@[2001:db8:::192.0.2.1]",
        ("sip", "user", None, "2001:db8:::192.0.2.1", None, {}, {}),
    ),
    (
        "sip:user;par=u%40example.net@example.com",
        ("sip", "user;par=u%40example.net", None, "example.com", None, {}, {}),
    ),
    ("sip:%61lice@atlanta.com", ("sip", "%61lice", None, "atlanta.com", None, {}, {})),
    (
        "sip:host_with_underscore.example.com",
        ("sip", None, None, "host_with_underscore.example.com", None, {}, {}),
    ),
    ("sip:u@h:0", ("sip", "u", None, "h", 0, {}, {})),
    ("sip:u@h:65535", ("sip", "u", None, "h", 65535, {}, {})),
    ("tel:+1-201-555-0123", ("tel", "+1-201-555-0123", None, "", None, {}, {})),
    (
        "tel:7042;phone-context=example.com",
        ("tel", "7042", None, "", None, {"phone-context": "example.com"}, {}),
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse(text: str, expected: tuple[object, ...]) -> None:
    uri = parse_uri(text)
    got = (uri.scheme, uri.user, uri.password, uri.host, uri.port, uri.params, uri.headers)
    assert got == expected


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_str_round_trip(text: str, expected: tuple[object, ...]) -> None:
    uri = parse_uri(text)
    again = parse_uri(str(uri))
    assert str(again) == str(uri)
    assert again == uri


@pytest.mark.parametrize(
    ("text", "scheme", "opaque"),
    [
        (
            "nobodyKnowsThisScheme:totallyopaquecontent",
            "nobodyknowsthisscheme",
            "totallyopaquecontent",
        ),
        ("soap.beep://192.0.2.103:3002", "soap.beep", "//192.0.2.103:3002"),
        ("isbn:2983792873", "isbn", "2983792873"),
        ("http://www.example.com", "http", "//www.example.com"),
        (
            "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            "urn",
            "uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        ),
    ],
)
def test_other_schemes_are_absolute_uris(text: str, scheme: str, opaque: str) -> None:
    uri = parse_uri(text)
    assert (uri.scheme, uri.opaque, uri.is_sip) == (scheme, opaque, False)
    assert str(uri) == f"{scheme}:{opaque}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip",
        "sip:",
        "<sip:user@example.com>",
        "sip:user@example.com; lr",
        "sip:user@example.com ",
        "sip:2001:db8::10",
        "sip:user@",
        "sip:@host",
        "sip:user@host:",
        "sip:user@host:99999",
        "sip:user@host:5o60",
        "sip:user@[2001:db8::1",
        "sip:user@[]",
        "sip:user@[1.2.3.4]",
        "sip:user@[2001:db8::1]x",
        "sip:user@ho st",
        "sip:user@host;",
        "sip:user@host;;lr",
        "sip:user@host?",
        "sip:user@host?a",
        'sip:"quoted"@host',
        "sip:a\x00b@host",
        "1sip:host",
        "s p:host",
        "tel:",
        "tel:12 34",
        "tel:abc@x",
        "unknown:",
        ":nothing",
        "sip:user@host,other",
    ],
)
def test_malformed_uris_raise_400(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400 and info.value.message is None


# RFC 3261 19.1.4
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
    ("sip:[2001:db8::1]", "sip:[2001:DB8::1]"),
]
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;newparam=6"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_equivalent(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua == ub and ub == ua
    assert hash(ua) == hash(ub)


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_not_equivalent(a: str, b: str) -> None:
    assert parse_uri(a) != parse_uri(b)
    assert parse_uri(b) != parse_uri(a)


@pytest.mark.parametrize(
    ("text", "aor"),
    [
        ("sip:%61lice@AtLanTa.CoM;transport=tcp?x=y", "sip:alice@atlanta.com"),
        ("sips:bob@biloxi.com:5061;user=phone", "sips:bob@biloxi.com:5061"),
        ("sip:null-%00-null@example.com", "sip:null-\x00-null@example.com"),
        ("sip:[2001:DB8::1]", "sip:[2001:db8::1]"),
        ("tel:+1-201-555-0123;phone-context=x", "tel:+1-201-555-0123"),
        ("isbn:2983792873", "isbn:2983792873"),
    ],
)
def test_canonical_aor(text: str, aor: str) -> None:
    assert parse_uri(text).canonical_aor() == aor


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("%61lice", "alice"),
        ("I%20have%20spaces", "I have spaces"),
        ("%2561", "%61"),  # never recursively (RFC 4475 esc01)
        ("%ZK", "%ZK"),
        ("100%", "100%"),
        ("%00", "\x00"),
        ("plain", "plain"),
    ],
)
def test_unescape(text: str, plain: str) -> None:
    assert unescape(text) == plain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("example.com:5060", ("example.com", 5060)),
        ("192.0.2.1:5", ("192.0.2.1", 5)),
        ("[::1]", ("::1", None)),
        ("[::ffff:192.0.2.10]:19823", ("::ffff:192.0.2.10", 19823)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["", ":5060", "host:", "host:x", "[::1", "[::1]:", "a b", "[]"])
def test_parse_host_port_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_host_port(text)


def test_format_host_and_properties() -> None:
    assert format_host("2001:db8::1") == "[2001:db8::1]" and format_host("h") == "h"
    uri = parse_uri("sip:bob@[2001:db8::1]:5062;transport=TcP")
    assert uri.host_port == "[2001:db8::1]:5062" and uri.transport == "TCP" and uri.is_sip
    assert parse_uri("sip:bob@h").transport is None


def test_build_and_copy() -> None:
    uri = SipUri("sip", "bob", "biloxi.example.com", 5060, {"transport": "tcp", "lr": None})
    assert str(uri) == "sip:bob@biloxi.example.com:5060;transport=tcp;lr"
    clone = uri.copy()
    clone.params["maddr"] = "192.0.2.1"
    assert "maddr" not in uri.params
    assert str(SipUri("tel", "+4930123")) == "tel:+4930123"
    assert repr(uri) == "SipUri('sip:bob@biloxi.example.com:5060;transport=tcp;lr')"
    assert (uri == "sip:bob@biloxi.example.com") is False


URI_ALPHABET = 'sipteluxhost:@[];?=&%.-_+0123456789aAfF/ "<>,#*'


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda prefix, rest: prefix + rest,
            st.sampled_from(["sip:", "sips:", "tel:", "SIP:", "x-y.z:", "sip:u@[", "sip:u@h;"]),
            st.text(alphabet=URI_ALPHABET, max_size=40),
        ),
    )
)
def test_fuzz_only_sip_parse_error_and_stable_round_trip(text: str) -> None:
    try:
        uri = parse_uri(text)
    except SipParseError as exc:
        assert exc.status == 400
        return
    text2 = str(uri)
    again = parse_uri(text2)
    assert again == uri
    assert str(again) == text2
    uri.canonical_aor()
