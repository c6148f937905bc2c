"""Ring groups executed by the B2BUA: a SIPp caller dials the group's extension, SIPp phones
are its members; who rings, in what order, and where an unanswered call ends."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    call_as,
    caller_injection,
    header_values,
    received_requests,
    register_endpoint,
    trace_messages,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

USERS = [
    PhoneUser(ext, f"pw{ext}", display_name=f"User {ext}") for ext in ("100", "102", "103", "200")
]

#: Per case: the group's strategy and members, what each member's phone does, the statuses
#: of the legs in the CDR (in the order they ended) and who took the call.
CASES = {
    # 102 rings 2 s and gives up; then 200 answers.
    "sequence": (
        'strategy = "sequence"\n'
        'members = [{ target = "102", timeout = 2 }, { target = "200", timeout = 10 }]',
        {"102": "ring_uas.xml", "200": "call_uas.xml"},
        [487, 200],
    ),
    # 102 is busy at once; 200 starts ringing after 1 s and answers.
    "simultaneous": (
        'strategy = "simultaneous"\n'
        'members = [{ target = "102", timeout = 10 }, { target = "200", delay = 1 }]',
        {"102": "busy_uas.xml", "200": "call_uas.xml"},
        [486, 200],
    ),
    # Nobody in the group answers: the final destination (user 200) takes the call.
    "final": (
        'strategy = "sequence"\n'
        'members = [{ target = "102", timeout = 2 }]\n'
        'final = { kind = "user", target = "200" }',
        {"102": "ring_uas.xml", "200": "call_uas.xml"},
        [487, 200],
    ),
}


def _switch_config(tmp_path: Path, group: str) -> tuple[SwitchConfigFile, Path]:
    config = SwitchConfigFile(tmp_path / "switch", users=USERS)
    path = config.write()
    path.write_text(
        path.read_text()
        + '[[tenants.routing.ring_groups]]\nname = "Front desk"\nextension = "600"\n'
        + 'caller_id_prefix = "Desk: "\n'
        + group
        + "\n"
    )
    return config, path


@pytest.mark.parametrize("case", sorted(CASES))
def test_ring_group(tmp_path: Path, case: str) -> None:
    group, phones_of, statuses = CASES[case]
    config, path = _switch_config(tmp_path, group)
    with SwitchProcess(path, port=config.port) as switch:
        sipp_dir = tmp_path / "sipp"
        phones = []
        trace = tmp_path / "answerer-messages.log"
        for ext, scenario in phones_of.items():
            port = free_port()
            register_endpoint(sipp_dir, switch.port, ext, f"pw{ext}", port)
            extra = trace_messages(trace) if scenario == "call_uas.xml" else []
            phones.append(
                BackgroundSipp(scenario, switch.port, calls=1, local_port=port, extra=extra)
            )
        wait_until_listening()
        uac = call_as(switch, sipp_dir, "100", "600")
        assert uac.ok, uac.errors
        for phone in phones:
            result = phone.result()
            assert result.ok, result.errors
        (cdr,) = wait_cdrs(switch, 1)
        assert (cdr["disposition"], cdr["dialled"], cdr["destination"]) == (
            "ANSWERED",
            "600",
            "200",
        )
        assert [leg["status"] for leg in cdr["legs"]] == statuses
        # The answering member sees the group's prefix before the caller's name.
        (invite,) = received_requests(trace, "INVITE")
        (from_,) = header_values(invite, "From")
        assert from_.startswith('"Desk: User 100"'), from_


def test_a_member_on_a_call_is_not_rung(tmp_path: Path) -> None:
    """102 talks to 103 when the group call comes: only 200 rings (and answers)."""
    members = 'members = [{ target = "102" }, { target = "200", timeout = 10 }]'
    config, path = _switch_config(tmp_path, members)
    with SwitchProcess(path, port=config.port) as switch, ThreadPoolExecutor(1) as pool:
        sipp_dir = tmp_path / "sipp"
        ports = {ext: free_port() for ext in ("102", "103", "200")}
        for ext, port in ports.items():
            register_endpoint(sipp_dir, switch.port, ext, f"pw{ext}", port)
        talk_trace = tmp_path / "103-messages.log"
        other = BackgroundSipp(
            "call_uas.xml",
            switch.port,
            calls=1,
            local_port=ports["103"],
            extra=trace_messages(talk_trace),
        )
        member = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=ports["200"])
        wait_until_listening()
        # 102 calls 103 from its registered port and holds the call for a while.
        talk = pool.submit(
            run_sipp,
            "call_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=1,
            rate=1,
            local_port=ports["102"],
            injection=caller_injection(sipp_dir, "102", "pw102"),
            extra=["-s", "103", "-d", "8000"],
            timeout=30,
        )
        deadline = time.monotonic() + 10
        while not (talk_trace.exists() and received_requests(talk_trace, "ACK")):
            assert time.monotonic() < deadline, "102's call to 103 was not answered"
            time.sleep(0.1)
        uac = call_as(switch, sipp_dir, "100", "600")
        assert uac.ok, uac.errors
        assert member.result().ok
        assert talk.result(timeout=60).ok
        assert other.result().ok
        cdrs = wait_cdrs(switch, 2)
        (group_call,) = [c for c in cdrs if c["dialled"] == "600"]
        assert group_call["disposition"] == "ANSWERED"
        (leg,) = group_call["legs"]  # 102 was not rung
        assert leg["status"] == 200 and "102" not in leg["target"], leg
