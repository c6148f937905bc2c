"""The auto attendant's configuration, its sans-I/O menu machine and dial by name."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from config.attendant import AttendantAction, AutoAttendant, KeyAction, Menu, MenuPrompt
from config.models import SwitchConfig, User
from softswitch.apps.attendant_menu import (
    Connect,
    HangUp,
    MenuMachine,
    Play,
    Say,
    Wait,
    choose_menu,
)
from softswitch.apps.directory import DialByName, keypad_digits
from softswitch.provisioning.model import assemble_tenant, split_tenant

TENANT: dict[str, Any] = {
    "name": "t",
    "domain": "pbx.test",
    "users": [
        {"extension": "101", "password": "a", "display_name": "Alice Smith"},
        {"extension": "102", "password": "b", "display_name": "Bob Brown"},
        {"extension": "103", "password": "c", "display_name": "Carol Brownlee"},
    ],
    "routing": {"time_frames": [{"name": "office", "when": {"kind": "always"}}]},
    "auto_attendants": [
        {
            "name": "Main",
            "extension": "800",
            "did": "+14155550100",
            "greeting": "Welcome.",
            "business_hours_frame": "office",
            "business_hours": {
                "prompt": "For sales press 1.",
                "keys": {
                    "1": {"action": "user", "target": "101"},
                    "5": {"action": "directory"},
                    "7": {"action": "message", "message": {"text": "We are at 1 Main St."}},
                    "9": {
                        "action": "submenu",
                        "menu": {
                            "prompt": "Support.",
                            "keys": {
                                "1": {"action": "voicemail", "target": "102"},
                                "*": {"action": "back"},
                            },
                        },
                    },
                    "0": {"action": "hang_up"},
                },
                "no_key": {"action": "user", "target": "103"},
                "max_failures": 2,
                "fallback": {"action": "user", "target": "102"},
            },
            "after_hours": {
                "prompt": {"text": "We are closed."},
                "keys": {"1": {"action": "voicemail", "target": "101"}},
            },
        }
    ],
}


def _tenant(data: dict[str, Any] = TENANT) -> Any:
    return SwitchConfig.model_validate({"tenants": [data]}).tenants[0]


def _prompt(text: str) -> MenuPrompt:
    return MenuPrompt(text=text)


# ------------------------------------------------------------------------ configuration
def test_an_attendant_routes_by_extension_and_did() -> None:
    tenant = _tenant()
    assert "800" in tenant.routing.auto_attendants
    (did,) = tenant.routing.dids
    assert (did.number, did.treatment.value, did.destination) == (
        "+14155550100",
        "auto_attendant",
        "800",
    )
    assert tenant.attendant_by_extension("800").name == "Main"


def test_bad_attendants_are_refused_naming_the_field() -> None:
    data = copy.deepcopy(TENANT)
    attendant = data["auto_attendants"][0]
    attendant["business_hours"]["keys"]["1"]["target"] = "555"
    attendant["business_hours_frame"] = "nope"
    attendant["extension"] = "101"
    with pytest.raises(ValidationError) as info:
        _tenant(data)
    text = str(info.value)
    assert "auto_attendants[0].business_hours.keys.1: unknown user destination '555'" in text
    assert "auto_attendants[0].business_hours_frame: no domain time frame 'nope'" in text
    assert "auto_attendants[0].extension: extension already taken" in text


@pytest.mark.parametrize(
    ("action", "error"),
    [
        ({"action": "user"}, "needs a target"),
        ({"action": "repeat", "target": "1"}, "takes no target"),
        ({"action": "submenu"}, "menu goes with"),
        ({"action": "external", "target": "12"}, "target"),
        ({"action": "message"}, "message goes with"),
    ],
)
def test_bad_actions(action: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        AttendantAction.model_validate(action)


def test_bad_menu_keys_and_fallbacks() -> None:
    with pytest.raises(ValidationError, match="keys must be"):
        Menu.model_validate({"prompt": "x", "keys": {"A": {"action": "repeat"}}})
    with pytest.raises(ValidationError, match="fallback must end"):
        Menu.model_validate({"prompt": "x", "fallback": {"action": "repeat"}})
    with pytest.raises(ValidationError, match="exactly one"):
        MenuPrompt.model_validate({"text": "a", "prompt": "b"})


def test_an_attendant_is_a_provisioning_object() -> None:
    tenant = _tenant()
    objects = split_tenant(tenant)
    assert ("auto_attendant", "Main") in objects
    assert ("number", "+14155550100") not in objects  # derived from the attendant's did
    rebuilt = _tenant(assemble_tenant(objects))
    assert rebuilt.auto_attendants == tenant.auto_attendants
    assert rebuilt.routing.dids == tenant.routing.dids


# ------------------------------------------------------------------------ choosing a menu
def test_menu_by_time_frame() -> None:
    attendant = _tenant().attendant_by_extension("800")
    assert choose_menu(attendant, lambda name: True)[0] == "business_hours"
    assert choose_menu(attendant, lambda name: False)[0] == "after_hours"
    with_holidays = AutoAttendant.model_validate(
        {
            **attendant.model_dump(exclude_none=True),
            "holidays_frame": "xmas",
            "holidays": {"prompt": "Merry."},
        }
    )
    assert choose_menu(with_holidays, lambda name: name == "xmas")[0] == "holidays"
    assert choose_menu(with_holidays, lambda name: name == "office")[0] == "business_hours"


# ------------------------------------------------------------------------ the menu machine
EXTENSIONS = frozenset({"101", "102", "103", "800", "1234"})


def _machine(**menu: Any) -> MenuMachine:
    attendant = _tenant().attendant_by_extension("800")
    base = attendant.business_hours.model_dump()
    base.update(menu)
    return MenuMachine(Menu.model_validate(base), EXTENSIONS, attendant.greeting)


def _connect_target(steps: list[Any]) -> str | None:
    (step,) = [s for s in steps if isinstance(s, Connect)]
    return step.action.target


def test_greeting_then_menu_then_a_wait() -> None:
    m = _machine()
    assert m.start() == [Play(_prompt("Welcome.")), Play(_prompt("For sales press 1."))]
    assert m.played() == [Wait(5.0)]


def test_a_key_that_starts_an_extension_waits_for_more_digits() -> None:
    m = _machine()
    m.start()
    assert m.key("1") == [Wait(3.0)]  # 101, 102... start with 1
    assert _connect_target(m.timeout()) == "101"  # no more digits: the key's action


def test_dial_by_extension() -> None:
    m = _machine()
    m.start()
    assert m.key("1") == [Wait(3.0)]
    assert m.key("0") == [Wait(3.0)]
    assert _connect_target(m.key("2")) == "102"  # complete, and no longer one starts so


def test_extension_prefix_of_a_longer_one_waits_then_dials() -> None:
    m = _machine()
    m.start()
    for key in "123":
        m.key(key)
    assert _connect_target(m.key("4")) == "1234"
    m2 = _machine()
    m2.start()
    m2.key("1")
    m2.key("2")
    assert m2.key("#") == [Say("menu-invalid"), Play(_prompt("For sales press 1."))]


def test_key_actions() -> None:
    m = _machine()
    m.start()
    steps = m.key("5")
    assert isinstance(steps[0], Connect) and steps[0].action.action is KeyAction.DIRECTORY
    steps = m.key("7")
    assert steps == [Play(_prompt("We are at 1 Main St.")), Play(_prompt("For sales press 1."))]
    assert m.key("0") == [Say("menu-goodbye", barge_in=False), HangUp()]
    assert m.key("1") == []  # done


def test_submenus_and_back() -> None:
    m = _machine()
    m.start()
    assert m.key("9") == [Play(_prompt("Support."))]
    assert m.key("1") == [Wait(3.0)]  # may start an extension
    steps = m.timeout()
    assert steps[0].action.action is KeyAction.VOICEMAIL  # type: ignore[union-attr]
    assert m.key("*") == [Play(_prompt("For sales press 1."))]


def test_unassigned_keys_and_max_failures_fall_back() -> None:
    m = _machine()
    m.start()
    assert m.key("#") == [Say("menu-invalid"), Play(_prompt("For sales press 1."))]
    assert _connect_target(m.key("#")) == "102"  # max_failures = 2: the fallback


def test_no_key_runs_its_action() -> None:
    m = _machine()
    m.start()
    assert _connect_target(m.timeout()) == "103"


def test_a_destination_that_did_not_answer_brings_the_menu_back() -> None:
    m = _machine(max_failures=3)
    m.start()
    m.key("5")
    assert m.returned() == [Say("menu-try-again"), Play(_prompt("For sales press 1."))]


def test_digits_are_bounded_by_max_digits() -> None:
    m = _machine(max_digits=2)
    m.start()
    m.key("1")
    assert m.key("9") == [Say("menu-invalid"), Play(_prompt("For sales press 1."))]


# ------------------------------------------------------------------------ dial by name
def test_keypad_digits() -> None:
    assert keypad_digits("Brown") == "27696"
    assert keypad_digits("O'Neil-Zoë") == "66345963"  # ë -> e


def test_directory_matches_by_last_first_or_either() -> None:
    users = [
        User(extension="101", password="pw", display_name="Alice Smith"),
        User(extension="102", password="pw", display_name="Bob Brown"),
        User(extension="103", password="pw", display_name="Carol Brownlee"),
        User(extension="104", password="pw"),  # no name: not listed
    ]
    by_last = DialByName(users)
    assert [x.extension for x in by_last.matches("276")] == ["102", "103"]
    assert by_last.matches("262") == []  # "Bob": a first name
    assert [x.extension for x in DialByName(users, "first").matches("262")] == ["102"]
    assert {x.extension for x in DialByName(users, "either").matches("2")} == {"101", "102", "103"}
    assert len(by_last.listings) == 3


# ------------------------------------------------------------------------ route explain
def test_route_explain_shows_the_menu_of_the_time() -> None:
    from config import example_config_path, load_config
    from softswitch.apps.attendant_menu import describe_attendant

    tenant = load_config(example_config_path()).tenants[0]
    weekday = describe_attendant(tenant, "800", dt.datetime.fromisoformat("2026-07-06T10:00-04:00"))
    assert weekday[0] == "auto attendant 800 ('Main menu') plays its business_hours menu:"
    assert "  key 1: user 101" in weekday and "    key *: back" in weekday
    evening = describe_attendant(tenant, "800", dt.datetime.fromisoformat("2026-07-06T20:00-04:00"))
    assert evening[0].endswith("plays its after_hours menu:")
    holiday = describe_attendant(tenant, "800", dt.datetime.fromisoformat("2026-07-03T10:00-04:00"))
    assert holiday[0].endswith("plays its holidays menu:")  # Independence Day, observed
    assert describe_attendant(tenant, "999", 0.0) == [
        "auto attendant 999: none configured (the caller hears 480)"
    ]


def _with_key(action: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(TENANT)
    data["routing"]["ring_groups"] = [
        {"name": "Sales", "extension": "600", "members": [{"target": "101"}, {"target": "102"}]}
    ]
    data["auto_attendants"][0]["business_hours"]["keys"]["4"] = action
    return data


def test_ring_group_keys_are_checked_against_the_ring_groups() -> None:
    _tenant(_with_key({"action": "ring_group", "target": "600"}))
    with pytest.raises(ValidationError, match="unknown ring_group destination '601'"):
        _tenant(_with_key({"action": "ring_group", "target": "601"}))


class _Connecting:
    """Just enough of an AppCall for _carry_out: what it was put through to."""

    call_id = "c1"

    def __init__(self) -> None:
        self.destinations: list[Any] = []

    async def connect(self, destination: Any, **_: Any) -> Any:
        from softswitch.calls.apps import Connected, ConnectOutcome

        self.destinations.append(destination)
        return Connected(ConnectOutcome.ANSWERED, 200, "OK")


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ({"action": "ring_group", "target": "600"}, "600"),  # routed: it rings the members
        ({"action": "queue", "target": "700"}, "queue 700"),
    ],
)
async def test_ring_group_and_queue_keys_put_the_caller_through(
    action: dict[str, Any], expected: str
) -> None:
    from routing.plan import Application as AppNode
    from softswitch.apps.attendant import _carry_out

    session = _Connecting()
    tenant = _tenant(_with_key({"action": "ring_group", "target": "600"}))
    attendant = tenant.auto_attendants[0]
    await _carry_out(session, tenant, attendant, None, AttendantAction.model_validate(action))  # type: ignore[arg-type]
    (destination,) = session.destinations
    if isinstance(destination, AppNode):
        destination = f"{destination.target.kind.value} {destination.target.ref}"
    assert destination == expected
