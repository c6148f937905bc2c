"""Conference registry and monitoring permission: the parts without media."""

from __future__ import annotations

import asyncio

import pytest

from config import config_from_dict
from config.conference import ConferenceBridge
from config.models import Tenant
from media.dtmf import Digit
from softswitch.apps.conference import ConferenceError, ConferenceRegistry, _gain, _step
from softswitch.apps.monitor import MonitorDenied, check_monitor
from softswitch.apps.session import collect_digits

BRIDGE = ConferenceBridge(name="Sales", extension="6000")


def tenant() -> Tenant:
    return config_from_dict(
        {
            "tenants": [
                {
                    "name": "acme",
                    "domain": "acme.test",
                    "users": [
                        {"extension": "100", "password": "p", "can_monitor": True},
                        {"extension": "101", "password": "p"},
                    ],
                }
            ]
        }
    ).tenants[0]


@pytest.mark.parametrize(
    ("supervisor", "agent", "problem"),
    [
        ("100", "101", None),
        ("100", None, None),
        ("101", "100", "user '101' has no permission to monitor calls"),
        ("999", "101", "'999' is not a user of tenant 'acme'"),
        ("100", "100", "a supervisor cannot monitor their own call"),
    ],
)
def test_monitor_permission(supervisor: str, agent: str | None, problem: str | None) -> None:
    if problem is None:
        check_monitor(tenant(), supervisor, agent)
    else:
        with pytest.raises(MonitorDenied, match=problem):
            check_monitor(tenant(), supervisor, agent)


async def test_invite_uses_the_dial_out_hook() -> None:
    dialled: list[tuple[str, str, str]] = []

    async def dial(tenant: str, bridge: ConferenceBridge, number: str) -> None:
        dialled.append((tenant, bridge.name, number))

    await ConferenceRegistry(dial_out=dial).invite("acme", BRIDGE, "+14155550100")
    assert dialled == [("acme", "Sales", "+14155550100")]
    with pytest.raises(ConferenceError, match="dialling out"):
        await ConferenceRegistry().invite("acme", BRIDGE, "+14155550100")


def test_unknown_conference_and_bad_settings_are_named() -> None:
    registry = ConferenceRegistry()
    assert registry.active() == [] and registry.history() == []
    for action in (registry.mute, registry.kick):
        with pytest.raises(ConferenceError, match="no active conference 'Sales' in tenant 'acme'"):
            action("acme", "Sales", "call-1")
    with pytest.raises(ValueError, match="pin_attempts"):
        ConferenceRegistry(pin_attempts=0)


@pytest.mark.parametrize(
    ("level", "key", "after"),
    [
        (0, "1", -1),
        (0, "3", 1),
        (3, "2", 0),
        (4, "3", 4),
        (-4, "1", -4),
        (-2, "6", -1),
    ],
)
def test_volume_steps(level: int, key: str, after: int) -> None:
    keys = "123" if key in "123" else "456"
    assert _step(level, key, keys) == after
    assert _gain(after) == pytest.approx(10 ** (after * 3 / 20))


class _Keys:
    """Just what collect_digits reads of a session: the endpoint's key queue, ``ended``."""

    def __init__(self, keys: str) -> None:
        self.endpoint = self
        self.digits: asyncio.Queue[Digit] = asyncio.Queue()
        for k in keys:
            self.digits.put_nowait(Digit(k, 100, "rfc4733"))
        self.ended = asyncio.Event()


@pytest.mark.parametrize(
    ("keys", "count", "ended", "got"),
    [
        ("12#9", 6, False, "12"),  # the terminator ends the entry
        ("123456", 4, False, "1234"),  # enough digits
        ("12", 6, False, "12"),  # a pause (timeout) ends it
        ("", 4, True, ""),  # the caller hung up
    ],
)
async def test_collect_digits(keys: str, count: int, ended: bool, got: str) -> None:
    session = _Keys(keys)
    if ended:
        session.ended.set()
    assert await collect_digits(session, count, timeout=0.05) == got  # type: ignore[arg-type]
