"""Call screening and answer confirmation, carried out with real peers: SIPp plays a
carrier calling a DID, baresip phones answer by themselves. A leg whose answerer does not
press 1 is dropped and the callflow goes on (to the user's forward); pressing 1 bridges."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.audiokit import tone
from tests.integration.callkit import BackgroundSipp, append_lines, trunk_lines, wait_cdrs
from tests.integration.ivrkit import call_with_keys, carrier_scenario

pytestmark = pytest.mark.integration

TO_101 = "+14155550101"
TO_102 = "+14155550102"
MOBILE = "+14155550199"
USERS = [PhoneUser("101", "pw101", "Alice Smith"), PhoneUser("102", "pw102", "Bob Brown")]


def _phone(tmp: Path, port: int, account: str, hz: float) -> BaresipPhone:
    return BaresipPhone(
        tmp / account.split("@")[0].lstrip("<sip:+"),
        account,
        audio_source=tone(tmp / f"{int(hz)}.wav", hz, 90.0),  # baresip hangs up at its end
    )


@contextmanager
def _office(tmp: Path, routing: list[str], gateway: int | None = None) -> Iterator[SwitchProcess]:
    config = SwitchConfigFile(tmp / "switch", users=USERS)
    lines = [
        "[tenants.routing]",
        f'dids = [{{ number = "{TO_101}", destination = "101" }}, '
        f'{{ number = "{TO_102}", destination = "102" }}]',
        *routing,
        *trunk_lines(
            "carrier", [gateway or free_port()], inbound_addresses=["127.0.0.0/8"], caller_id=TO_101
        ),
    ]
    with SwitchProcess(append_lines(config.write(), lines), port=config.port) as switch:
        yield switch


def test_answer_confirmation_unanswered_leg_is_dropped_and_the_call_goes_on(
    tmp_path: Path,
) -> None:
    routing = [
        "[tenants.routing.users.101]",
        "ring_time = 10",
        "default_rule = { simring = { include_extension = false, answer_confirmation = true, "
        f'extra = [{{ kind = "number", target = "{MOBILE}" }}] }}, '
        'forward = { when_unanswered = { kind = "user", target = "102" } } }',
    ]
    with ExitStack() as stack:
        mobile = stack.enter_context(
            _phone(tmp_path, 0, f"<sip:{MOBILE}@127.0.0.1>;regint=0;answermode=auto", 800.0)
        )
        switch = stack.enter_context(_office(tmp_path, routing, gateway=mobile.sip_port))
        bob = stack.enter_context(
            _phone(
                tmp_path,
                switch.port,
                f"<sip:102@127.0.0.1:{switch.port}>;auth_pass=pw102;regint=600;answermode=auto",
                1000.0,
            )
        )
        assert switch.wait_registrations(lambda rows: len(rows) == 1, timeout=20)
        result = call_with_keys(tmp_path / "carrier", switch.port, TO_101, [("pause", 16000)])
        assert result.ok, result.errors + switch.log()[-3000:]
        mobile.wait_event("CALL_ESTABLISHED", timeout=1)  # it answered...
        mobile.wait_event("CALL_CLOSED", timeout=1)  # ...was asked, did not press 1: dropped
        bob.wait_event("CALL_ESTABLISHED", timeout=1)  # the forward when unanswered
        cdrs = wait_cdrs(switch, 1)
        (cdr,) = cdrs
        assert (cdr["disposition"], cdr["destination"]) == ("ANSWERED", "102")
        mobile_leg, bob_leg = cdr["legs"]
        assert mobile_leg["target"].startswith(f"external {MOBILE}") and not mobile_leg["answered"]
        assert bob_leg["answered"]
    assert "kind=confirm" in (tmp_path / "switch" / "switch.log").read_text()


def _screened(tmp_path: Path, press_1: bool) -> tuple[BaresipPhone, BaresipPhone, list[dict]]:
    routing = [
        "[tenants.routing.users.102]",
        "ring_time = 15",
        'default_rule = { screening = true, forward = { when_unanswered = { kind = "user", '
        'target = "101" } } }',
    ]
    with ExitStack() as stack:
        switch = stack.enter_context(_office(tmp_path, routing))
        account = (
            f"<sip:{{0}}@127.0.0.1:{switch.port}>;auth_pass=pw{{0}};regint=600;answermode=auto"
        )
        alice = stack.enter_context(_phone(tmp_path, switch.port, account.format("101"), 440.0))
        bob = stack.enter_context(_phone(tmp_path, switch.port, account.format("102"), 1000.0))
        assert switch.wait_registrations(lambda rows: len(rows) == 2, timeout=20)
        scenario = carrier_scenario(tmp_path / "carrier" / "carrier.xml", [("pause", 28000)])
        carrier = BackgroundSipp(
            str(scenario),
            switch.port,
            calls=1,
            local_port=free_port(),
            extra=["-s", TO_102, "-mi", "127.0.0.1"],
        )
        bob.wait_event("CALL_ESTABLISHED", timeout=20)  # after the caller said a name
        if press_1:
            time.sleep(5.0)  # while the name and the question play
            bob.command("sndcode", "1")  # an RFC 4733 event
        result = carrier.result()
        assert result.ok, result.errors + switch.log()[-3000:]
        cdrs = wait_cdrs(switch, 2)
        for phone in (alice, bob):
            phone.poll_events(0.5)  # what each saw, kept in events once they are stopped
    log = (tmp_path / "switch" / "switch.log").read_text()
    assert "destination=screening" in log and "kind=screen" in log
    return alice, bob, cdrs


def _seen(phone: BaresipPhone) -> list[str]:
    return [str(e.get("type")) for e in phone.events]


def test_screening_without_1_drops_the_callee_and_goes_on(tmp_path: Path) -> None:
    alice, bob, cdrs = _screened(tmp_path, press_1=False)
    assert "CALL_CLOSED" in _seen(bob)  # asked, did not press 1: dropped
    assert "CALL_ESTABLISHED" in _seen(alice)  # the forward when unanswered
    assert cdrs[-1]["destination"] == "101"
    assert [leg["status"] for leg in cdrs[-1]["legs"]] == [480, 200]


def test_screening_accepted_with_1_bridges_the_callee(tmp_path: Path) -> None:
    alice, _, cdrs = _screened(tmp_path, press_1=True)
    assert "CALL_INCOMING" not in _seen(alice)
    assert cdrs[-1]["destination"] == "102" and cdrs[-1]["disposition"] == "ANSWERED"
