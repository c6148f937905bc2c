"""``AppCall.connect``: an application hands its answered caller on to another destination
(softswitch.calls.connect), driven without SIP sockets over a real media engine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from config.media import MediaSettings
from media.engine import EngineSettings, MediaEngine
from routing.plan import Application, Target, TargetKind
from softswitch.calls.anchor import MediaAnchor
from softswitch.calls.apps import AppCall, Connected, ConnectOutcome
from softswitch.calls.apps import Application as App
from softswitch.calls.call import Call
from softswitch.sip.message import SipRequest, SipResponse
from tests.unit.callkit import CALLER, SDP, Net, answer, caller_request, place_call

PHONE_SDP = SDP.replace(b"198.51.100.1", b"203.0.113.1")


@pytest.fixture
def engine() -> Iterator[MediaEngine]:
    engine = MediaEngine(EngineSettings(address="127.0.0.1", port_min=42000, port_max=42999))
    yield engine
    asyncio.run(engine.close())


@pytest.fixture
def net(engine: MediaEngine) -> Net:
    # Extension 500 is routed as a queue: the test's own application runs there.
    return Net(
        routing={"queues": ["500"]}, anchor=MediaAnchor(engine, MediaSettings(address="127.0.0.1"))
    )


class Script:
    """An application on extension 500 that connects its caller to ``destination`` and
    records what came back, then waits ``after`` for the test to let it go on."""

    def __init__(self, net: Net, destination: object, timeout: float | None = None) -> None:
        self.results: list[Connected] = []
        self.session: AppCall | None = None
        self.finished = asyncio.Event()
        self.go_on = asyncio.Event()

        async def app(session: AppCall) -> None:
            self.session = session
            self.results.append(await session.connect(destination, timeout=timeout))  # type: ignore[arg-type]
            if not self.results[-1].answered:
                await self.go_on.wait()
            self.finished.set()

        def service(call: Call, target: Target) -> App | None:
            return app if target.ref == "500" else None

        net.mgr.applications["queue"] = service


async def _settle(net: Net) -> None:
    for _ in range(5):
        await asyncio.sleep(0)
        net.advance(0.01, step=0.01)


def _final(net: Net) -> SipResponse:
    return next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 200)


async def _call_app(net: Net) -> SipResponse:
    place_call(net, "500")
    final = _final(net)
    net.deliver(caller_request(net, "ACK", 2, final), CALLER)
    await _settle(net)
    return final


async def test_answered_destination_is_bridged_and_the_application_ends(
    net: Net, engine: MediaEngine
) -> None:
    phone = net.register("102", "203.0.113.1")
    script = Script(net, "102")
    final = await _call_app(net)
    (out,) = net.requests(phone, "INVITE")
    assert b"m=audio" in out.body
    answer(net, out, 200, phone, "ph", PHONE_SDP)
    await _settle(net)
    assert script.results == [Connected(ConnectOutcome.ANSWERED, 200, "OK", answered_by="102")]
    assert script.finished.is_set() and script.session is not None
    assert script.session.ended.is_set()
    assert [m for m in net.take(CALLER) if isinstance(m, SipRequest)] == []  # no BYE, no re-answer
    assert engine.stats().endpoints == 2  # the caller's and 102's, bridged
    (app_cdr,) = net.cdrs
    assert app_cdr.disposition == "ANSWERED"
    net.deliver(caller_request(net, "BYE", 3, final), CALLER)
    assert len(net.requests(phone, "BYE")) == 1
    assert engine.stats().endpoints == 0
    assert [c.destination for c in net.cdrs][1] == "102"
    assert net.mgr.calls == {}


async def test_busy_destination_gives_the_caller_back(net: Net, engine: MediaEngine) -> None:
    phone = net.register("102", "203.0.113.1")
    script = Script(net, Target(TargetKind.USER_DEVICES, "102"))
    final = await _call_app(net)
    (out,) = net.requests(phone, "INVITE")
    answer(net, out, 486, phone, "ph")
    await _settle(net)
    (result,) = script.results
    assert result.outcome is ConnectOutcome.BUSY and result.status == 486
    assert script.session is not None and not script.session.ended.is_set()
    assert engine.stats().endpoints == 1  # the caller's, still the application's
    # The caller is still the application's: hanging up ends its call.
    net.deliver(caller_request(net, "BYE", 3, final), CALLER)
    await _settle(net)
    assert script.session.ended.is_set()
    script.go_on.set()
    await _settle(net)
    assert engine.stats().endpoints == 0 and net.mgr.calls == {}


async def test_no_answer_within_the_timeout(net: Net, engine: MediaEngine) -> None:
    phone = net.register("102", "203.0.113.1")
    script = Script(net, "102", timeout=5)
    await _call_app(net)
    (out,) = net.requests(phone, "INVITE")
    answer(net, out, 180, phone, "ph")
    net.advance(6.0)
    await _settle(net)
    (result,) = script.results
    assert result.outcome is ConnectOutcome.NO_ANSWER
    assert len(net.requests(phone, "CANCEL")) == 1
    script.go_on.set()
    await _settle(net)
    net.advance(1.0)
    assert engine.stats().endpoints == 0 and net.mgr.calls == {}


async def test_nothing_to_ring_fails(net: Net, engine: MediaEngine) -> None:
    script = Script(net, "+")  # nothing routable
    await _call_app(net)
    (result,) = script.results
    assert result.outcome is ConnectOutcome.FAILED and result.status == 484
    script.go_on.set()
    await _settle(net)
    assert engine.stats().endpoints == 0


async def test_an_application_destination_takes_the_caller_without_a_second_answer(
    net: Net, engine: MediaEngine
) -> None:
    second: list[AppCall] = []

    def mailbox(call: Call, target: Target) -> App:
        async def run(session: AppCall) -> None:
            second.append(session)
            await session.ended.wait()

        return run

    net.mgr.applications.register(TargetKind.VOICEMAIL, mailbox)
    script = Script(net, Application(Target(TargetKind.VOICEMAIL, "102")))
    final = await _call_app(net)
    assert script.results == [Connected(ConnectOutcome.ANSWERED, 200, "OK")]
    (session,) = second
    assert script.session is not None and session.endpoint is script.session.endpoint
    # answered once, by the first application: nothing more reaches the caller
    assert [m for m in net.take(CALLER) if isinstance(m, SipResponse)] == []
    net.deliver(caller_request(net, "BYE", 3, final), CALLER)
    await _settle(net)
    assert session.ended.is_set() and engine.stats().endpoints == 0


async def test_caller_hanging_up_while_the_destination_rings(net: Net, engine: MediaEngine) -> None:
    phone = net.register("102", "203.0.113.1")
    script = Script(net, "102")
    final = await _call_app(net)
    (out,) = net.requests(phone, "INVITE")
    answer(net, out, 180, phone, "ph")
    net.deliver(caller_request(net, "BYE", 3, final), CALLER)
    await _settle(net)
    (result,) = script.results
    assert result.outcome is ConnectOutcome.FAILED and result.status == 487
    assert script.session is not None and script.session.ended.is_set()
    assert len(net.requests(phone, "CANCEL")) == 1
    script.go_on.set()
    await _settle(net)
    answer(net, out, 487, phone, "ph")
    assert engine.stats().endpoints == 0 and net.mgr.calls == {}


# ------------------------------------------------------------------------ press 1 to accept
class Asked:
    """A confirmer that answers what the test says, when it says."""

    def __init__(self) -> None:
        self.requests: list[object] = []
        self.answer: asyncio.Future[bool] | None = None

    async def __call__(self, request: object) -> bool:
        self.requests.append(request)
        self.answer = asyncio.get_running_loop().create_future()
        return await self.answer


@pytest.mark.parametrize("accepted", [True, False])
async def test_a_leg_to_confirm_wins_only_when_accepted(
    net: Net, engine: MediaEngine, accepted: bool
) -> None:
    from routing.plan import Ring

    phone = net.register("102", "203.0.113.1")
    other = net.register("100", "203.0.113.9")
    asked = Asked()
    net.mgr.confirmations.confirmer = asked
    node = Ring(
        (
            Target(TargetKind.USER_DEVICES, "102", answer_confirmation=True),
            Target(TargetKind.USER_DEVICES, "100", delay=5),
        ),
        30,
    )
    script = Script(net, node)
    await _call_app(net)
    (out,) = net.requests(phone, "INVITE")
    answer(net, out, 200, phone, "ph", PHONE_SDP)
    await _settle(net)
    assert len(net.requests(phone, "ACK")) == 1  # ACKed, but not bridged yet
    assert script.results == [] and asked.requests
    assert asked.answer is not None
    asked.answer.set_result(accepted)
    await _settle(net)
    if accepted:
        assert script.results == [Connected(ConnectOutcome.ANSWERED, 200, "OK", answered_by="102")]
        assert net.requests(phone, "BYE") == []
    else:
        assert len(net.requests(phone, "BYE")) == 1  # dropped; the callflow goes on
        assert script.results == []
        net.advance(6.0)
        assert len(net.requests(other, "INVITE")) == 1  # the delayed leg still rings


async def test_an_answerer_hanging_up_while_asked_is_not_answered(
    net: Net, engine: MediaEngine
) -> None:
    from routing.plan import Ring

    phone = net.register("102", "203.0.113.1")
    asked = Asked()
    net.mgr.confirmations.confirmer = asked
    script = Script(net, Ring((Target(TargetKind.USER_DEVICES, "102", screening=True),), 30))
    await _call_app(net)
    (out,) = net.requests(phone, "INVITE")
    answer(net, out, 200, phone, "ph", PHONE_SDP)
    await _settle(net)
    bye = SipRequest(
        "BYE",
        "sip:192.0.2.1:5060",
        [
            ("Via", "SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKbye9"),
            ("Max-Forwards", "70"),
            ("From", out.get("To") + ";tag=ph"),
            ("To", out.get("From") or ""),  # type: ignore[operator]
            ("Call-ID", out.call_id or ""),
            ("CSeq", "2 BYE"),
        ],
    )
    net.deliver(bye, phone)
    assert asked.answer is not None
    asked.answer.set_result(False)  # the confirmer saw the endpoint go
    await _settle(net)
    (result,) = script.results
    assert result.outcome is ConnectOutcome.NO_ANSWER  # the caller is back, not cancelled
    assert script.session is not None and not script.session.ended.is_set()


async def test_a_caller_cancelling_while_the_answerer_is_asked_gets_the_answerer_a_bye(
    engine: MediaEngine,
) -> None:
    net = Net(
        routing={"users": {"102": {"default_rule": {"screening": True}}}},
        anchor=MediaAnchor(engine, MediaSettings(address="127.0.0.1")),
    )
    phone = net.register("102", "203.0.113.1")
    asked = Asked()
    net.mgr.confirmations.confirmer = asked  # no screener: the answerer is asked at once
    place_call(net, "102")
    (out,) = net.requests(phone, "INVITE")
    answer(net, out, 200, phone, "ph", PHONE_SDP)
    await _settle(net)
    assert asked.answer is not None and net.requests(phone, "BYE") == []
    cancel = SipRequest(
        "CANCEL",
        "sip:102@pbx.test",
        [
            ("Via", "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKcaller2call-1"),
            ("Max-Forwards", "70"),
            ("From", '"Alice" <sip:100@pbx.test>;tag=alice'),
            ("To", "<sip:102@pbx.test>"),
            ("Call-ID", "call-1"),
            ("CSeq", "2 CANCEL"),
        ],
    )
    net.deliver(cancel, CALLER)
    await _settle(net)
    asked.answer.set_result(False)  # the confirmer saw the call given up
    await _settle(net)
    assert len(net.requests(phone, "BYE")) == 1  # not left talking to nobody
    assert net.mgr.calls == {}


async def test_a_screened_ring_node_first_hands_the_caller_to_the_screener(
    engine: MediaEngine,
) -> None:
    from routing.plan import Ring

    net = Net(
        routing={"users": {"102": {"default_rule": {"screening": True}}}},
        anchor=MediaAnchor(engine, MediaSettings(address="127.0.0.1")),
    )
    phone = net.register("102", "203.0.113.1")
    screened: list[Ring] = []
    results: list[Connected] = []

    def screener(call: Call, node: Ring) -> App:
        screened.append(node)

        async def run(session: AppCall) -> None:
            results.append(await session.connect(node, caller_voice=None))

        return run

    net.mgr.confirmations.screener = screener
    net.mgr.confirmations.confirmer = Asked()
    place_call(net, "102")
    assert 200 in net.statuses()  # the caller is answered to record a name
    assert net.requests(phone, "INVITE") == []  # nothing rings before that
    await _settle(net)
    (node,) = screened
    assert node.targets[0].screening
    (out,) = net.requests(phone, "INVITE")  # now the screened node rings
    answer(net, out, 200, phone, "ph", PHONE_SDP)
    await _settle(net)
    assert results == []  # its answerer is being asked
