"""Which carrier calls get the spam treatment: a failed caller-ID verification (verstat)."""

from __future__ import annotations

import pytest

from softswitch.calls.verstat import verification_failed
from softswitch.sip.message import SipRequest, parse_message


def _invite(*headers: str) -> SipRequest:
    lines = [
        "INVITE sip:+14155550112@pbx.test SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1",
        "From: <sip:+16505550123@carrier.test>;tag=1",
        "To: <sip:+14155550112@pbx.test>",
        "Call-ID: a@b",
        "CSeq: 1 INVITE",
        *headers,
        "Content-Length: 0",
        "",
        "",
    ]
    message = parse_message("\r\n".join(lines).encode())
    assert isinstance(message, SipRequest)
    return message


@pytest.mark.parametrize(
    ("header", "failed"),
    [
        ("P-Asserted-Identity: <sip:+16505550123;verstat=TN-Validation-Failed@c.test>", True),
        ("P-Asserted-Identity: <tel:+16505550123;verstat=tn-validation-failed>", True),
        ("P-Asserted-Identity: <sip:+16505550123;verstat=TN-Validation-Passed@c.test>", False),
        ("P-Asserted-Identity: <sip:+16505550123;verstat=No-TN-Validation@c.test>", False),
        ("X-Note: nothing", False),
    ],
)
def test_verification_result(header: str, failed: bool) -> None:
    assert verification_failed(_invite(header)) is failed
