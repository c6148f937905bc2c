"""The Replaces header (RFC 3891) and the Replaces a Refer-To URI carries."""

from __future__ import annotations

import pytest

from softswitch.sip.message import SipParseError
from softswitch.sip.replaces import (
    Replaces,
    escape_for_uri,
    format_replaces,
    parse_replaces,
    refer_to_replaces,
)
from softswitch.sip.uri import parse_uri


def test_the_rfc_3891_example_parses() -> None:
    replaces = parse_replaces("425928@bobster.example.org;to-tag=7743;from-tag=6472")
    assert replaces == Replaces("425928@bobster.example.org", "7743", "6472")
    assert not replaces.early_only


def test_parameters_in_any_order_with_spaces_and_early_only() -> None:
    replaces = parse_replaces(" abc ; from-tag = f1 ; early-only ; To-Tag=t1 ")
    assert replaces == Replaces("abc", "t1", "f1", early_only=True)


def test_format_round_trips() -> None:
    for replaces in (Replaces("a@b", "t", "f"), Replaces("x", "1", "2", early_only=True)):
        assert parse_replaces(format_replaces(replaces)) == replaces


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ";to-tag=1;from-tag=2",
        "abc",
        "abc;to-tag=1",
        "abc;from-tag=2",
        "abc;to-tag=;from-tag=2",
        "abc;to-tag=1;from-tag=2;to-tag=3",
        "abc;to-tag=1;from-tag=2;early-only=yes",
        "a b;to-tag=1;from-tag=2",
        "abc;to-tag=1;from-tag=2;;",
        "abc;to-tag=<1>;from-tag=2",
        'abc;to-tag="1";from-tag=2',
        "\x00;to-tag=1;from-tag=2\x00",
    ],
)
def test_garbage_is_a_400(garbage: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_replaces(garbage)
    assert caught.value.status == 400
    assert "Replaces" in caught.value.reason


def test_refer_to_carries_an_escaped_replaces() -> None:
    uri = parse_uri("sip:2002@example.com?Replaces=call-9%40host%3Bto-tag%3Dab%3Bfrom-tag%3Dcd")
    assert refer_to_replaces(uri) == Replaces("call-9@host", "ab", "cd")


def test_refer_to_without_replaces_is_a_blind_transfer() -> None:
    assert refer_to_replaces(parse_uri("sip:2002@example.com")) is None
    assert refer_to_replaces(parse_uri("sip:2002@example.com?Subject=hi")) is None


def test_refer_to_with_a_broken_replaces_is_a_400() -> None:
    with pytest.raises(SipParseError):
        refer_to_replaces(parse_uri("sip:2002@example.com?Replaces=call-9%3Bto-tag%3Dab"))


def test_escaped_value_round_trips_through_a_uri() -> None:
    replaces = Replaces("c1@10.0.0.1", "t1", "f", early_only=True)
    escaped = escape_for_uri(replaces)
    assert ";" not in escaped and "=" not in escaped and "@" not in escaped
    uri = parse_uri(f"sip:2002@example.com?Replaces={escaped}")
    assert refer_to_replaces(uri) == replaces
