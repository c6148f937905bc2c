"""Provisioning test helpers: a site file on a store, a switch's swappable parts without
sockets, waiting for the follow loop, and a tenant with every reference a change can break."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

from config.models import SwitchConfig, Tenant
from config.security import SecuritySettings
from softswitch.directory import Directory
from softswitch.routing_state import DisasterState
from softswitch.security.guard import SecurityGuard

__all__ = ["SITE", "FakeSwitch", "rich_tenant", "site", "until"]

SITE = """
provisioning = "{mode}"

[database]
url = "{url}"

[[tenants]]
name = "acme"
domain = "acme.test"
users = [
    {{ extension = "100", password = "secret-100" }},
    {{ extension = "101", password = "secret-101", display_name = "Bob" }},
]

[[tenants.routing.dids]]
number = "+14155550100"
destination = "100"
"""


def site(directory: Path, url: str, mode: str = "database", extra: str = "") -> Path:
    path = directory / "site.toml"
    path.write_text(SITE.format(mode=mode, url=url) + extra)
    return path


@dataclasses.dataclass
class FakeSwitch:
    """The parts the runtime swaps, without sockets."""

    config: SwitchConfig
    disaster_state: DisasterState
    directory: Directory | None = None
    calls: Any = None
    trunk_registrar: Any = None
    guard: SecurityGuard = dataclasses.field(
        default_factory=lambda: SecurityGuard(SecuritySettings(), time.time)
    )


async def until(check: Any, what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def rich_tenant(users: int = 0) -> Tenant:
    """Users, answering rules with forwards, time frames, numbers, a ring group, a queue, a
    conference bridge and a shared mailbox: every reference a change can break."""
    return Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.test",
            "users": [
                {"extension": e, "password": f"pw-{e}"}
                for e in [str(100 + i) for i in range(12)] + [str(2000 + i) for i in range(users)]
            ],
            "conferences": [{"name": "standup", "extension": "700", "owner": "100"}],
            "queues": [{"name": "sales", "extension": "800", "agents": [{"extension": "101"}]}],
            "voicemail": {"mailboxes": {"900": {}}},
            "routing": {
                "time_frames": [
                    {
                        "name": "office",
                        "when": {
                            "kind": "days_of_week",
                            "days": {"mon": [{"start": "09:00", "end": "17:00"}]},
                        },
                    },
                    {
                        "name": "private",
                        "owner": "109",
                        "when": {
                            "kind": "days_of_week",
                            "days": {"tue": [{"start": "09:00", "end": "10:00"}]},
                        },
                    },
                ],
                "users": {
                    "102": {
                        "rules": [
                            {
                                "time_frame": "office",
                                "forward": {"always": {"kind": "user", "target": "103"}},
                            }
                        ]
                    }
                },
                "dids": [
                    {"number": "+14155550100", "treatment": "user", "destination": "100"},
                    {"number": "+14155550101", "treatment": "queue", "destination": "800"},
                    {"number": "+14155550102", "treatment": "ring_group", "destination": "600"},
                ],
                "ring_groups": [
                    {"name": "front", "extension": "600", "members": [{"target": "104"}]}
                ],
            },
        }
    )
