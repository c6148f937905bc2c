"""Voicemail settings: mailboxes, keys, cross-references, and the provisioning objects."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from config.models import Tenant
from config.voicemail import InboxKeys, TenantVoicemail
from softswitch.provisioning.model import assemble_tenant, split_tenant


def _tenant(**voicemail: Any) -> Tenant:
    return Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.example",
            "users": [
                {"extension": "101", "password": "pw"},
                {"extension": "102", "password": "pw"},
            ],
            "voicemail": voicemail,
        }
    )


def test_shared_mailboxes_are_routable_and_round_trip_as_objects() -> None:
    t = _tenant(
        default_pin="1234",
        mailboxes={"101": {"pin": "9999"}, "500": {"name": "Sales", "lamp_users": ["101"]}},
    )
    assert t.routing.mailboxes == frozenset({"500"})
    assert t.routing.destination_problem("voicemail", "500") is None
    parts = split_tenant(t)
    assert parts[("mailbox", "500")] == {"name": "Sales", "lamp_users": ["101"]}
    assert "mailboxes" not in parts[("tenant", "acme")]["voicemail"]
    assert Tenant.model_validate(assemble_tenant(parts)) == t


@pytest.mark.parametrize(
    ("voicemail", "message"),
    [
        ({"mailboxes": {"500": {"lamp_users": ["103"]}}}, r"500.lamp_users\[0\]: not a user"),
        ({"default_pin": "12"}, "default_pin"),
        ({"mailboxes": {"101": {"pin": "abcd"}}}, "pin"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"check_code": "*98"}, "must differ"),
        ({"keys": {"save": "7"}}, "already 'delete'"),
        ({"keys": {"new": "x"}}, "not a key"),
        ({"mailboxes": {"1": {}}}, "2 to 8 digits"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(voicemail: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _tenant(**voicemail)


def test_a_disabled_users_mailbox_cannot_be_configured() -> None:
    with pytest.raises(ValidationError, match="voicemail is turned off"):
        Tenant.model_validate(
            {
                "name": "acme",
                "domain": "acme.example",
                "users": [{"extension": "101", "password": "pw"}],
                "routing": {"users": {"101": {"voicemail": False}}},
                "voicemail": {"mailboxes": {"101": {"pin": "1234"}}},
            }
        )


def test_defaults() -> None:
    vm = TenantVoicemail()
    assert (vm.pin_attempts, vm.check_code, vm.access_code) == (3, "*97", "*98")
    assert InboxKeys().save == "9"
