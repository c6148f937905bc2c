"""Call park without sockets: the tenant's park settings (ranges, clashes named by field),
routing's PARK nodes for orbits and the park code, and the parking lot with the orbits'
lamps on the dialog package (lit while parked, dark once taken)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from pydantic import ValidationError

from config.models import Tenant
from config.park import FIRST_FREE, ParkSettings
from config.smtp import SubscriptionSettings
from routing.engine import plan_call
from routing.facts import CallFacts
from routing.plan import Application, TargetKind
from softswitch.notify.lamps import LampBoard
from softswitch.notify.subscriptions import Notifier
from softswitch.park.lot import OrbitTaken, ParkedCall, ParkingLot
from tests.unit.callkit import Net

USERS = [{"extension": "101", "username": "101", "password": "pw101"}]


def tenant(**park: object) -> Tenant:
    return Tenant.model_validate(
        {"name": "acme", "domain": "acme.test", "users": USERS, "park": park}
    )


def test_orbits_are_a_range_and_the_code_parks_in_the_first_free() -> None:
    settings = ParkSettings(orbits="7008-7011", code="*70")
    assert settings.orbit_extensions() == ("7008", "7009", "7010", "7011")
    codes = tenant(orbits="7001-7002").routing.feature_codes
    assert (codes["7001"].kind, codes["7001"].ref) == ("park", "7001")
    assert codes["*70"].ref == FIRST_FREE


@pytest.mark.parametrize(
    ("park", "message"),
    [
        ({"orbits": "7010-7001"}, "last orbit must be >= the first"),
        ({"orbits": "70a1-7010"}, "not a range of extensions"),
        ({"orbits": "1000-1200"}, "at most 100 orbits"),
        ({"orbits": "7001-7003", "code": "7002"}, "park code '7002' is one of the orbits"),
        ({"timeout": 0}, "timeout"),
        ({"orbits": "100-102"}, "101 already dialled otherwise"),
    ],
)
def test_bad_park_settings_are_refused_with_the_field(
    park: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        tenant(**park)
    assert message in str(refused.value)
    assert "park" in str(refused.value)


def test_routing_makes_park_nodes_of_orbits_and_the_code() -> None:
    routing = tenant(orbits="7001-7003").routing
    at = dt.datetime(2026, 7, 6, 10, tzinfo=dt.UTC)

    def node(dialled: str, from_trunk: bool = False) -> object:
        facts = CallFacts(
            caller="101", dialled=dialled, at=at, tenant="acme", from_trunk=from_trunk
        )
        return plan_call(routing, facts).root

    orbit = node("7002")
    assert isinstance(orbit, Application)
    assert (orbit.target.kind, orbit.target.ref) == (TargetKind.PARK, "7002")
    code = node("*70")
    assert isinstance(code, Application) and code.target.ref == FIRST_FREE
    # From a trunk the orbits are not dialable (a parked call is the tenant's business).
    outside = node("7002", from_trunk=True)
    assert not (isinstance(outside, Application) and outside.target.kind is TargetKind.PARK)


def lamp_board() -> LampBoard:
    net = Net()
    notifier = Notifier(
        net.layer,
        directory=net.mgr.admission.directory,
        authenticator=net.mgr.auth,
        tenants=net.mgr.tenants,
        settings=SubscriptionSettings(),
        clock=lambda: net.now,
        schedule=net._schedule,
        local=lambda dest: ("192.0.2.1", 5060),
        server_header="test",
    )
    lamps = LampBoard(notifier)
    notifier.serve(lamps)
    return lamps


def test_the_lot_lights_an_orbit_while_a_call_is_parked() -> None:
    async def scenario() -> None:
        lamps = lamp_board()
        lot = ParkingLot(lamps)
        settings = ParkSettings(orbits="7001-7002")
        lot.configure("t", settings)
        assert lot.free_orbit("t", settings) == "7001"
        parked = ParkedCall("t", "7001", "call-1", "sip:100@pbx.test", "102")
        lot.park(parked)
        (dialog,) = lamps.state_of("t", "7001")
        assert (dialog.state, dialog.remote) == ("confirmed", "sip:100@pbx.test")
        assert lot.free_orbit("t", settings) == "7002"
        with pytest.raises(OrbitTaken):
            lot.park(ParkedCall("t", "7001", "call-2", "", ""))
        assert lot.calls("t") == [parked]
        assert lot.take("t", "7001") is parked
        assert lamps.state_of("t", "7001") == []
        assert lot.take("t", "7001") is None
        # Orbits no longer configured stop being lamps.
        lot.configure("t", None)
        assert lot.free_orbit("t", settings) == "7001"

    asyncio.run(scenario())
