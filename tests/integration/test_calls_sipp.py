"""Calls through the B2BUA with SIPp on both sides: bulk calls, sim-ring, caller CANCEL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    caller_injection,
    register_endpoint,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

USERS = [PhoneUser("100", "pw100"), PhoneUser("102", "pw102"), PhoneUser("200", "pw200")]


@pytest.fixture
def switch(tmp_path: Path):
    config = SwitchConfigFile(tmp_path / "switch", users=USERS)
    with SwitchProcess(config.write(), port=config.port) as process:
        yield process


def test_thousand_calls_sipp_to_sipp_each_with_a_cdr(switch: SwitchProcess, tmp_path: Path) -> None:
    calls = 1000
    uas_port = free_port()
    register_endpoint(tmp_path / "sipp", switch.port, "200", "pw200", uas_port)
    uas = BackgroundSipp("call_uas.xml", switch.port, calls=calls, local_port=uas_port, timeout=120)
    wait_until_listening()
    uac = run_sipp(
        "call_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=calls,
        rate=200,
        limit=400,
        injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
        extra=["-s", "200", "-d", "100"],
        timeout=120,
    )
    callee = uas.result()
    assert uac.ok and uac.successful == calls, uac.errors
    assert callee.ok and callee.successful == calls, callee.errors
    rows = wait_cdrs(switch, calls)
    assert len(rows) == calls
    assert Counter(r["disposition"] for r in rows) == {"ANSWERED": calls}
    assert {r["sip_code"] for r in rows} == {"200"}
    assert {r["q850_name"] for r in rows} == {"NORMAL_CLEARING"}
    assert len({r["sip_call_id"] for r in rows}) == calls
    row = rows[0]
    assert (row["caller_number"], row["dialled"], row["direction"]) == ("100", "200", "internal")
    assert float(row["billsec"]) > 0 and row["answer"]
    assert [leg["status"] for leg in row["legs"]] == [200]


def test_sim_ring_three_contacts_one_answers_the_others_are_cancelled(
    switch: SwitchProcess, tmp_path: Path
) -> None:
    ports = [free_port() for _ in range(3)]
    for port in ports:
        register_endpoint(tmp_path / "sipp", switch.port, "102", "pw102", port)
    rows = switch.wait_registrations(lambda rows: len(rows) == 3)
    assert len(rows) == 3
    # The first contact answers after ringing for a second; the others ring until CANCELled.
    answering = BackgroundSipp(
        "call_uas.xml", switch.port, calls=1, local_port=ports[0], extra=["-d", "1000"]
    )
    ringing = [
        BackgroundSipp("ring_uas.xml", switch.port, calls=1, local_port=port) for port in ports[1:]
    ]
    wait_until_listening()
    uac = run_sipp(
        "call_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
        extra=["-s", "102", "-d", "200"],
        timeout=30,
    )
    assert uac.ok, uac.errors
    assert answering.result().ok
    for phone in ringing:  # each got a CANCEL (the scenario waits for it), answered 487
        result = phone.result()
        assert result.ok, result.errors
    (cdr,) = wait_cdrs(switch, 1)
    assert cdr["disposition"] == "ANSWERED"
    assert sorted(leg["status"] for leg in cdr["legs"]) == [200, 487, 487]
    assert sum(leg["answered"] for leg in cdr["legs"]) == 1
    assert {leg["contact"].split(":")[2].split(";")[0] for leg in cdr["legs"]} == {
        str(p) for p in ports
    }


def test_caller_cancel_while_ringing_cancels_every_branch(
    switch: SwitchProcess, tmp_path: Path
) -> None:
    ports = [free_port() for _ in range(2)]
    for port in ports:
        register_endpoint(tmp_path / "sipp", switch.port, "102", "pw102", port)
    ringing = [
        BackgroundSipp("ring_uas.xml", switch.port, calls=1, local_port=port) for port in ports
    ]
    wait_until_listening()
    uac = run_sipp(
        "cancel_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
        extra=["-s", "102", "-d", "500"],
        timeout=30,
    )
    assert uac.ok, uac.errors  # the caller got 200 for its CANCEL and 487 for the INVITE
    for phone in ringing:
        result = phone.result()
        assert result.ok, result.errors
    (cdr,) = wait_cdrs(switch, 1)
    assert (cdr["disposition"], cdr["sip_code"]) == ("CANCELLED", "487")
    assert cdr["answer"] == ""
    assert [leg["status"] for leg in cdr["legs"]] == [487, 487]


def test_unknown_extension_and_wrong_password(switch: SwitchProcess, tmp_path: Path) -> None:
    # 998 is nobody: the routing plan rejects it (484/404) and the call is FAILED in the CDR.
    uac = run_sipp(
        "call_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
        extra=["-s", "998"],
        timeout=15,
    )
    assert not uac.ok
    (cdr,) = wait_cdrs(switch, 1)
    assert cdr["disposition"] == "FAILED" and cdr["sip_code"] in ("404", "484")
    wrong = caller_injection(tmp_path / "wrong", "100", "nope")
    uac = run_sipp(
        "call_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=wrong,
        extra=["-s", "200"],
        timeout=15,
    )
    assert not uac.ok
    assert len(wait_cdrs(switch, 2, timeout=3)) == 1  # a refused caller makes no call


def test_late_2xx_from_a_losing_branch_gets_ack_and_bye(
    switch: SwitchProcess, tmp_path: Path
) -> None:
    ports = [free_port() for _ in range(2)]
    for port in ports:
        register_endpoint(tmp_path / "sipp", switch.port, "102", "pw102", port)
    winner = BackgroundSipp(
        "call_uas.xml", switch.port, calls=1, local_port=ports[0], extra=["-d", "500"]
    )
    late = BackgroundSipp("late_answer_uas.xml", switch.port, calls=1, local_port=ports[1])
    wait_until_listening()
    uac = run_sipp(
        "call_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
        extra=["-s", "102", "-d", "1000"],
        timeout=30,
    )
    assert uac.ok, uac.errors
    assert winner.result().ok
    result = late.result()
    assert result.ok, result.errors  # its 200 was ACKed and the dialog ended with BYE
    (cdr,) = wait_cdrs(switch, 1)
    assert cdr["disposition"] == "ANSWERED"
    assert sum(leg["answered"] for leg in cdr["legs"]) == 1


@pytest.fixture
def passthrough_switch(tmp_path: Path):
    config = SwitchConfigFile(tmp_path / "switch", users=USERS, media_anchor="never")
    with SwitchProcess(config.write(), port=config.port) as process:
        yield process


def test_hold_reinvite_and_info_are_relayed(
    passthrough_switch: SwitchProcess, tmp_path: Path
) -> None:
    """With media passed through, a re-INVITE reaches the other party."""
    switch = passthrough_switch
    port = free_port()
    register_endpoint(tmp_path / "sipp", switch.port, "200", "pw200", port)
    callee = BackgroundSipp("reinvite_uas.xml", switch.port, calls=1, local_port=port)
    wait_until_listening()
    uac = run_sipp(
        "reinvite_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
        extra=["-s", "200"],
        timeout=30,
    )
    # Each side checks what it got: a=sendonly reached the callee, its a=recvonly and the
    # INFO answer body came back to the caller.
    assert uac.ok, uac.errors
    result = callee.result()
    assert result.ok, result.errors
    (cdr,) = wait_cdrs(switch, 1)
    assert cdr["disposition"] == "ANSWERED"


@pytest.mark.parametrize("anchor", ["always", "never"])
def test_blind_transfer_with_refer_completes_to_the_new_target(anchor: str, tmp_path: Path) -> None:
    """100 calls 102; 102 REFERs 100 to 200; 200 answers and 100 ends up talking to 200.

    Media passed through, the switch re-INVITEs 100 with 200's SDP (RFC 3725 flow 3);
    anchored, it bridges 100's endpoint to 200's and 100 sees no re-INVITE."""
    config = SwitchConfigFile(tmp_path / "switch", users=USERS, media_anchor=anchor)
    with SwitchProcess(config.write(), port=config.port) as switch:
        _transfer(
            switch,
            tmp_path,
            "transferee_uac.xml" if anchor == "never" else "transferee_anchored_uac.xml",
            "300" if anchor == "never" else "2000",
        )


def _transfer(switch: SwitchProcess, tmp_path: Path, scenario: str, hold_ms: str) -> None:
    transferor_port, target_port = free_port(), free_port()
    register_endpoint(tmp_path / "sipp", switch.port, "102", "pw102", transferor_port)
    register_endpoint(tmp_path / "sipp", switch.port, "200", "pw200", target_port)
    transferor = BackgroundSipp(
        "transferor_uas.xml", switch.port, calls=1, local_port=transferor_port, extra=["-s", "200"]
    )
    target = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=target_port)
    wait_until_listening()
    caller = run_sipp(
        scenario,
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
        extra=["-s", "102", "-d", hold_ms],
        timeout=30,
    )
    assert caller.ok, caller.errors
    result = transferor.result()
    assert result.ok, result.errors  # 202 and the NOTIFYs 100 / 180 / 200, then BYE
    result = target.result()
    assert result.ok, result.errors  # the caller's BYE reached the new target
    rows = wait_cdrs(switch, 2)
    assert sorted((r["dialled"], r["destination"], r["disposition"]) for r in rows) == [
        ("102", "102", "ANSWERED"),
        ("200", "200", "ANSWERED"),
    ]
