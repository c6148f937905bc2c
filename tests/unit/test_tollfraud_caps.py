"""Toll-fraud caps and the guard on a fake clock: outside calls at once, international calls
per sliding hour, minutes per UTC day (ended calls and calls in progress), what a restart
reads back from the CDRs, permissions of tenants, users and forwarders, emergency calls."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from config.calling import TenantCalling, UserCalling
from config.models import Tenant
from routing.plan import Target, TargetKind
from softswitch.security.tollfraud import TollFraudGuard
from softswitch.security.tollfraud_caps import CapTable
from softswitch.security.tollfraud_store import replay_cdrs, usage_rows
from storage.cdr import Cdr

DAY0 = 1_796_601_600.0  # a UTC midnight
LONDON = "+442079460000"
NATIONAL = "+16505550123"


class Clock:
    def __init__(self, now: float = DAY0 + 10 * 3600) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class FakeCall:
    id: str
    tenant: str = "acme"
    caller_number: str = "100"
    dialled: str = LONDON
    from_trunk: bool = False
    answered_at: float | None = None
    ended_at: float | None = None


# -- the cap table ---------------------------------------------------------------------------


def test_outbound_calls_at_once() -> None:
    clock = Clock()
    table = CapTable(clock)
    caps = UserCalling(max_outbound_calls=2)
    key = ("acme", "100")
    for n in range(2):
        assert table.over(key, caps, False) is None
        table.start(key, f"c{n}", FakeCall(f"c{n}"), False)
    table.start(key, "c1", FakeCall("c1"), False)  # a second leg of a call counts once
    assert table.over(key, caps, False) == "max_outbound_calls"
    table.end(key, "c0", 0.0)
    assert table.over(key, caps, False) is None
    assert table.figures(key).outbound_calls == 1


def test_international_calls_per_sliding_hour() -> None:
    clock = Clock()
    table = CapTable(clock)
    caps = UserCalling(max_international_per_hour=2)
    key = ("acme",)
    table.start(key, "a", FakeCall("a"), True)
    clock.now += 1800
    table.start(key, "b", FakeCall("b"), True)
    table.end(key, "a", 0)
    table.end(key, "b", 0)
    assert table.over(key, caps, True) == "max_international_per_hour"
    assert table.over(key, caps, False) is None  # national calls are not counted here
    clock.now += 1801  # the first start is more than an hour old
    assert table.over(key, caps, True) is None
    assert table.figures(key).international_last_hour == 1


def test_minutes_per_day_count_calls_in_progress_and_reset_at_midnight() -> None:
    clock = Clock(DAY0 + 23 * 3600)
    table = CapTable(clock)
    caps = UserCalling(max_minutes_per_day=10)
    key = ("acme", "100")
    first = FakeCall("a", answered_at=clock.now)
    table.start(key, "a", first, False)
    clock.now += 6 * 60
    table.end(key, "a", 6 * 60)
    running = FakeCall("b")
    table.start(key, "b", running, False)
    assert table.over(key, caps, False) is None
    running.answered_at = clock.now
    clock.now += 4 * 60  # 6 ended + 4 in progress: the cap
    assert table.over(key, caps, False) == "max_minutes_per_day"
    assert table.figures(key).minutes_today == pytest.approx(10.0)
    clock.now = DAY0 + 86400 + 60  # the next UTC day: only today's minute of the call counts
    assert table.over(key, caps, False) is None
    assert table.figures(key).minutes_today == pytest.approx(1.0)


def test_no_caps_cost_nothing() -> None:
    table = CapTable(Clock())
    assert table.over(("acme",), UserCalling(), True) is None
    assert list(table.keys()) == []


# -- the guard ----------------------------------------------------------------------------


def tenant(calling: dict[str, Any] | None = None, **users: dict[str, Any]) -> Tenant:
    return Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.test",
            "users": [
                {"extension": ext, "password": "pw", "caller_id": "+14155550111", **settings}
                for ext, settings in {"100": {}, "101": {}, **users}.items()
            ],
            "calling": calling or {},
            "trunks": [
                {"name": "carrier", "gateways": [{"host": "192.0.2.1"}]},
                {"name": "e911", "gateways": [{"host": "192.0.2.9"}]},
            ],
            "outbound_trunks": ["carrier"],
            "routing": {"dids": [{"number": "+14155550100", "destination": "100"}]},
        }
    )


def guard(clock: Clock | None = None) -> TollFraudGuard:
    return TollFraudGuard(clock or Clock(), {})


def test_direct_dial_permissions() -> None:
    t = tenant(
        {"blocked_countries": ["CU"]},
        **{"102": {"calling": {"allowed_classes": ["internal", "national", "local"]}}},
    )
    g = guard()
    user = t.user_by_extension("102")
    assert user is not None
    refusal = g.screen_dial(t, user, LONDON)
    assert refusal is not None
    assert refusal.phrase == "International Calls Not Permitted"
    assert refusal.rule == "user 102: calling.allowed_classes"
    assert 'text="user 102: calling.allowed_classes: +442079460000 is international' in (
        refusal.reason_header()
    )
    assert g.screen_dial(t, user, "16505550123") is None  # national, in the US region
    assert g.screen_dial(t, user, "101") is None  # an extension
    assert g.screen_dial(t, user, "+14155550100") is None  # the tenant's own DID
    assert g.screen_dial(t, user, "*51") is None  # not a number: routing answers it
    # The tenant's default allows international but never premium rate nor satellite.
    other = t.user_by_extension("100")
    assert other is not None
    assert g.screen_dial(t, other, LONDON) is None
    premium = g.screen_dial(t, other, "+19005550123")
    assert premium is not None and premium.rule == "tenant acme: calling.allowed_classes"
    cuba = g.screen_dial(t, other, "+5372345678")
    assert cuba is not None and cuba.phrase == "Destination Country Blocked"
    assert g.counters["calls_refused_permission"] == 3 and g.counters["alarms"] == 3


def test_allowed_countries_and_internal_calls() -> None:
    t = tenant(
        {"allowed_countries": ["GB"]},
        **{"102": {"calling": {"allowed_classes": ["national"]}}},
    )
    g = guard()
    assert g.screen_dial(t, t.user_by_extension("100"), LONDON) is None  # type: ignore[arg-type]
    france = g.screen_dial(t, t.user_by_extension("100"), "+33612345678")  # type: ignore[arg-type]
    assert france is not None and france.rule == "tenant acme: calling.allowed_countries"
    assert g.screen_dial(t, t.user_by_extension("100"), NATIONAL) is None  # type: ignore[arg-type]
    internal = g.screen_dial(t, t.user_by_extension("102"), "101")  # type: ignore[arg-type]
    assert internal is not None and internal.phrase == "Internal Calls Not Permitted"


def test_caps_count_outside_legs_and_release_at_the_end() -> None:
    clock = Clock()
    t = tenant({"max_outbound_calls": 5}, **{"102": {"calling": {"max_outbound_calls": 1}}})
    g = guard(clock)
    route = t.outbound_route()
    first = FakeCall("c1", caller_number="102", dialled=NATIONAL)
    assert g.offnet_route(first, Target(TargetKind.EXTERNAL, NATIONAL), t, route) == route
    user = t.user_by_extension("102")
    assert user is not None
    over = g.screen_dial(t, user, NATIONAL)
    assert over is not None and over.phrase == "Outbound Call Limit Reached"
    second = FakeCall("c2", caller_number="102", dialled=NATIONAL)
    assert g.offnet_route(second, Target(TargetKind.EXTERNAL, NATIONAL), t, route) == ()
    assert g.counters["calls_refused_cap"] == 2
    first.answered_at, first.ended_at = clock.now, clock.now + 90
    clock.now += 90
    g.call_ended(first, t, None)
    assert g.screen_dial(t, user, NATIONAL) is None
    rows = {(r["tenant"], r["user"]): r for r in usage_rows(g, [t])}
    assert rows[("acme", "102")]["minutes_today"] == 1.5
    assert rows[("acme", None)]["max_outbound_calls"] == 5


def test_the_usage_rows_name_the_users_with_caps_or_use_and_follow_a_new_tenant() -> None:
    clock = Clock()
    t = tenant(**{"102": {"calling": {"max_outbound_calls": 1}}})
    g = guard(clock)
    busy = FakeCall("c1", caller_number="100", dialled=NATIONAL)
    assert g.offnet_route(busy, Target(TargetKind.EXTERNAL, NATIONAL), t, t.outbound_route())
    users = {r["user"] for r in usage_rows(g, [t])}
    assert users == {None, "100", "102"}  # the tenant, 100 on a call, 102 with a cap
    assert {r["user"] for r in usage_rows(g, [t], all_users=True)} == {
        None,
        *(u.extension for u in t.users),
    }
    # Provisioned anew: 102's cap gone, 101's new.
    again = tenant(**{"101": {"calling": {"max_minutes_per_day": 60}}})
    assert {r["user"] for r in usage_rows(g, [again])} == {None, "100", "101"}


def test_a_forward_is_checked_against_the_forwarding_user() -> None:
    t = tenant(**{"102": {"calling": {"allowed_classes": ["national"]}}})
    g = guard()
    route = t.outbound_route()
    # A carrier's call to 102, forwarded by 102 to London: 102's permissions apply.
    inbound = FakeCall("c1", caller_number="+16505550100", from_trunk=True)
    forward = Target(TargetKind.EXTERNAL, LONDON, diverted_by=("102",))
    assert g.offnet_route(inbound, forward, t, route) == ()
    # 100's own forward to London: 100 may call there.
    assert (
        g.offnet_route(inbound, Target(TargetKind.EXTERNAL, LONDON, diverted_by=("100",)), t, route)
        == route
    )
    # A DID's forward (diverted by a number): the tenant's permissions alone.
    did = Target(TargetKind.EXTERNAL, LONDON, diverted_by=("+14155550100",))
    assert g.offnet_route(FakeCall("c3", from_trunk=True), did, t, route) == route


def test_emergency_calls_pass_everything_and_mark_their_cdr() -> None:
    t = tenant(
        {"max_outbound_calls": 0, "emergency_trunk": "e911", "allowed_classes": []},
    )
    g = guard()
    assert g.emergency(t, "911") and g.emergency(t, " 112 ") and g.emergency(t, "999")
    assert not g.emergency(t, "998")
    call = FakeCall("c1", dialled="911")
    route = g.offnet_route(call, Target(TargetKind.EMERGENCY, "911"), t, t.outbound_route())
    assert [trunk.name for trunk in route] == ["e911", "carrier"]
    assert g.counters["emergency_calls"] == 1
    cdr = make_cdr(dialled="911")
    g.call_ended(call, t, cdr)
    assert cdr.emergency
    assert usage_rows(g, [t])[0]["outbound_calls"] == 0  # never counted against a cap


# -- after a restart -------------------------------------------------------------------------


def make_cdr(**changes: Any) -> Cdr:
    cdr = Cdr(
        call_id="x",
        sip_call_id="x@phone",
        tenant="acme",
        direction="outbound",
        caller_number="100",
        caller_name="",
        dialled=LONDON,
        destination=LONDON,
        trunk="carrier",
        start=DAY0 + 10 * 3600 - 600,
        answer=DAY0 + 10 * 3600 - 590,
        end=DAY0 + 10 * 3600 - 290,
        disposition="ANSWERED",
        sip_code=200,
        q850_cause=16,
        q850_name="NORMAL_CLEARING",
        legs=[{"target": f"external {LONDON}", "status": 200}],
    )
    return dataclasses.replace(cdr, **changes)


def test_the_day_is_read_back_from_the_cdrs() -> None:
    clock = Clock()
    t = tenant(**{"101": {"calling": {"max_international_per_hour": 2}}})
    g = guard(clock)
    cdrs = [
        make_cdr(),  # 5 minutes, international, by 100
        make_cdr(call_id="y", start=DAY0 - 7200, answer=DAY0 - 60, end=DAY0 + 60),  # 1 min today
        make_cdr(call_id="z", caller_number="101", answer=None),  # not answered: no minutes
        make_cdr(  # forwarded by 101: 101's
            call_id="w",
            direction="inbound",
            caller_number="+16505550100",
            legs=[{"target": f"external {LONDON} [forwarded by 101]", "status": 200}],
        ),
        make_cdr(call_id="e", dialled="911", emergency=True),  # never counted
        make_cdr(call_id="i", legs=[{"target": "user_devices 101", "status": 200}]),  # inside
    ]
    assert replay_cdrs(g, cdrs, [t]) == 4
    rows = {(r["tenant"], r["user"]): r for r in usage_rows(g, [t])}
    assert rows[("acme", "100")]["minutes_today"] == pytest.approx(6.0)
    assert rows[("acme", "100")]["international_last_hour"] == 1
    assert rows[("acme", "101")]["international_last_hour"] == 2
    assert rows[("acme", None)]["international_last_hour"] == 3
    user = t.user_by_extension("101")
    assert user is not None
    over = g.screen_dial(t, user, LONDON)
    assert over is not None and over.rule == "user 101: calling.max_international_per_hour"


def test_calling_settings_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="'roaming' is not a number class"):
        TenantCalling.model_validate({"allowed_classes": ["roaming"]})
    with pytest.raises(ValueError, match="'XX' is not a country code"):
        UserCalling.model_validate({"blocked_countries": ["XX"]})
    with pytest.raises(ValueError, match="emergency_caller_id"):
        UserCalling.model_validate({"emergency_caller_id": "12"})
    with pytest.raises(ValueError, match="no trunk named 'nope'"):
        tenant({"emergency_trunk": "nope"})
    with pytest.raises(ValueError, match="911 is an emergency number"):
        tenant(**{"911": {}})


def test_emergency_caller_id_falls_back_from_user_to_site_to_tenant() -> None:
    from config.models import Tenant
    from softswitch.security.emergency import emergency_caller_id

    tenant = Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.test",
            "calling": {"emergency_caller_id": "+14155550100"},
            "sites": [{"name": "north", "emergency_caller_id": "+14155550111"}],
            "users": [
                {"extension": "101", "password": "secret-101-pw", "site": "north"},
                {
                    "extension": "102",
                    "password": "secret-102-pw",
                    "site": "north",
                    "calling": {"emergency_caller_id": "+14155550122"},
                },
                {"extension": "103", "password": "secret-103-pw"},
            ],
        }
    )
    caller_id = {u.extension: emergency_caller_id(tenant, u, None) for u in tenant.users}
    assert caller_id == {"101": "+14155550111", "102": "+14155550122", "103": "+14155550100"}
