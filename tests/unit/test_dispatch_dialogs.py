"""Request dispatch (softswitch.dispatch) over the dialog layer as the switch stacks it
(``answer_no_dialog=False``): a request with a To tag that matches no dialog is answered
by the switch's own rules, the same as before the dialog layer: 481 to what needs a
dialog, 200 to OPTIONS, 405 to the rest and 501 to a method nobody knows."""

from __future__ import annotations

import pytest

from config.models import OverloadSettings
from softswitch.dispatch import RequestDispatcher
from softswitch.overload import OverloadGuard
from softswitch.sip.address import Address
from softswitch.sip.dialog_layer import DialogLayer
from softswitch.sip.driver import SignallingCounters
from softswitch.sip.message import SipResponse, make_request, parse_message, via_value
from softswitch.sip.transaction import TimerSettings, TransactionLayer

PEER = Address("UDP", "203.0.113.5", 15062)


@pytest.mark.parametrize(
    ("method", "to_tag", "status"),
    [
        ("BYE", "gone", 481),
        ("INFO", "gone", 481),
        ("UPDATE", "gone", 481),
        ("OPTIONS", "gone", 200),
        ("MESSAGE", "gone", 405),
        ("FROB", "gone", 501),
        ("INVITE", None, 405),  # no call layer yet
    ],
)
def test_requests_in_no_dialog_get_the_switchs_answers(
    method: str, to_tag: str | None, status: int
) -> None:
    transactions = TransactionLayer(TimerSettings())
    dialogs = DialogLayer(
        transactions, local=lambda dest: ("198.51.100.1", 15060), answer_no_dialog=False
    )
    dispatcher = RequestDispatcher(
        transactions, OverloadGuard(OverloadSettings()), SignallingCounters(), retry_after=5
    )
    request = make_request(
        method,
        "sip:bob@198.51.100.1:15060",
        via=via_value("UDP", PEER.host, PEER.port),
        from_="<sip:alice@example.com>;tag=a1",
        to="<sip:bob@198.51.100.1>" + (f";tag={to_tag}" if to_tag else ""),
        call_id="c1",
        cseq=1,
    )
    dialogs.receive_message(parse_message(request.to_bytes()), PEER, 0.0)
    while (event := dialogs.next_event()) is not None:
        dispatcher.handle_event(event, 0.0)
    answers = [parse_message(data) for data, _ in dialogs.datagrams_to_send(0.0)]
    finals = [m.status for m in answers if isinstance(m, SipResponse) and m.status >= 200]
    assert finals == [status]
