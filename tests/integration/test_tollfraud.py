"""Toll fraud with SIPp as phones and carriers: a user without international permission is
refused with a 403 naming the rule and no INVITE reaches the trunk; a cap of two outside
calls at once refuses the third international call; 911 from a capped, blocked user while a
disaster plan is on still reaches the emergency trunk with the emergency caller ID."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    append_lines,
    caller_injection,
    header_values,
    received_requests,
    received_responses,
    trace_messages,
    trunk_lines,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

DID = "+14155550100"
LONDON = "+442079460000"
NATIONAL = "+16505550123"
EMERGENCY_CID = "+14155550199"


def _switch(
    tmp_path: Path, users: list[PhoneUser], lines: list[str], *, tenant_keys: str = ""
) -> SwitchProcess:
    config = SwitchConfigFile(tmp_path / "switch", users=users, media_anchor="never")
    path = config.write()
    if tenant_keys:
        path.write_text(
            path.read_text().replace('domain = "pbx.test"\n', f'domain = "pbx.test"\n{tenant_keys}')
        )
    append_lines(path, lines)
    return SwitchProcess(path, port=config.port)


def _dial(
    tmp_path: Path, switch: SwitchProcess, number: str, *, calls: int = 1, hold_ms: int = 200
) -> tuple[object, Path]:
    """User 100 dials ``number`` ``calls`` times at once; (SIPp result, its message log)."""
    trace = tmp_path / f"caller-{number.lstrip('+')}-{calls}.log"
    result = run_sipp(
        "call_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=calls,
        rate=20,
        injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
        extra=["-s", number, "-d", str(hold_ms), *trace_messages(trace)],
        timeout=30,
    )
    return result, trace


def _cli(switch: SwitchProcess, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "softswitch.cli", *args, "--config", str(switch.config)],
        cwd=switch.cwd,
        capture_output=True,
        timeout=60,
        env=switch.env,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_international_call_without_permission_is_refused_before_the_trunk(
    tmp_path: Path,
) -> None:
    gateway = free_port()
    users = [
        PhoneUser(
            "100",
            "pw100",
            extra_toml='calling = { allowed_classes = ["internal", "local", "national", '
            '"mobile", "toll_free"] }',
        )
    ]
    lines = trunk_lines("carrier", [gateway], inbound_addresses=["10.99.0.0/16"], caller_id=DID)
    with _switch(tmp_path, users, lines) as switch:
        carrier_log = tmp_path / "carrier.log"
        carrier = BackgroundSipp(
            "call_uas.xml",
            switch.port,
            calls=1,
            local_port=gateway,
            extra=trace_messages(carrier_log),
        )
        wait_until_listening()
        refused, trace = _dial(tmp_path, switch, LONDON)
        assert not refused.ok
        forbidden = received_responses(trace, 403)[0]
        assert forbidden.startswith("SIP/2.0 403 International Calls Not Permitted")
        reason = header_values(forbidden, "Reason")[0]
        assert "user 100: calling.allowed_classes" in reason
        assert LONDON in reason
        # The same user's national call goes out: the trunk works, and saw only that one.
        allowed, _ = _dial(tmp_path, switch, NATIONAL)
        assert allowed.ok, allowed.errors
        assert carrier.result().ok
        invites = received_requests(carrier_log, "INVITE")
        assert len(invites) == 1 and NATIONAL in invites[0].splitlines()[0]
        assert all(LONDON not in invite for invite in invites)
        (cdr,) = wait_cdrs(switch, 1)  # refused at admission, like a wrong password: no call
        log = (switch.cwd / "switch.log").read_text()
    assert (cdr["sip_code"], cdr["dialled"], cdr["trunk"]) == ("200", NATIONAL, "carrier")
    assert "toll_fraud_alarm" in log and "calling.allowed_classes" in log


def test_a_cap_of_two_outside_calls_refuses_the_third_international_call(
    tmp_path: Path,
) -> None:
    gateway = free_port()
    users = [PhoneUser("100", "pw100", extra_toml="calling = { max_outbound_calls = 2 }")]
    lines = [
        "[tenants.calling]",
        'allowed_classes = ["internal", "national", "mobile", "international"]',
        *trunk_lines("carrier", [gateway], inbound_addresses=["10.99.0.0/16"], caller_id=DID),
    ]
    with _switch(tmp_path, users, lines) as switch:
        carrier = BackgroundSipp("call_uas.xml", switch.port, calls=2, local_port=gateway)
        wait_until_listening()
        # Three international calls at once, each held 4 s: two go out, the third is refused.
        result, trace = _dial(tmp_path, switch, LONDON, calls=3, hold_ms=4000)
        assert (result.successful, result.failed) == (2, 1)
        forbidden = received_responses(trace, 403)[0]
        assert forbidden.startswith("SIP/2.0 403 Outbound Call Limit Reached")
        assert "user 100: calling.max_outbound_calls" in header_values(forbidden, "Reason")[0]
        assert carrier.result().ok
        cdrs = wait_cdrs(switch, 2)
        caps = json.loads(_cli(switch, "security", "caps", "--json"))
    assert [c["sip_code"] for c in cdrs] == ["200", "200"]
    user_row = next(r for r in caps if r["user"] == "100")
    assert user_row["max_outbound_calls"] == 2
    assert user_row["international_last_hour"] == 2  # the two that went out
    assert user_row["outbound_calls"] == 0  # all ended


def test_911_from_a_capped_blocked_user_reaches_the_emergency_trunk(tmp_path: Path) -> None:
    carrier_port, e911_port = free_port(), free_port()
    users = [
        PhoneUser(
            "100",
            "pw100",
            extra_toml=(
                'caller_id = "+14155550111"\n'
                'calling = { allowed_classes = ["internal"], max_outbound_calls = 0, '
                f'max_minutes_per_day = 0, emergency_caller_id = "{EMERGENCY_CID}" }}'
            ),
        )
    ]
    lines = [
        "[tenants.calling]",
        'emergency_trunk = "e911"',
        "max_outbound_calls = 0",
        "[tenants.routing]",
        f'dids = [{{ number = "{DID}", destination = "100" }}]',
        "[tenants.routing.block]",
        'blocked = ["100"]',
        "[[tenants.routing.disaster_plans]]",
        'name = "Office outage"',
        'status = "enabled"',
        f'numbers = [{{ number = "{DID}", forward_to = "+16505550177" }}]',
        *trunk_lines("carrier", [carrier_port], inbound_addresses=["10.99.0.0/16"], caller_id=DID),
        *trunk_lines("e911", [e911_port], inbound_addresses=["10.98.0.0/16"]),
    ]
    # A tenant limit of one new call per 1000 s: the second 911 call would be over it.
    with _switch(tmp_path, users, lines, tenant_keys="max_calls_per_second = 0.001\n") as switch:
        e911_log = tmp_path / "e911.log"
        e911 = BackgroundSipp(
            "call_uas.xml",
            switch.port,
            calls=2,
            local_port=e911_port,
            extra=trace_messages(e911_log),
        )
        wait_until_listening()
        refused, _ = _dial(tmp_path, switch, NATIONAL)  # capped: no outside calls at all
        assert not refused.ok
        first, _ = _dial(tmp_path, switch, "911")
        second, _ = _dial(tmp_path, switch, "911")
        assert first.ok, first.errors
        assert second.ok, second.errors
        assert e911.result().ok
        invites = received_requests(e911_log, "INVITE")
        cdrs = wait_cdrs(switch, 2)
    assert len(invites) == 2
    for invite in invites:
        assert invite.startswith("INVITE sip:911@127.0.0.1")
        assert f"<sip:{EMERGENCY_CID}@" in header_values(invite, "From")[0]
        assert header_values(invite, "P-Asserted-Identity")[0].startswith(f"<sip:{EMERGENCY_CID}@")
    emergency = [c for c in cdrs if c["dialled"] == "911"]
    assert [(c["emergency"], c["trunk"], c["disposition"]) for c in emergency] == [
        ("yes", "e911", "ANSWERED")
    ] * 2
    assert len(cdrs) == 2  # the refused outside call made none
