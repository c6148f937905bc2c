"""The trunk model: validation with the field named, number formats, gateway order."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from config.models import SwitchConfig
from config.trunks import Trunk

GATEWAY = {"host": "192.0.2.10"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"gateways": []}, "gateways"),
        ({"inbound_addresses": ["not-an-ip"]}, "inbound_addresses"),
        ({"caller_id": "12345"}, "caller_id"),
        ({"gateways": [{"host": "192.0.2.1", "port": 70000}]}, "port"),
        ({"gateways": [{"host": "bad host!"}]}, "host"),
        ({"strip_prefix": "abc"}, "strip_prefix"),
        ({"registration": True, "username": "u"}, "registration"),
        ({"caller_id_policy": "trunk"}, "caller_id_policy"),
        ({"caller_id_policy": "carrier"}, "caller_id_policy"),
    ],
)
def test_bad_trunks_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Trunk.model_validate({"name": "t", "gateways": [GATEWAY], **changes})


@pytest.mark.parametrize(
    ("settings", "number", "expected"),
    [
        ({}, "+14155550100", "+14155550100"),
        ({"number_format": "national"}, "+14155550100", "4155550100"),
        ({"number_format": "national", "add_prefix": "1"}, "+14155550100", "14155550100"),
        ({"strip_prefix": "+"}, "+442079460000", "442079460000"),
        ({"strip_prefix": "+", "add_prefix": "00"}, "+442079460000", "00442079460000"),
    ],
)
def test_number_format(settings: dict[str, str], number: str, expected: str) -> None:
    trunk = Trunk.model_validate({"name": "t", "gateways": [GATEWAY], **settings})
    assert trunk.format_number(number) == expected


def test_inbound_networks_and_caller_id_are_normalised() -> None:
    trunk = Trunk.model_validate(
        {
            "name": "t",
            "gateways": [GATEWAY],
            "inbound_addresses": ["192.0.2.7", "198.51.100.0/24"],
            "caller_id": "+1 (415) 555-0100",
        }
    )
    assert trunk.inbound_addresses == ("192.0.2.7/32", "198.51.100.0/24")
    assert trunk.caller_id == "+14155550100"


def test_gateway_order_priority_then_weight() -> None:
    trunk = Trunk.model_validate(
        {
            "name": "t",
            "gateways": [
                {"host": "192.0.2.3", "priority": 2},
                {"host": "192.0.2.1", "priority": 1, "weight": 3},
                {"host": "192.0.2.2", "priority": 1, "weight": 1},
            ],
        }
    )
    firsts = Counter(trunk.gateway_order()[0].host for _ in range(2000))
    assert set(firsts) == {"192.0.2.1", "192.0.2.2"}  # priority 2 is never first
    assert firsts["192.0.2.1"] > firsts["192.0.2.2"]  # weight 3 beats weight 1
    assert all(trunk.gateway_order()[-1].host == "192.0.2.3" for _ in range(20))


def _tenant(**settings: object) -> dict[str, object]:
    return {
        "name": "t",
        "domain": "pbx.test",
        "trunks": [{"name": "a", "gateways": [GATEWAY]}, {"name": "b", "gateways": [GATEWAY]}],
        **settings,
    }


@pytest.mark.parametrize(
    ("outbound", "order"),
    [
        ((), ["a", "b"]),
        (("b",), ["b"]),
        (("b", "a"), ["b", "a"]),
    ],
)
def test_outbound_route_order(outbound: tuple[str, ...], order: list[str]) -> None:
    config = SwitchConfig.model_validate({"tenants": [_tenant(outbound_trunks=outbound)]})
    assert [t.name for t in config.tenants[0].outbound_route()] == order


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"outbound_trunks": ["c"]}, "outbound_trunks[0]: no trunk named 'c'"),
        ({"outbound_trunks": ["a", "a"]}, "outbound_trunks[1]: duplicate trunk 'a'"),
        ({"trunks": [{"name": "a", "gateways": [GATEWAY]}] * 2}, "trunks[1].name: duplicate"),
    ],
)
def test_bad_outbound_routes_name_the_entry(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SwitchConfig.model_validate({"tenants": [_tenant(**settings)]})
