"""Call pickup without sockets: the tenant's pickup settings (codes, groups, problems named
by field), routing's PICKUP nodes, and the call layer over a real media engine: the
picker's INVITE takes the ringing call (legs cancelled "completed elsewhere", caller
answered and bridged to the picker, CDRs saying so); nothing ringing answers 480."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from config.media import MediaSettings
from config.models import Tenant
from config.pickup import GROUP_PICKUP, PickupSettings
from media.engine import EngineSettings, MediaEngine
from routing.engine import plan_call
from routing.facts import CallFacts
from routing.plan import Application, TargetKind
from softswitch.calls.anchor import MediaAnchor
from softswitch.calls.pickup import PickupService
from softswitch.sip.address import Address
from softswitch.sip.auth import build_authorization
from softswitch.sip.message import SipRequest, SipResponse
from tests.unit.callkit import CALLER, SDP, Net, answer, caller_request, invite, place_call

USERS = [{"extension": e, "password": f"pw{e}"} for e in ("101", "102", "103")]
PICKER = Address("UDP", "198.51.100.9", 5060)
PHONE_SDP = SDP.replace(b"198.51.100.1", b"203.0.113.1")


def tenant(**pickup: object) -> Tenant:
    return Tenant.model_validate(
        {"name": "acme", "domain": "acme.test", "users": USERS, "pickup": pickup}
    )


def test_codes_are_the_prefix_before_each_user_and_the_group_code() -> None:
    codes = tenant(directed_prefix="*97#", group_code="*8").routing.feature_codes
    assert (codes["*97#101"].kind, codes["*97#101"].ref) == ("pickup", "101")
    assert codes["*8"].ref == GROUP_PICKUP
    assert "**101" not in codes
    settings = PickupSettings(groups=({"name": "desk", "members": ("101", "102")},))  # type: ignore[arg-type]
    assert settings.colleagues("101") == {"102"} and settings.colleagues("103") == frozenset()
    # No pickup settings, no pickup codes.
    plain = Tenant.model_validate({"name": "acme", "domain": "acme.test", "users": USERS})
    assert not any(c.kind == "pickup" for c in plain.routing.feature_codes.values())


@pytest.mark.parametrize(
    ("pickup", "message"),
    [
        ({"groups": [{"name": "desk", "members": ["101", "999"]}]}, "999 is not a user's"),
        ({"group_code": "*98"}, "*98 already dialled otherwise"),  # the voicemail inbox
        ({"group_code": "**5"}, "directed prefix plus '5'"),
        ({"directed_prefix": "x"}, "directed_prefix"),
        (
            {"groups": [{"name": "a", "members": ["101"]}, {"name": "a", "members": ["102"]}]},
            "unique",
        ),
    ],
)
def test_bad_pickup_settings_are_refused_with_the_field(
    pickup: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        tenant(**pickup)
    assert message in str(refused.value)
    assert "pickup" in str(refused.value)


def test_routing_makes_pickup_nodes_from_inside_only() -> None:
    routing = tenant().routing
    at = dt.datetime(2026, 7, 6, 10, tzinfo=dt.UTC)

    def node(dialled: str, from_trunk: bool = False) -> object:
        facts = CallFacts(
            caller="101", dialled=dialled, at=at, tenant="acme", from_trunk=from_trunk
        )
        return plan_call(routing, facts).root

    directed = node("**102")
    assert isinstance(directed, Application)
    assert (directed.target.kind, directed.target.ref) == (TargetKind.PICKUP, "102")
    group = node("*8")
    assert isinstance(group, Application) and group.target.ref == GROUP_PICKUP
    outside = node("**102", from_trunk=True)
    assert not (isinstance(outside, Application) and outside.target.kind is TargetKind.PICKUP)


# ------------------------------------------------------------------ the call layer
@pytest.fixture
def engine() -> Iterator[MediaEngine]:
    engine = MediaEngine(EngineSettings(address="127.0.0.1", port_min=43000, port_max=43999))
    yield engine
    asyncio.run(engine.close())


def pickup_net(engine: MediaEngine, groups: list[dict[str, object]] | None = None) -> Net:
    net = Net(
        anchor=MediaAnchor(engine, MediaSettings(address="127.0.0.1")),
        pickup={"groups": groups or []},
    )
    PickupService(net.mgr)
    return net


async def _settle(net: Net) -> None:
    for _ in range(5):
        await asyncio.sleep(0)
        net.advance(0.01, step=0.01)


def dial_as_200(net: Net, dialled: str, replaces: str = "") -> SipResponse:
    """200 dials ``dialled`` from PICKER (with a Replaces header); its final answer."""
    first = invite(dialled, call_id="pick-1", from_user="200")
    net.deliver(first, PICKER)
    challenge = next(m for m in net.take(PICKER) if isinstance(m, SipResponse) and m.status == 407)
    value = challenge.get("Proxy-Authenticate")
    assert value is not None
    auth = build_authorization(value, "INVITE", f"sip:{dialled}@pbx.test", "200", "pw200")
    second = invite(dialled, 2, auth, "pick-1", from_user="200")
    if replaces:
        second.add("Replaces", replaces)
    net.deliver(second, PICKER)
    return next(m for m in net.take(PICKER) if isinstance(m, SipResponse) and m.status >= 200)


def picker_request(method: str, cseq: int, final: SipResponse) -> SipRequest:
    """An in-dialog request from the picker, addressed per the switch's 200."""
    to = final.get("To")
    assert to is not None
    headers = [
        ("Via", f"SIP/2.0/UDP 198.51.100.9:5060;branch=z9hG4bKpick{method}{cseq}"),
        ("Max-Forwards", "70"),
        ("From", '"Alice" <sip:200@pbx.test>;tag=alice'),
        ("To", to),
        ("Call-ID", "pick-1"),
        ("CSeq", f"{cseq} {method}"),
    ]
    return SipRequest(method, "sip:192.0.2.1:5060", headers)


def ring_102(net: Net) -> tuple[Address, SipRequest]:
    """100 calls 102, whose phone rings."""
    phone = net.register("102", "203.0.113.1")
    place_call(net, "102")
    (out,) = net.requests(phone, "INVITE")
    answer(net, out, 180, phone, "ph")
    return phone, out


async def test_directed_pickup_takes_the_ringing_call(engine: MediaEngine) -> None:
    net = pickup_net(engine)
    phone, out = ring_102(net)
    final = dial_as_200(net, "**102")
    assert final.status == 200
    net.deliver(picker_request("ACK", 2, final), PICKER)
    await _settle(net)
    # 102's phone is cancelled, saying the call was completed elsewhere.
    (cancel,) = net.requests(phone, "CANCEL")
    assert "completed elsewhere" in (cancel.get("Reason") or "").lower()
    answer(net, out, 487, phone, "ph")
    answered = [m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 200]
    assert answered and b"m=audio" in answered[-1].body  # the caller, answered by the switch
    assert engine.stats().endpoints == 2  # the caller's and the picker's, bridged
    net.deliver(caller_request(net, "ACK", 2, answered[-1]), CALLER)
    # The caller hangs up: the picker gets a BYE, both calls leave their CDRs.
    net.deliver(caller_request(net, "BYE", 3, answered[-1]), CALLER)
    await _settle(net)
    assert [m for m in net.take(PICKER) if isinstance(m, SipRequest) and m.method == "BYE"]
    picked = next(c for c in net.cdrs if c.dialled == "102")
    assert (picked.disposition, picked.destination) == ("ANSWERED", "200")
    (leg,) = picked.legs
    assert leg["status"] == 487 and leg["transfer"]["kind"] == "pickup"
    assert leg["transfer"]["by"] == "200"
    picker = next(c for c in net.cdrs if c.dialled == "**102")
    assert picker.disposition == "ANSWERED" and picker.caller_number == "200"
    assert engine.stats().endpoints == 0
    assert net.mgr.counters["pickups"] == 1
    assert net.mgr.calls == {}
    assert not any(net.mgr.planner._busy.values())  # nobody left marked busy


async def test_nothing_ringing_answers_480(engine: MediaEngine) -> None:
    net = pickup_net(engine)
    assert dial_as_200(net, "**102").status == 480
    # Group pickup outside any group finds nothing either, even with 102 ringing.
    ring_102(net)
    assert dial_as_200(net, "*8").status == 480
    await _settle(net)


async def test_group_pickup_takes_a_colleagues_ringing_call(engine: MediaEngine) -> None:
    net = pickup_net(engine, [{"name": "desk", "members": ["102", "200"]}])
    phone, out = ring_102(net)
    assert dial_as_200(net, "*8").status == 200
    await _settle(net)
    assert len(net.requests(phone, "CANCEL")) == 1
    answer(net, out, 487, phone, "ph")
    assert any(m.status == 200 for m in net.take(CALLER) if isinstance(m, SipResponse))
    assert net.mgr.counters["pickups"] == 1


async def test_invite_with_replaces_of_the_ringing_dialog_picks_it_up(
    engine: MediaEngine,
) -> None:
    # The busy-lamp way: the lamp showed the ringing leg's Call-ID and the switch's tag.
    net = pickup_net(engine)
    phone, out = ring_102(net)
    tag = (out.get("From") or "").split("tag=")[1]
    final = dial_as_200(net, "102", replaces=f"{out.call_id};to-tag={tag};from-tag=ph;early-only")
    assert final.status == 200
    net.deliver(picker_request("ACK", 2, final), PICKER)
    await _settle(net)
    assert len(net.requests(phone, "CANCEL")) == 1
    answer(net, out, 487, phone, "ph")
    assert any(m.status == 200 for m in net.take(CALLER) if isinstance(m, SipResponse))
    assert net.mgr.counters["pickups"] == 1
    # A Replaces naming no ringing dialog is still 481.
    other = pickup_net(engine)
    refused = dial_as_200(other, "102", replaces="nope;to-tag=a;from-tag=b;early-only")
    assert refused.status == 481
