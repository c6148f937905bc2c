"""Forwarding by answering rules (busy, unanswered after the ring time, offline) executed by
the B2BUA: the routing engine plans, the call follows the plan's fallbacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    call_as,
    header_values,
    received_requests,
    register_endpoint,
    trace_messages,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

USERS = [PhoneUser("100", "pw100"), PhoneUser("102", "pw102"), PhoneUser("200", "pw200")]
RING_TIME = 5  # seconds 102 rings before the call goes to 200

ROUTING = f"""
[tenants.routing.users.102]
ring_time = {RING_TIME}
[tenants.routing.users.102.default_rule]
simring = {{}}
[tenants.routing.users.102.default_rule.forward]
when_busy = {{ kind = "user", target = "200" }}
when_unanswered = {{ kind = "user", target = "200" }}
when_offline = {{ kind = "user", target = "200" }}
"""


@pytest.mark.parametrize("condition", ["busy", "unanswered", "offline"])
def test_forward_reaches_the_forward_target(tmp_path: Path, condition: str) -> None:
    config = SwitchConfigFile(tmp_path / "switch", users=USERS)
    path = config.write()
    path.write_text(path.read_text() + ROUTING)
    with SwitchProcess(path, port=config.port) as switch:
        sipp_dir = tmp_path / "sipp"
        target_port = free_port()
        register_endpoint(sipp_dir, switch.port, "200", "pw200", target_port)
        trace = tmp_path / "target-messages.log"
        phones = [
            BackgroundSipp(
                "call_uas.xml",
                switch.port,
                calls=1,
                local_port=target_port,
                extra=trace_messages(trace),
            )
        ]
        if condition != "offline":
            port = free_port()
            register_endpoint(sipp_dir, switch.port, "102", "pw102", port)
            scenario = "busy_uas.xml" if condition == "busy" else "ring_uas.xml"
            phones.append(BackgroundSipp(scenario, switch.port, calls=1, local_port=port))
        wait_until_listening()
        uac = call_as(switch, sipp_dir, "100", "102")
        assert uac.ok, uac.errors
        for phone in phones:
            result = phone.result()
            assert result.ok, result.errors
        (cdr,) = wait_cdrs(switch, 1)
        assert (cdr["disposition"], cdr["dialled"], cdr["destination"]) == (
            "ANSWERED",
            "102",
            "200",
        )
        expected = {"busy": [486, 200], "unanswered": [487, 200], "offline": [200]}[condition]
        assert [leg["status"] for leg in cdr["legs"]] == expected
        # The target learns who forwarded the call and why (RFC 5806, RFC 7044 / 4458).
        (forwarded,) = received_requests(trace, "INVITE")
        reason, cause = {
            "busy": ("user-busy", 486),
            "unanswered": ("no-answer", 408),
            "offline": ("unavailable", 503),
        }[condition]
        assert header_values(forwarded, "Diversion") == [
            f"<sip:102@pbx.test>;reason={reason};counter=1"
        ]
        assert header_values(forwarded, "History-Info") == [
            f"<sip:102@pbx.test?Reason=SIP%3Bcause%3D{cause}>;index=1, "
            f"<sip:200@pbx.test;cause={cause}>;index=1.1;mp=1"
        ]
