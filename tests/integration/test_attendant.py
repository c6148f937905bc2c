"""Auto attendants with real peers: SIPp plays a carrier calling the tenant's DIDs and
pressing keys by RFC 4733; baresip phones for users 101 (Alice Smith) and 102 (Bob Brown)
answer by themselves. Which phone rings shows what the menu did."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.audiokit import tone
from tests.integration.callkit import append_lines, trunk_lines, wait_cdrs
from tests.integration.ivrkit import call_with_keys

pytestmark = pytest.mark.integration

MAIN = "+14155550100"  # business hours (its frame is active)
NIGHT = "+14155550101"  # after hours (its business-hours frame is switched off)
USERS = [
    PhoneUser("101", "pw101", "Alice Smith"),
    PhoneUser("102", "pw102", "Bob Brown"),
]


def _attendant_lines() -> list[str]:
    menu_keys = (
        '{ "1" = { action = "user", target = "101" }, "5" = { action = "directory" }, '
        '"0" = { action = "hang_up" } }'
    )
    return [
        "[tenants.routing]",
        'time_frames = [{ name = "open", when = { kind = "always" } }, '
        '{ name = "shut", when = { kind = "always" }, enabled = false }]',
        *trunk_lines("carrier", [free_port()], inbound_addresses=["127.0.0.0/8"], caller_id=MAIN),
        "[[tenants.auto_attendants]]",
        'name = "Main"',
        'extension = "800"',
        f'did = "{MAIN}"',
        'greeting = "Welcome to Example."',
        'business_hours_frame = "open"',
        'business_hours = { prompt = "For Alice, press 1. For the directory, press 5.", '
        f"timeout = 3, inter_digit_timeout = 2, max_failures = 5, keys = {menu_keys}, "
        'no_key = { action = "user", target = "101" }, '
        'unassigned = { action = "user", target = "102" } }',
        'after_hours = { prompt = "We are closed.", keys = { "1" = { action = "user", '
        'target = "101" } } }',
        "[[tenants.auto_attendants]]",
        'name = "Night"',
        'extension = "801"',
        f'did = "{NIGHT}"',
        'business_hours_frame = "shut"',
        'business_hours = { prompt = "Welcome.", keys = { "1" = { action = "user", '
        'target = "101" } } }',
        'after_hours = { prompt = "We are closed. For Bob, press 1.", inter_digit_timeout = 2, '
        'keys = { "1" = { action = "user", target = "102" } } }',
    ]


@dataclass
class Office:
    switch: SwitchProcess
    alice: BaresipPhone
    bob: BaresipPhone
    work: Path
    calls: int = 0

    def call(self, number: str, *steps: tuple[str, str | int]) -> None:
        for phone in (self.alice, self.bob):
            phone.poll_events(0.1)
            phone.events.clear()
        self.calls += 1
        result = call_with_keys(self.work / f"call{self.calls}", self.switch.port, number, steps)
        assert result.ok, result.errors + self.switch.log()[-3000:]

    def answered_by(self, phone: BaresipPhone) -> None:
        """``phone`` took the call, the other one never rang."""
        phone.wait_event("CALL_ESTABLISHED", timeout=5)
        other = self.bob if phone is self.alice else self.alice
        other.poll_events(0.2)
        assert not [e for e in other.events if e.get("type") == "CALL_INCOMING"]


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    tmp = tmp_path_factory.mktemp("attendant")
    config = SwitchConfigFile(tmp / "switch", users=USERS)
    path = append_lines(config.write(), _attendant_lines())
    with SwitchProcess(path, port=config.port) as switch:
        port = config.port
        with (
            BaresipPhone(
                tmp / "p101",
                f"<sip:101@127.0.0.1:{port}>;auth_pass=pw101;regint=600;answermode=auto",
                audio_source=tone(tmp / "440.wav", 440.0),
            ) as alice,
            BaresipPhone(
                tmp / "p102",
                f"<sip:102@127.0.0.1:{port}>;auth_pass=pw102;regint=600;answermode=auto",
                audio_source=tone(tmp / "1000.wav", 1000.0),
            ) as bob,
        ):
            rows = switch.wait_registrations(lambda rows: len(rows) == 2, timeout=20)
            assert len(rows) == 2, alice.output() + bob.output()
            yield Office(switch, alice, bob, tmp)


def test_business_hours_key_1_rings_the_user(office: Office) -> None:
    office.call(MAIN, ("pause", 1500), ("dtmf", "1"), ("pause", 6000))
    office.answered_by(office.alice)
    cdrs = wait_cdrs(office.switch, office.calls * 2)
    attendant, bridged = cdrs[-2:]
    assert (attendant["destination"], attendant["trunk"]) == ("auto_attendant 800", "carrier")
    assert (bridged["disposition"], bridged["destination"]) == ("ANSWERED", "101")


def test_after_hours_another_menu_plays(office: Office) -> None:
    office.call(NIGHT, ("pause", 1500), ("dtmf", "1"), ("pause", 5000))
    office.answered_by(office.bob)


def test_dial_by_extension_rings_102(office: Office) -> None:
    office.call(MAIN, ("pause", 1500), ("dtmf", "102"), ("pause", 5000))
    office.answered_by(office.bob)


def test_an_unassigned_key_follows_its_action(office: Office) -> None:
    office.call(MAIN, ("pause", 1500), ("dtmf", "#"), ("pause", 5000))
    office.answered_by(office.bob)


def test_no_key_follows_its_action(office: Office) -> None:
    office.call(MAIN, ("pause", 12000))  # greeting, menu, then 3 s without a key
    office.answered_by(office.alice)


def test_directory_finds_bob_brown_from_276(office: Office) -> None:
    office.call(
        MAIN,
        ("pause", 1500),
        ("dtmf", "5"),
        ("pause", 2500),
        ("dtmf", "276"),
        ("pause", 3000),
        ("dtmf", "1"),
        ("pause", 5000),
    )
    office.answered_by(office.bob)
