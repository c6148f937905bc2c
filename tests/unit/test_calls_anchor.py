"""Pure parts of anchored media: [media] settings, feature codes, SIP INFO digits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from config.media import MediaSettings
from media.dtmf import Digit
from softswitch.calls.anchor import CallMedia, MediaAnchor, engine_settings, worst_mos
from softswitch.calls.mediapath import dtmf_relay as _dtmf_relay


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"anchor": "sometimes"}, "anchor"),
        ({"address": "pbx.example"}, "must be an IP address"),
        ({"advertised_address": "300.1.1.1"}, "must be an IP address"),
        ({"port_min": 30000, "port_max": 30000}, "port_max must be above port_min"),
        ({"port_min": 80}, "port_min"),
        ({"hold_music": "/no/such/file.wav"}, "file.wav: cannot read"),
        ({"inband_dtmf": "yes"}, "inband_dtmf"),
    ],
)
def test_media_settings_name_what_is_wrong(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MediaSettings(**values)


@pytest.mark.parametrize(
    ("values", "public_host", "advertised"),
    [
        ({"address": "127.0.0.1"}, None, "127.0.0.1"),
        ({"address": "0.0.0.0", "advertised_address": "203.0.113.5"}, None, "203.0.113.5"),
        ({"address": "0.0.0.0"}, "198.51.100.7", "198.51.100.7"),
        ({"address": "10.0.0.2"}, "198.51.100.7", "10.0.0.2"),
    ],
)
def test_the_address_put_in_sdp(
    values: dict[str, Any], public_host: str | None, advertised: str
) -> None:
    assert engine_settings(MediaSettings(**values), public_host).advertised_address == advertised


def test_bound_everywhere_without_a_public_ip_advertises_a_real_address() -> None:
    settings = engine_settings(MediaSettings(address="0.0.0.0"), "pbx.example.test")
    assert settings.advertised_address not in (None, "0.0.0.0")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"Signal=5\r\nDuration=160\r\n", Digit("5", 160, "info")),
        (b"Signal= *\nDuration= 250", Digit("*", 250, "info")),
        (b"signal=#\r\n", Digit("#", 0, "info")),
        (b"Signal=a\r\nDuration=x", Digit("A", 0, "info")),
        (b"Signal=12\r\n", None),
        (b"Signal=Z\r\n", None),
        (b"Duration=160\r\n", None),
        (b"\xff\xfe", None),
    ],
)
def test_dtmf_relay_bodies(body: bytes, expected: Digit | None) -> None:
    assert _dtmf_relay(body) == expected


@dataclass
class _FakeLeg:
    inbound: bool = True
    call: Any = None


@dataclass
class _FakeCall:
    id: str = "c1"
    media: CallMedia = field(default_factory=CallMedia)


class _Recorder(MediaAnchor):
    def __init__(self) -> None:
        super().__init__(engine=None, settings=MediaSettings())  # type: ignore[arg-type]
        self.actions: list[str] = []

    def start_recording(self, call: Any, *, reason: str) -> None:
        self.actions.append("start")

    def stop_recording(self, call: Any) -> None:
        self.actions.append("stop")


@pytest.mark.parametrize(
    ("keys", "actions"),
    [
        ("*98", ["start"]),
        ("*99", ["stop"]),
        ("*98123*99", ["start", "stop"]),
        ("1*98", ["start"]),
        ("**98", ["start"]),
        ("*9*99", ["stop"]),
        ("*97", []),
        ("98", []),
        ("*988", ["start"]),
        ("*", []),
    ],
)
def test_feature_codes(keys: str, actions: list[str]) -> None:
    anchor = _Recorder()
    leg = _FakeLeg(call=_FakeCall())
    for key in keys:
        anchor.digit(leg, Digit(key, 100, "rfc4733"))  # type: ignore[arg-type]
    assert anchor.actions == actions


@pytest.mark.parametrize(
    ("quality", "mos"),
    [
        ({}, None),
        ({"caller": {"mos": 4.2}}, 4.2),
        ({"caller": {"mos": 4.2}, "callee": {"mos": 3.1}}, 3.1),
        ({"caller": {"mos": None}}, None),
    ],
)
def test_the_cdr_mos_is_the_worse_side(quality: dict[str, Any], mos: float | None) -> None:
    assert worst_mos(quality) == mos
