"""Header names and structured values: Via, name-addr, params, comma lists, CSeq."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softswitch.sip.headers import (
    COMPACT_FORMS,
    NameAddr,
    SipParseError,
    Via,
    canonical_name,
    is_token,
    parse_cseq,
    parse_name_addr,
    parse_name_addrs,
    parse_params,
    parse_uint,
    parse_via,
    parse_vias,
    quote_display_name,
    split_comma_list,
)
from softswitch.sip.uri import SipUri

# ------------------------------------------------------------------------------ names

COMPACT = [
    ("v", "Via"),
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("f", "From"),
    ("t", "To"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("k", "Supported"),
    ("s", "Subject"),
    ("e", "Content-Encoding"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("b", "Referred-By"),
    ("u", "Allow-Events"),
    ("x", "Session-Expires"),
    ("a", "Accept-Contact"),
    ("j", "Reject-Contact"),
    ("d", "Request-Disposition"),
    ("y", "Identity"),
    ("n", "Identity-Info"),
]


@pytest.mark.parametrize(("short", "long"), COMPACT)
def test_compact_forms(short: str, long: str) -> None:
    assert canonical_name(short) == long
    assert canonical_name(short.upper()) == long
    assert COMPACT_FORMS[short] == long


def test_compact_table_is_complete() -> None:
    assert dict(COMPACT) == COMPACT_FORMS


@pytest.mark.parametrize(
    ("name", "canon"),
    [
        ("via", "Via"),
        ("VIA", "Via"),
        ("vIa", "Via"),
        ("call-id", "Call-ID"),
        ("CALL-ID", "Call-ID"),
        ("Call-Id", "Call-ID"),
        ("cseq", "CSeq"),
        ("CSEQ", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("max-forwards", "Max-Forwards"),
        ("record-route", "Record-Route"),
        ("mime-version", "MIME-Version"),
        ("rack", "RAck"),
        ("rseq", "RSeq"),
        ("sip-etag", "SIP-ETag"),
        ("p-asserted-identity", "P-Asserted-Identity"),
        ("  Via  ", "Via"),
        ("X-Custom-Header", "X-Custom-Header"),
        ("NewFangledHeader", "NewFangledHeader"),
        ("C%6Fntact", "C%6Fntact"),
    ],
)
def test_canonical_name(name: str, canon: str) -> None:
    assert canonical_name(name) == canon


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("INVITE", True),
        ("RE%47IST%45R", True),
        ("!interesting-Method0123456789_*+`.%indeed'~", True),
        ("", False),
        ("a b", False),
        ("a:b", False),
        ('a"', False),
        ("é", False),
    ],
)
def test_is_token(text: str, ok: bool) -> None:
    assert is_token(text) is ok


# --------------------------------------------------------------------- comma lists


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("", []),
        ("   ", []),
        ("a", ["a"]),
        ("a, b ,c", ["a", "b", "c"]),
        ("a,,b", ["a", "", "b"]),
        ('"Doe, John" <sip:j@x>, <sip:k@y>', ['"Doe, John" <sip:j@x>', "<sip:k@y>"]),
        ("<sip:a@x;p=1,2>, <sip:b@y>", ["<sip:a@x;p=1,2>", "<sip:b@y>"]),
        ('"a \\" , b" <sip:x>, c', ['"a \\" , b" <sip:x>', "c"]),
        ('"unterminated, still one', ['"unterminated, still one']),
        ("<unterminated, x", ["<unterminated, x"]),
        ("SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b", ["SIP/2.0/UDP a;branch=1", "SIP/2.0/TCP b"]),
    ],
)
def test_split_comma_list(text: str, items: list[str]) -> None:
    assert split_comma_list(text) == items


# ------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("text", "params"),
    [
        ("tag=abc", {"tag": "abc"}),
        ("branch=z9hG4bK1;rport", {"branch": "z9hG4bK1", "rport": None}),
        ("  tag    = 1918181833n", {"tag": "1918181833n"}),
        ("Tag=X;LR", {"tag": "X", "lr": None}),
        ('x="a;b=c";y=2', {"x": '"a;b=c"', "y": "2"}),
        ('x="esc \\" quote"', {"x": '"esc \\" quote"'}),
        ("received=[2001:db8::9:255]", {"received": "[2001:db8::9:255]"}),
        ("maddr=239.255.255.1;ttl=15", {"maddr": "239.255.255.1", "ttl": "15"}),
        (
            '+sip.instance="<urn:uuid:1>";reg-id=1',
            {"+sip.instance": '"<urn:uuid:1>"', "reg-id": "1"},
        ),
    ],
)
def test_parse_params(text: str, params: dict[str, str | None]) -> None:
    assert parse_params(text) == params


@pytest.mark.parametrize(
    "text",
    [
        "",
        ";",
        "a;;b",
        "=x",
        "a=",
        "a= ",
        'a="unterminated',
        'a="x"y',
        "a b=c",
        "a=b c",
        'a=x"y',
        "a,b",
        'a="x" ;;',
    ],
)
def test_parse_params_rejects(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_params(text)
    assert info.value.status == 400


# ---------------------------------------------------------------------------- Via

VIA_CASES: list[tuple[str, tuple[object, ...]]] = [
    (
        "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
        ("SIP/2.0", "UDP", "pc33.atlanta.com", None, {"branch": "z9hG4bK776asdhds"}),
    ),
    (
        "SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport",
        (
            "SIP/2.0",
            "TCP",
            "client.atlanta.example.com",
            5060,
            {"branch": "z9hG4bK74bf9", "rport": None},
        ),
    ),
    ("sip/2.0/udp host", ("SIP/2.0", "UDP", "host", None, {})),
    (
        "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw",
        ("SIP/2.0", "UDP", "192.0.2.2", None, {"branch": "390skdjuw"}),
    ),
    (
        "SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8",
        ("SIP/2.0", "TCP", "spindle.example.com", None, {"branch": "z9hG4bK9ikj8"}),
    ),
    ("SIP/2.0/UDP host : 5070 ;branch=x", ("SIP/2.0", "UDP", "host", 5070, {"branch": "x"})),
    (
        "SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111",
        ("SIP/2.0", "UDP", "2001:db8::9:1", 6050, {"branch": "z9hG4bKas3-111"}),
    ),
    (
        "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111",
        (
            "SIP/2.0",
            "UDP",
            "2001:db8::9:1",
            None,
            {"received": "[2001:db8::9:255]", "branch": "z9hG4bKas3-111"},
        ),
    ),
    (
        "SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf",
        ("SIP/2.0", "SCTP", "t2.example.com", None, {"branch": "z9hG4bKklasjdhf"}),
    ),
    (
        "SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw",
        ("SIP/7.0", "UDP", "c.example.com", None, {"branch": "z9hG4bKkdjuw"}),
    ),
    (
        "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK;received=192.0.2.1;rport=5999",
        (
            "SIP/2.0",
            "WSS",
            "df7jal23ls0d.invalid",
            None,
            {"branch": "z9hG4bK", "received": "192.0.2.1", "rport": "5999"},
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), VIA_CASES)
def test_parse_via(text: str, expected: tuple[object, ...]) -> None:
    via = parse_via(text)
    assert (via.protocol, via.transport, via.host, via.port, via.params) == expected
    again = parse_via(str(via))
    assert again == via and str(again) == str(via)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP 192.0.2.15;;",
        "SIP/2.0/UDP host:port",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP 2001:db8::1",
        "SIP/2.0/UDP [2001:db8::1",
        "SIP/2.0/UDP host extra",
        "SIP//UDP host",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP host;=x",
        "SIP/2.0/U D P host",
        "SIP/2.0/UDP host;branch=a b",
        "/2.0/UDP host",
        "SIP/2.0/ host",
        "SIP/2.0/UDP ho@st",
    ],
)
def test_parse_via_rejects(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_via(text)
    assert info.value.status == 400


def test_parse_vias_splits_and_rejects_empty_elements() -> None:
    vias = parse_vias("SIP/2.0/UDP a;branch=z9hG4bK1 , SIP/2.0/TCP [::1]:5061")
    assert [(v.host, v.port) for v in vias] == [("a", None), ("::1", 5061)]
    with pytest.raises(SipParseError):
        parse_vias("SIP/2.0/UDP 192.0.2.15;;,;,,")  # RFC 4475 badinv01
    with pytest.raises(SipParseError):
        parse_vias("SIP/2.0/UDP a, , SIP/2.0/UDP b")


def test_via_properties_and_serialisation() -> None:
    via = parse_via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx;rport;received=[::2]")
    assert via.branch == "z9hG4bKx"
    assert via.received == "::2"
    assert via.rport is None and "rport" in via.params
    assert via.sent_by == "[2001:db8::1]:5060"
    via.params["rport"] = "40000"
    via.params["received"] = "2001:db8::99"
    assert via.rport == 40000
    assert str(via) == (
        "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx;rport=40000;received=2001:db8::99"
    )
    fresh = Via("tcp", "192.0.2.1", 5061)
    fresh.branch = "z9hG4bKnew"
    assert str(fresh) == "SIP/2.0/TCP 192.0.2.1:5061;branch=z9hG4bKnew"
    clone = fresh.copy()
    clone.params["rport"] = None
    assert "rport" not in fresh.params
    assert parse_via("SIP/2.0/UDP h;rport=x").rport is None
    assert repr(fresh) == "Via('SIP/2.0/TCP 192.0.2.1:5061;branch=z9hG4bKnew')"


# ------------------------------------------------------------------------ name-addr

NAME_ADDR_CASES: list[tuple[str, tuple[object, ...]]] = [
    (
        '"Alice Liddell" <sip:alice@atlanta.example.com>;tag=9fxced76sl',
        ("Alice Liddell", "sip:alice@atlanta.example.com", {"tag": "9fxced76sl"}),
    ),
    ("Bob <sip:bob@biloxi.example.com>", ("Bob", "sip:bob@biloxi.example.com", {})),
    ("<sip:carol@chicago.com>", (None, "sip:carol@chicago.com", {})),
    ("sip:carol@chicago.com;tag=887s", (None, "sip:carol@chicago.com", {"tag": "887s"})),
    (
        "sip:+19725552222@gw1.example.net;unknownparam",
        (None, "sip:+19725552222@gw1.example.net", {"unknownparam": None}),
    ),
    (
        "<sip:+19725552222@gw1.example.net;unknownparam>",
        (None, "sip:+19725552222@gw1.example.net;unknownparam", {}),
    ),
    (
        '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com> ; tag = 98asjd8',
        ('J Rosenberg \\"', "sip:jdrosen@example.com", {"tag": "98asjd8"}),
    ),
    (
        "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
        (None, "sip:vivekg@chair-dnrc.example.com", {"tag": "1918181833n"}),
    ),
    (
        "caller<sip:caller@example.com>;tag=323",
        ("caller", "sip:caller@example.com", {"tag": "323"}),
    ),
    (
        '"Watson, Thomas" < sip:t.watson@example.org >',
        ("Watson, Thomas", "sip:t.watson@example.org", {}),
    ),
    (
        "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
        ("Bell, Alexander", "sip:a.g.bell@example.com", {"tag": "43"}),
    ),
    ('"" <sip:x@y>', ("", "sip:x@y", {})),
    ('"%Z%45" <sip:resource@example.com>', ("%Z%45", "sip:resource@example.com", {})),
    (
        "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>",
        ("token1~` token2'+_ token3*%!.-", "sip:mundane@example.com", {}),
    ),
    (
        "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
        (None, "sip:user@example.com?Route=%3Csip:sip.example.com%3E", {}),
    ),
    ("isbn:2983792873", (None, "isbn:2983792873", {})),
    ('"Caller" <sip:caller@[2001:db8::1]>', ("Caller", "sip:caller@[2001:db8::1]", {})),
    (
        '<sip:a@b>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";expires=3600',
        (
            None,
            "sip:a@b",
            {
                "+sip.instance": '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"',
                "expires": "3600",
            },
        ),
    ),
    ('  "Tab\tSpace"\t<sip:a@b>\t;\ttag=x  ', ("Tab\tSpace", "sip:a@b", {"tag": "x"})),
]


@pytest.mark.parametrize(("text", "expected"), NAME_ADDR_CASES)
def test_parse_name_addr(text: str, expected: tuple[object, ...]) -> None:
    addr = parse_name_addr(text)
    assert (addr.display_name, str(addr.uri), addr.params) == expected
    again = parse_name_addr(str(addr))
    assert (again.display_name, str(again.uri), again.params) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        '"Mr. J. User <sip:j.user@example.com>',
        "<sip:a@b",
        "<>",
        "< >",
        '"x" sip:a@b',
        '"x" junk <sip:a@b>',
        "<sip:a@b> junk",
        "<sip:a@b>;",
        "<sip:a@b>;;",
        '"Joe" <sip:joe@example.org>;;;;',
        "<sip:a@b>;tag=",
        'Jo"e <sip:a@b>',
        ";tag=1",
        "a>b <sip:x>",
    ],
)
def test_parse_name_addr_rejects(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_name_addr(text)
    assert info.value.status == 400


@pytest.mark.parametrize(
    "text", ["<sip:a@b c>", "sip:a b@c", "<sip:user@example.com; lr>", "<http://x y>", "<:x>"]
)
def test_malformed_uri_inside_name_addr_fails_on_access(text: str) -> None:
    addr = parse_name_addr(text)
    with pytest.raises(SipParseError):
        addr.uri  # noqa: B018


def test_name_addr_lists_and_star() -> None:
    contacts = parse_name_addrs('"Doe, J" <sip:a@x>;q=0.7, <sip:b@y>;expires=60', True)
    assert [str(c.uri) for c in contacts] == ["sip:a@x", "sip:b@y"]
    assert contacts[0].display_name == "Doe, J" and contacts[1].params == {"expires": "60"}
    (star,) = parse_name_addrs("*", allow_star=True)
    assert star.is_star and str(star) == "*" and str(star.uri) == "*"
    with pytest.raises(SipParseError):  # without allow_star, "*" is a bad URI
        parse_name_addrs("*")[0].uri  # noqa: B018
    with pytest.raises(SipParseError):
        parse_name_addrs("<sip:a@x>, , <sip:b@y>")


def test_name_addr_tag_and_serialisation() -> None:
    addr = parse_name_addr("Bob <sip:bob@biloxi.example.com>")
    assert addr.tag is None
    addr.tag = "a6c85cf"
    assert str(addr) == '"Bob" <sip:bob@biloxi.example.com>;tag=a6c85cf'
    addr.tag = None
    assert str(addr) == '"Bob" <sip:bob@biloxi.example.com>'
    built = NameAddr(SipUri("sip", "alice", "atlanta.com"), 'Al "the" \\ice', {"tag": "1"})
    assert str(built) == '"Al \\"the\\" \\\\ice" <sip:alice@atlanta.com>;tag=1'
    assert parse_name_addr(str(built)).display_name == 'Al "the" \\ice'
    clone = built.copy()
    clone.uri.params["lr"] = None
    clone.params["x"] = "y"
    assert str(built) == '"Al \\"the\\" \\\\ice" <sip:alice@atlanta.com>;tag=1'
    lazy = NameAddr("sip:x@y")
    assert lazy.uri.user == "x" and repr(lazy) == "NameAddr('<sip:x@y>')"
    lazy.uri = SipUri("sips", "z", "w")
    assert str(lazy) == "<sips:z@w>"
    assert quote_display_name("plain") == '"plain"'


# --------------------------------------------------------------------- numbers, CSeq


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("0068", 68),
        (" 70 ", 70),
        ("4294967295", 2**32 - 1),
        ("36893488147419103232", 36893488147419103232),
        ("1" * 100, 10**40),
        ("0" * 60 + "7", 7),
    ],
)
def test_parse_uint(text: str, value: int) -> None:
    assert parse_uint(text) == value


@pytest.mark.parametrize("text", ["", "-1", "+1", "1.5", "1_000", "٣", "²", "0x10", "1 2", "a"])
def test_parse_uint_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uint(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("314159 INVITE", (314159, "INVITE")),
        ("0009 INVITE", (9, "INVITE")),
        ("1   OPTIONS", (1, "OPTIONS")),
        ("29344 RE%47IST%45R", (29344, "RE%47IST%45R")),
        ("36893488147419103232 REGISTER", (36893488147419103232, "REGISTER")),
    ],
)
def test_parse_cseq(text: str, value: tuple[int, str]) -> None:
    assert parse_cseq(text) == value


@pytest.mark.parametrize(
    "text", ["", "INVITE", "1", "1 2 3", "-1 INVITE", "x INVITE", "1 INV ITE", '1 IN"VITE']
)
def test_parse_cseq_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_cseq(text)


# ---------------------------------------------------------------------------- fuzz

HEADER_ALPHABET = 'SIP/2.0UDPTCPsip:@[]<>";,=? \t\\abcxyz0123456789.-_+*%tagbranchrport'


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=80), st.text(alphabet=HEADER_ALPHABET, max_size=80)))
def test_fuzz_parsers_raise_only_sip_parse_error(text: str) -> None:
    for parser in (parse_via, parse_vias, parse_name_addr, parse_params, parse_cseq, parse_uint):
        try:
            result = parser(text)
        except SipParseError as exc:
            assert exc.status == 400
            continue
        if isinstance(result, Via):
            assert parse_via(str(result)) == result
        elif isinstance(result, NameAddr):
            again = parse_name_addr(str(result))
            assert (again.display_name, again.params) == (result.display_name, result.params)
            try:
                uri = result.uri
            except SipParseError:
                continue
            assert str(parse_name_addr(str(result)).uri) == str(uri)
    try:
        addrs = parse_name_addrs(text, allow_star=True)
    except SipParseError:
        return
    for addr in addrs:
        str(addr)
