"""Client transactions that know their owner: a response, a timeout or a transport failure
goes straight to whoever sent the request (softswitch.sip.transaction.TransactionOwner), and
request dispatch (softswitch.dispatch) hands unowned ones to the call layer."""

from __future__ import annotations

from config.models import OverloadSettings
from softswitch.dispatch import RequestDispatcher
from softswitch.overload import OverloadGuard
from softswitch.sip.address import Address
from softswitch.sip.driver import SignallingCounters
from softswitch.sip.message import (
    SipRequest,
    SipResponse,
    make_request,
    make_response,
    parse_message,
    via_value,
)
from softswitch.sip.transaction import (
    ClientTransaction,
    Event,
    ResponseReceived,
    TimerSettings,
    Transaction,
    TransactionLayer,
    TransactionTimeout,
    TransportFailed,
    deliver,
    owner_of,
)

DEST = Address("UDP", "203.0.113.9", 15080)


class Owner:
    def __init__(self) -> None:
        self.responses: list[int] = []
        self.failures: list[bool] = []

    def on_response(self, response: SipResponse, transaction: ClientTransaction) -> None:
        self.responses.append(response.status)

    def on_transaction_failed(self, transaction: Transaction, timeout: bool) -> None:
        self.failures.append(timeout)


def _options(call_id: str) -> SipRequest:
    return make_request(
        "OPTIONS",
        "sip:100@203.0.113.9:15080",
        via=via_value("UDP", "198.51.100.1", 15060),
        from_="<sip:qualify@198.51.100.1>;tag=q1",
        to="<sip:100@203.0.113.9:15080>",
        call_id=call_id,
        cseq=1,
    )


def _answer(layer: TransactionLayer, tx: ClientTransaction, status: int, now: float) -> None:
    response = parse_message(make_response(tx.request, status, None, to_tag="t").to_bytes())
    assert isinstance(response, SipResponse)
    layer.receive_message(response, DEST, now)


def _events(layer: TransactionLayer) -> list[Event]:
    out: list[Event] = []
    while (event := layer.next_event()) is not None:
        out.append(event)
    return out


def test_responses_timeouts_and_transport_failures_reach_the_owner() -> None:
    layer = TransactionLayer(TimerSettings())
    owner = Owner()
    answered = layer.send_request(_options("c1"), DEST, 0.0, owner=owner)
    silent = layer.send_request(_options("c2"), DEST, 0.0, owner=owner)
    assert answered.owner is owner and silent.owner is owner
    _answer(layer, answered, 200, 0.1)
    layer.handle_timer(64 * 0.5 + 1)
    events = _events(layer)
    assert [type(e) for e in events] == [ResponseReceived, TransactionTimeout]
    for event in events:
        assert owner_of(event) is owner
        deliver(event, owner)
    assert owner.responses == [200] and owner.failures == [True]
    unreachable = layer.send_request(_options("c3"), DEST, 40.0, owner=owner)
    layer.transport_error(DEST, 40.1)
    (failed,) = _events(layer)
    assert isinstance(failed, TransportFailed) and failed.transaction is unreachable
    deliver(failed, owner)
    assert owner.failures == [True, False]


def test_dispatch_hands_a_response_to_its_owner_and_the_rest_to_the_calls() -> None:
    layer = TransactionLayer(TimerSettings())
    dispatcher = RequestDispatcher(
        layer, OverloadGuard(OverloadSettings()), SignallingCounters(), retry_after=5
    )
    owner = Owner()
    owned = layer.send_request(_options("c1"), DEST, 0.0, owner=owner)
    unowned = layer.send_request(_options("c2"), DEST, 0.0)
    _answer(layer, owned, 404, 0.1)
    _answer(layer, unowned, 486, 0.1)
    for event in _events(layer):
        dispatcher.handle_event(event, 0.1)  # no call layer: the unowned one is dropped
    assert owner.responses == [404]
