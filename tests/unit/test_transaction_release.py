"""Completed non-INVITE server transactions let go of their message objects; stateless
answers can be routed from a Via the caller already has. Fake clock throughout."""

from __future__ import annotations

import gc

import pytest

from softswitch.sip.address import Address
from softswitch.sip.message import SipRequest, SipResponse, make_response, parse_message
from softswitch.sip.transaction import (
    ClientTransaction,
    RequestReceived,
    ServerTransaction,
    TimerSettings,
    TransactionLayer,
    TxState,
    stamp_via,
)

UDP_PEER = Address("UDP", "203.0.113.5", 15062)
TCP_PEER = Address("TCP", "203.0.113.5", 40123, conn_id=3)
MAX_STEPS = 10_000


def incoming(
    method: str,
    *,
    branch: str = "z9hG4bKr1",
    transport: str = "UDP",
    to_tag: str | None = None,
    via_params: str = "",
    call_id: str = "call-1",
    host: str = "203.0.113.5",
    port: int = 15062,
) -> SipRequest:
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} sip:bob@198.51.100.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {host}:{port};branch={branch}{via_params}\r\n"
        "Max-Forwards: 69\r\n"
        "From: <sip:alice@example.com>;tag=f1\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, SipRequest)
    return msg


def make_layer() -> TransactionLayer:
    return TransactionLayer(TimerSettings(t1=0.5, t2=4.0, t4=5.0))


def receive(
    layer: TransactionLayer, request: SipRequest, source: Address, now: float = 0.0
) -> ServerTransaction:
    layer.receive_message(request, source, now)
    event = layer.next_event()
    assert isinstance(event, RequestReceived) and event.transaction is not None
    assert layer.next_event() is None
    return event.transaction


def holds_messages(obj: object) -> bool:
    """Whether ``obj`` refers directly to a parsed message (what the GC would walk)."""
    return any(isinstance(ref, SipRequest | SipResponse) for ref in gc.get_referents(obj))


def drain_timers(layer: TransactionLayer, end: float) -> None:
    for _ in range(MAX_STEPS):
        deadline = layer.get_timer()
        if deadline is None or deadline > end:
            return
        layer.handle_timer(deadline)
        layer.datagrams_to_send(deadline)
    raise AssertionError("timers never ran out")


@pytest.mark.parametrize(
    ("method", "source", "transport"),
    [
        ("REGISTER", UDP_PEER, "UDP"),
        ("OPTIONS", UDP_PEER, "UDP"),
        ("BYE", UDP_PEER, "UDP"),
        ("REGISTER", TCP_PEER, "TCP"),
    ],
)
def test_final_answer_releases_request_and_response(
    method: str, source: Address, transport: str
) -> None:
    layer = make_layer()
    request = incoming(method, transport=transport, to_tag="t1" if method == "BYE" else None)
    tx = receive(layer, request, source)
    assert tx.request is request and not tx.released
    layer.send_response(tx, make_response(request, 100, "Trying"), 0.1)
    assert tx.request is request and not tx.released  # Proceeding still answers
    layer.datagrams_to_send(0.1)
    final = make_response(request, 200, "OK", to_tag="srv")
    layer.send_response(tx, final, 0.2)
    [(data, _)] = layer.datagrams_to_send(0.2)
    assert data == final.to_bytes()
    assert tx.released and tx.last_response is None
    assert not holds_messages(tx)
    with pytest.raises(RuntimeError, match="released"):
        _ = tx.request
    # What the TU might still do with it is refused quietly, as before.
    layer.send_response(tx, make_response(request, 500, "Late", to_tag="srv"), 0.3)
    assert layer.datagrams_to_send(0.3) == []
    assert tx.method == method and method in repr(tx)


def test_released_udp_transaction_still_absorbs_retransmissions_until_timer_j() -> None:
    layer = make_layer()
    tx = receive(layer, incoming("REGISTER"), UDP_PEER)
    final = make_response(incoming("REGISTER"), 401, "Unauthorized", to_tag="srv")
    layer.send_response(tx, final, 0.0)
    layer.datagrams_to_send(0.0)
    assert tx.released and tx.state is TxState.COMPLETED
    for now in (1.0, 5.0, 31.0):
        layer.receive_message(incoming("REGISTER"), UDP_PEER, now)
        assert layer.next_event() is None
        assert layer.datagrams_to_send(now) == [(final.to_bytes(), tx.response_dest)]
    drain_timers(layer, 100.0)
    assert tx.state is TxState.TERMINATED and len(layer) == 0 and layer.timer_count == 0


def test_merge_index_survives_release_and_is_cleared_by_timer_j() -> None:
    layer = make_layer()
    first = incoming("REGISTER", branch="z9hG4bKa")
    tx = receive(layer, first, UDP_PEER)
    layer.send_response(tx, make_response(first, 200, "OK", to_tag="srv"), 0.0)
    layer.datagrams_to_send(0.0)
    # Same request by another path while Timer J runs: still merged (482).
    layer.receive_message(incoming("REGISTER", branch="z9hG4bKb"), UDP_PEER, 1.0)
    assert layer.next_event() is None
    [(data, _)] = layer.datagrams_to_send(1.0)
    answer = parse_message(data)
    assert isinstance(answer, SipResponse) and answer.status == 482
    drain_timers(layer, 100.0)
    assert len(layer) == 0
    again = receive(layer, incoming("REGISTER", branch="z9hG4bKc"), UDP_PEER, 101.0)
    assert again.request.method == "REGISTER"


def test_internal_non_invite_answers_are_released() -> None:
    layer = make_layer()
    layer.receive_message(incoming("CANCEL", branch="z9hG4bKnone"), UDP_PEER, 0.0)
    assert layer.next_event() is None
    [(data, _)] = layer.datagrams_to_send(0.0)
    answer = parse_message(data)
    assert isinstance(answer, SipResponse) and answer.status == 481
    [tx] = layer._servers.values()
    assert tx.internal and tx.released and not holds_messages(tx)
    layer.receive_message(incoming("CANCEL", branch="z9hG4bKnone"), UDP_PEER, 1.0)
    assert layer.datagrams_to_send(1.0) == [(data, tx.response_dest)]


@pytest.mark.parametrize("status", [180, 200, 486])
def test_invite_transactions_keep_their_messages(status: int) -> None:
    layer = make_layer()
    invite = incoming("INVITE")
    tx = receive(layer, invite, UDP_PEER)
    response = make_response(invite, status, to_tag="srv")
    layer.send_response(tx, response, 0.1)
    assert not tx.released and tx.request is invite and tx.last_response is response


def test_client_transactions_keep_their_request_after_the_final() -> None:
    layer = make_layer()
    dest = Address("UDP", "192.0.2.1", 15000)
    request = incoming("REGISTER", branch="z9hG4bKcl", host="198.51.100.1", port=15070)
    ctx = layer.send_request(request, dest, 0.0)
    assert isinstance(ctx, ClientTransaction)
    layer.receive_message(
        parse_message(make_response(request, 401, to_tag="r").to_bytes()), dest, 0.1
    )
    assert ctx.state is TxState.COMPLETED
    # The TU handles the final after the state change and may build a retry from it.
    assert ctx.request is request and ctx.last_response is not None


@pytest.mark.parametrize(
    ("via_params", "source", "expected"),
    [
        ("", UDP_PEER, UDP_PEER),
        (";rport", Address("UDP", "198.18.0.7", 32000), Address("UDP", "198.18.0.7", 32000)),
        ("", Address("UDP", "198.18.0.7", 32000), Address("UDP", "198.18.0.7", 15062)),
        (";maddr=239.1.1.1", UDP_PEER, Address("UDP", "239.1.1.1", 15062)),
    ],
)
def test_stateless_response_from_the_stamped_via(
    via_params: str, source: Address, expected: Address
) -> None:
    request = incoming("REGISTER", via_params=via_params)
    via = request.top_via
    assert via is not None
    stamp_via(request, via, source)
    response = make_response(request, 401, "Unauthorized", to_tag="x")
    layer = make_layer()
    layer.send_stateless_response(response, source, via)
    layer.send_stateless_response(response, source)
    given, parsed = layer.datagrams_to_send(0.0)
    assert given == parsed == (response.to_bytes(), expected)
    assert len(layer) == 0
