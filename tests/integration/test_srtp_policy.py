"""SRTP policy per tenant and per trunk with real peers (issue 19): the tenant and its
carrier trunk both say ``required``. A plain SIPp phone's offer is refused with 488; baresip
with mandatory SRTP calls out through the trunk, whose INVITE offers only RTP/SAVP with
SDES keys (the SIPp carrier checks the SDP and answers with its own key)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.audiokit import tone
from tests.integration.callkit import (
    BackgroundSipp,
    append_lines,
    caller_injection,
    received_requests,
    received_responses,
    trace_messages,
    trunk_lines,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

DID = "+14155550100"
NATIONAL = "+16505550123"


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, int]]:
    """One anchored switch whose tenant and trunk require SRTP; (switch, gateway port)."""
    directory = tmp_path_factory.mktemp("srtp-policy")
    gateway = free_port()
    config = SwitchConfigFile(
        directory / "switch",
        users=[PhoneUser("100", "pw100"), PhoneUser("101", "pw101")],
    )
    path = config.write()  # the tenant's key goes before its tables: after the domain
    path.write_text(
        path.read_text().replace(
            'domain = "pbx.test"\n', 'domain = "pbx.test"\nsrtp = "required"\n'
        )
    )
    append_lines(
        path,
        trunk_lines(
            "carrier", [gateway], inbound_addresses=["10.99.0.0/16"], caller_id=DID, srtp="required"
        ),
    )
    with SwitchProcess(path, port=config.port) as process:
        yield process, gateway


def test_a_plain_offer_to_a_tenant_requiring_srtp_gets_488(
    switch: tuple[SwitchProcess, int], tmp_path: Path
) -> None:
    process, _ = switch
    trace = tmp_path / "caller.log"
    result = run_sipp(
        "call_uac.xml",
        f"127.0.0.1:{process.port}",
        calls=1,
        rate=1,
        injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
        extra=["-s", "101", "-d", "200", *trace_messages(trace)],
        timeout=30,
    )
    assert not result.ok
    refused = received_responses(trace, 488)
    assert refused and refused[0].startswith("SIP/2.0 488 Not Acceptable Here"), refused


def test_mandatory_srtp_phone_calls_out_through_a_trunk_requiring_srtp(
    switch: tuple[SwitchProcess, int], tmp_path: Path
) -> None:
    process, gateway = switch
    carrier_log = tmp_path / "carrier.log"
    carrier = BackgroundSipp(
        "srtp_uas.xml",
        process.port,
        calls=1,
        local_port=gateway,
        timeout=40,
        extra=trace_messages(carrier_log),
    )
    wait_until_listening()
    aor = f"<sip:100@127.0.0.1:{process.port}>;auth_pass=pw100;regint=120;mediaenc=srtp-mand"
    source = tone(tmp_path / "440.wav", 440.0)
    with BaresipPhone(
        tmp_path / "phone", aor, audio_source=source, extra_config=["module srtp.so"]
    ) as phone:
        rows = process.wait_registrations(lambda rows: len(rows) == 1, timeout=20)
        assert len(rows) == 1, phone.output()
        phone.command("dial", f"sip:{NATIONAL}@127.0.0.1:{process.port}")
        phone.wait_event("CALL_ESTABLISHED", timeout=15)
        menc = phone.wait_event("CALL_MENC", timeout=10)  # baresip: its leg is encrypted
        assert "AES_CM_128_HMAC_SHA1" in str(menc.get("param")), menc
        phone.command("hangup")
        phone.wait_event("CALL_CLOSED", timeout=15)
    assert carrier.result().ok  # the scenario's checks: RTP/SAVP and an a=crypto line
    (invite,) = received_requests(carrier_log, "INVITE")
    assert "RTP/SAVP" in invite and "RTP/AVP" not in invite and "a=crypto:" in invite
