"""Client transactions (RFC 3261 17.1, RFC 6026 7.2) driven with a fake clock."""

from __future__ import annotations

import pytest

from softswitch.sip.address import Address
from softswitch.sip.message import SipRequest, SipResponse, make_response, parse_message
from softswitch.sip.transaction import (
    ClientTransaction,
    ResponseReceived,
    TimerSettings,
    TransactionLayer,
    TransactionTimeout,
    TransportFailed,
    TxState,
)

UDP_PEER = Address("UDP", "192.0.2.10", 15070)
TCP_PEER = Address("TCP", "192.0.2.10", 15070, conn_id=7)
MAX_STEPS = 10_000


def outgoing(
    method: str = "INVITE", branch: str = "z9hG4bKc1", transport: str = "UDP", cseq: int = 1
) -> SipRequest:
    text = (
        f"{method} sip:bob@192.0.2.10:15070 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 198.51.100.1:15060;branch={branch};rport\r\n"
        "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice" <sip:alice@example.com>;tag=a1\r\n'
        "To: <sip:bob@example.com>\r\n"
        f"Call-ID: call-{branch}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, SipRequest)
    return msg


def answer(request: SipRequest, status: int, to_tag: str | None = "b1") -> SipResponse:
    """The response as it would arrive off the wire."""
    msg = parse_message(make_response(request, status, to_tag=to_tag).to_bytes())
    assert isinstance(msg, SipResponse)
    return msg


def events(layer: TransactionLayer) -> list[object]:
    out: list[object] = []
    for _ in range(MAX_STEPS):
        event = layer.next_event()
        if event is None:
            return out
        out.append(event)
    raise AssertionError("event queue never drained")


def fire_until(layer: TransactionLayer, end: float) -> list[tuple[float, list[bytes]]]:
    """Fire every timer up to ``end``; return (time, datagrams sent) per firing."""
    fired: list[tuple[float, list[bytes]]] = []
    for _ in range(MAX_STEPS):
        deadline = layer.get_timer()
        if deadline is None or deadline > end:
            return fired
        layer.handle_timer(deadline)
        fired.append((deadline, [data for data, _ in layer.datagrams_to_send(deadline)]))
    raise AssertionError("timers never settled")


def retransmit_times(fired: list[tuple[float, list[bytes]]]) -> list[float]:
    return [t for t, sent in fired if sent]


def make_layer(t1: float = 0.5, t2: float = 4.0, t4: float = 5.0) -> TransactionLayer:
    return TransactionLayer(timers=TimerSettings(t1=t1, t2=t2, t4=t4))


# ------------------------------------------------------------------- INVITE: timers A, B


@pytest.mark.parametrize("t1", [0.5, 0.1, 2.0])
def test_invite_udp_timer_a_doubles_and_timer_b_times_out(t1: float) -> None:
    layer = make_layer(t1=t1, t2=4.0)
    req = outgoing()
    tx = layer.send_request(req, UDP_PEER, now=0.0)
    assert layer.datagrams_to_send(0.0) == [(req.to_bytes(), UDP_PEER)]
    assert tx.state is TxState.CALLING
    fired = fire_until(layer, 1000.0)
    # Timer A is not capped by T2: 1, 3, 7, 15, 31, 63 x T1, so 7 transmissions in all.
    assert retransmit_times(fired) == pytest.approx([t1 * k for k in (1, 3, 7, 15, 31, 63)])
    assert all(sent == [req.to_bytes()] for _, sent in fired if sent)
    assert fired[-1][0] == pytest.approx(64 * t1)  # Timer B
    assert events(layer) == [TransactionTimeout(tx)]
    assert tx.state is TxState.TERMINATED
    assert len(layer) == 0 and layer.get_timer() is None


def test_invite_tcp_no_retransmissions_timer_b_still_runs() -> None:
    layer = make_layer()
    tx = layer.send_request(outgoing(transport="TCP"), TCP_PEER, now=10.0)
    assert len(layer.datagrams_to_send(10.0)) == 1
    assert layer.get_timer() == pytest.approx(10.0 + 32.0)
    fired = fire_until(layer, 1000.0)
    assert retransmit_times(fired) == []
    assert events(layer) == [TransactionTimeout(tx)]
    assert layer.transaction_count == 0


def test_provisional_stops_timer_a_and_b() -> None:
    layer = make_layer()
    req = outgoing()
    tx = layer.send_request(req, UDP_PEER, 0.0)
    layer.datagrams_to_send(0.0)
    fire_until(layer, 0.6)  # one retransmission
    ringing = answer(req, 180)
    layer.receive_message(ringing, UDP_PEER, 0.7)
    assert tx.state is TxState.PROCEEDING
    assert events(layer) == [ResponseReceived(ringing, tx)]
    # Nothing until the proceeding guard: neither A nor B.
    assert layer.get_timer() == pytest.approx(0.7 + layer.timers.proceeding_guard)
    assert fire_until(layer, 100.0) == []
    # A repeated provisional is passed up too (it may carry new information).
    layer.receive_message(answer(req, 183), UDP_PEER, 1.0)
    assert [type(e) for e in events(layer)] == [ResponseReceived]


def test_invite_proceeding_guard_ends_a_silent_transaction() -> None:
    layer = TransactionLayer(TimerSettings(proceeding_guard=180.0))
    req = outgoing()
    tx = layer.send_request(req, UDP_PEER, 0.0)
    layer.receive_message(answer(req, 180), UDP_PEER, 1.0)
    layer.receive_message(answer(req, 180), UDP_PEER, 100.0)  # each provisional resets it
    events(layer)
    fired = fire_until(layer, 10_000.0)
    assert [t for t, _ in fired] == [pytest.approx(280.0)]
    assert events(layer) == [TransactionTimeout(tx)]
    assert len(layer) == 0


# --------------------------------------------------------------- INVITE: 2xx, Accepted, M


@pytest.mark.parametrize(("peer", "transport"), [(UDP_PEER, "UDP"), (TCP_PEER, "TCP")])
def test_invite_2xx_accepted_passes_retransmissions_up_until_timer_m(
    peer: Address, transport: str
) -> None:
    layer = make_layer()
    req = outgoing(transport=transport)
    tx = layer.send_request(req, peer, 0.0)
    layer.datagrams_to_send(0.0)
    ok = answer(req, 200)
    layer.receive_message(ok, peer, 1.0)
    assert tx.state is TxState.ACCEPTED
    assert events(layer) == [ResponseReceived(ok, tx)]
    assert layer.datagrams_to_send(1.0) == []  # the TU ACKs a 2xx, not the transaction
    ok_again = answer(req, 200)
    layer.receive_message(ok_again, peer, 2.0)
    assert events(layer) == [ResponseReceived(ok_again, tx)]
    # A forked 2xx with another To tag is passed up as well (RFC 6026 7.2).
    forked = answer(req, 200, to_tag="b2")
    layer.receive_message(forked, peer, 3.0)
    assert events(layer) == [ResponseReceived(forked, tx)]
    # A late non-2xx is ignored in Accepted.
    layer.receive_message(answer(req, 486), peer, 4.0)
    assert events(layer) == [] and layer.datagrams_to_send(4.0) == []
    fired = fire_until(layer, 1000.0)
    assert [t for t, _ in fired] == [pytest.approx(1.0 + 32.0)]  # Timer M = 64*T1
    assert retransmit_times(fired) == []
    assert events(layer) == [] and len(layer) == 0
    # Stray responses after the end are discarded (RFC 3261 18.1.2).
    layer.receive_message(answer(req, 200), peer, 40.0)
    assert events(layer) == []


def test_2xx_directly_from_calling_stops_retransmissions() -> None:
    layer = make_layer()
    req = outgoing()
    layer.send_request(req, UDP_PEER, 0.0)
    layer.datagrams_to_send(0.0)
    layer.receive_message(answer(req, 200), UDP_PEER, 0.1)
    assert retransmit_times(fire_until(layer, 1000.0)) == []


# ------------------------------------------------------------ INVITE: non-2xx, ACK, D


@pytest.mark.parametrize("status", [300, 404, 486, 503, 603])
def test_non_2xx_generates_ack_and_timer_d_absorbs_retransmissions(status: int) -> None:
    layer = make_layer()
    req = outgoing()
    tx = layer.send_request(req, UDP_PEER, 0.0)
    layer.datagrams_to_send(0.0)
    layer.receive_message(answer(req, 180), UDP_PEER, 0.2)
    events(layer)
    final = answer(req, status)
    layer.receive_message(final, UDP_PEER, 1.0)
    assert tx.state is TxState.COMPLETED
    assert events(layer) == [ResponseReceived(final, tx)]
    sent = layer.datagrams_to_send(1.0)
    assert len(sent) == 1 and sent[0][1] == UDP_PEER
    ack = parse_message(sent[0][0])
    assert isinstance(ack, SipRequest)
    assert ack.method == "ACK" and ack.uri == req.uri
    assert [str(v) for v in ack.vias] == [str(req.top_via)]
    assert ack.top_via is not None and ack.top_via.branch == "z9hG4bKc1"
    assert ack.cseq == (1, "ACK") and ack.call_id == req.call_id
    assert ack.get("From") == req.get("From")
    assert ack.to is not None and ack.to.tag == "b1"
    assert ack.get_all("Route") == req.get_all("Route")
    # Each retransmitted final gets the same ACK again and is not passed up.
    for t in (2.0, 3.0):
        layer.receive_message(answer(req, status), UDP_PEER, t)
        assert layer.datagrams_to_send(t) == [(sent[0][0], UDP_PEER)]
    assert events(layer) == []
    fired = fire_until(layer, 1000.0)
    assert [t for t, _ in fired] == [pytest.approx(1.0 + 32.0)]  # Timer D
    assert len(layer) == 0 and events(layer) == []


def test_timer_d_is_configurable_and_zero_on_tcp() -> None:
    layer = TransactionLayer(TimerSettings(timer_d=40.0))
    req = outgoing()
    layer.send_request(req, UDP_PEER, 0.0)
    layer.receive_message(answer(req, 404), UDP_PEER, 1.0)
    assert [t for t, _ in fire_until(layer, 1000.0)] == [pytest.approx(41.0)]

    layer = make_layer()
    req = outgoing(transport="TCP")
    tx = layer.send_request(req, TCP_PEER, 0.0)
    layer.datagrams_to_send(0.0)
    layer.receive_message(answer(req, 404), TCP_PEER, 1.0)
    assert next(m for m, _ in layer.datagrams_to_send(1.0)).startswith(b"ACK ")
    assert tx.state is TxState.TERMINATED and len(layer) == 0 and layer.get_timer() is None


# ------------------------------------------------------------ non-INVITE: E, F, K


@pytest.mark.parametrize(("t1", "t2"), [(0.5, 4.0), (0.1, 0.4), (1.0, 1.0)])
def test_non_invite_udp_timer_e_capped_at_t2_and_timer_f(t1: float, t2: float) -> None:
    layer = make_layer(t1=t1, t2=t2)
    req = outgoing("OPTIONS")
    tx = layer.send_request(req, UDP_PEER, 0.0)
    assert tx.state is TxState.TRYING
    layer.datagrams_to_send(0.0)
    fired = fire_until(layer, 1000.0)
    expected, t, interval = [], 0.0, t1
    while t + interval < 64 * t1 - 1e-9:
        t += interval
        expected.append(t)
        interval = min(2 * interval, t2)
    assert retransmit_times(fired) == pytest.approx(expected)
    assert fired[-1][0] == pytest.approx(64 * t1)
    assert events(layer) == [TransactionTimeout(tx)]
    assert len(layer) == 0


def test_non_invite_default_schedule_is_rfc_figure() -> None:
    layer = make_layer()
    layer.send_request(outgoing("REGISTER"), UDP_PEER, 0.0)
    layer.datagrams_to_send(0.0)
    fired = fire_until(layer, 1000.0)
    assert retransmit_times(fired) == pytest.approx(
        [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    )


def test_non_invite_proceeding_retransmits_every_t2() -> None:
    layer = make_layer()
    req = outgoing("BYE")
    tx = layer.send_request(req, UDP_PEER, 0.0)
    layer.datagrams_to_send(0.0)
    fire_until(layer, 0.5)  # first retransmission at 0.5, next due at 1.5
    trying = answer(req, 100, to_tag=None)
    layer.receive_message(trying, UDP_PEER, 0.6)
    assert tx.state is TxState.PROCEEDING
    assert events(layer) == [ResponseReceived(trying, tx)]
    fired = fire_until(layer, 1000.0)
    # E fires at 1.5 (already scheduled), then every T2 until F at 32.
    assert retransmit_times(fired) == pytest.approx([1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5])
    assert events(layer) == [TransactionTimeout(tx)]


@pytest.mark.parametrize(
    ("peer", "transport", "wait"), [(UDP_PEER, "UDP", 5.0), (TCP_PEER, "TCP", None)]
)
def test_non_invite_final_then_timer_k(peer: Address, transport: str, wait: float | None) -> None:
    layer = make_layer()
    req = outgoing("MESSAGE", transport=transport)
    tx = layer.send_request(req, peer, 0.0)
    layer.datagrams_to_send(0.0)
    ok = answer(req, 202)
    layer.receive_message(ok, peer, 1.0)
    assert events(layer) == [ResponseReceived(ok, tx)]
    assert layer.datagrams_to_send(1.0) == []  # no ACK outside INVITE
    if wait is None:
        assert tx.state is TxState.TERMINATED and len(layer) == 0
        return
    assert tx.state is TxState.COMPLETED
    layer.receive_message(answer(req, 202), peer, 2.0)  # absorbed
    layer.receive_message(answer(req, 100, to_tag=None), peer, 2.5)  # late, absorbed
    assert events(layer) == []
    fired = fire_until(layer, 1000.0)
    assert [t for t, _ in fired] == [pytest.approx(1.0 + wait)]  # Timer K = T4
    assert retransmit_times(fired) == []
    assert len(layer) == 0


def test_timer_k_follows_t4() -> None:
    layer = make_layer(t4=2.5)
    req = outgoing("INFO")
    layer.send_request(req, UDP_PEER, 0.0)
    layer.receive_message(answer(req, 200), UDP_PEER, 1.0)
    assert layer.get_timer() == pytest.approx(3.5)


# ------------------------------------------------------------ matching and misc


def test_responses_matched_by_branch_and_cseq_method() -> None:
    layer = make_layer()
    invite = outgoing("INVITE", branch="z9hG4bKsame")
    cancel = outgoing("CANCEL", branch="z9hG4bKsame")
    tx_inv = layer.send_request(invite, UDP_PEER, 0.0)
    layer.receive_message(answer(invite, 180), UDP_PEER, 0.1)
    tx_can = layer.send_request(cancel, UDP_PEER, 0.2)
    events(layer)
    ok_cancel = answer(cancel, 200)
    layer.receive_message(ok_cancel, UDP_PEER, 0.3)
    terminated = answer(invite, 487)
    layer.receive_message(terminated, UDP_PEER, 0.4)
    assert events(layer) == [
        ResponseReceived(ok_cancel, tx_can),
        ResponseReceived(terminated, tx_inv),
    ]
    # Unknown branch / method / missing Via: discarded.
    layer.receive_message(answer(outgoing(branch="z9hG4bKother"), 200), UDP_PEER, 0.5)
    assert events(layer) == []


def test_cancel_bounds_the_invite_to_64_t1() -> None:
    """RFC 3261 9.1: no final answer 64*T1 after CANCEL -> the INVITE is given up."""
    layer = TransactionLayer(TimerSettings(proceeding_guard=3600.0))
    invite = outgoing()
    tx = layer.send_request(invite, UDP_PEER, 0.0)
    layer.receive_message(answer(invite, 180), UDP_PEER, 1.0)
    layer.send_request(outgoing("CANCEL"), UDP_PEER, 10.0)
    layer.receive_message(answer(invite, 183), UDP_PEER, 20.0)  # does not extend it
    events(layer)
    fire_until(layer, 10.0 + 32.0)
    assert TransactionTimeout(tx) in events(layer)
    assert tx.state is TxState.TERMINATED
    fire_until(layer, 1000.0)
    assert len(layer) == 0


def test_transport_error_fails_matching_client_transactions() -> None:
    layer = make_layer()
    tx_tcp = layer.send_request(
        outgoing("INVITE", branch="z9hG4bKt", transport="TCP"), TCP_PEER, 0.0
    )
    tx_udp = layer.send_request(outgoing("OPTIONS", branch="z9hG4bKu"), UDP_PEER, 0.0)
    layer.transport_error(Address("TCP", "192.0.2.10", 15070), 1.0)
    assert events(layer) == [TransportFailed(tx_tcp)]
    assert tx_tcp.state is TxState.TERMINATED and tx_udp.state is TxState.TRYING
    layer.transport_error(Address("TCP", "192.0.2.10", 15070, conn_id=99), 1.0)  # other conn
    layer.transport_error(UDP_PEER, 1.0)
    assert events(layer) == [TransportFailed(tx_udp)]
    assert len(layer) == 0 and layer.get_timer() is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("ACK sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nCSeq: 1 ACK\r\n", "ACK"),
        ("OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCSeq: 1 OPTIONS\r\n", "branch"),
        ("OPTIONS sip:b@x SIP/2.0\r\nCSeq: 1 OPTIONS\r\n", "branch"),
    ],
)
def test_send_request_rejects_what_is_not_a_transaction(text: str, error: str) -> None:
    layer = make_layer()
    msg = parse_message((text + "Content-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, SipRequest)
    with pytest.raises(ValueError, match=error):
        layer.send_request(msg, UDP_PEER, 0.0)
    assert len(layer) == 0


def test_send_request_rejects_a_branch_in_use() -> None:
    layer = make_layer()
    layer.send_request(outgoing(), UDP_PEER, 0.0)
    with pytest.raises(ValueError, match="in use"):
        layer.send_request(outgoing(), UDP_PEER, 0.0)
    assert isinstance(layer.find_client("z9hG4bKc1", "INVITE"), ClientTransaction)
    assert layer.find_client("z9hG4bKc1", "BYE") is None


@pytest.mark.parametrize(
    "headers",
    [
        [("Via", "garbage"), ("CSeq", "1 INVITE")],
        [("Via", "SIP/2.0/UDP 198.51.100.1:15060;branch=z9hG4bKc1")],
        [("Via", "SIP/2.0/UDP 198.51.100.1:15060;branch=z9hG4bKc1"), ("CSeq", "x INVITE")],
        [("CSeq", "1 INVITE")],
        [("Via", "SIP/2.0/UDP 198.51.100.1:15060"), ("CSeq", "1 INVITE")],
    ],
)
def test_unreadable_responses_are_discarded(headers: list[tuple[str, str]]) -> None:
    layer = make_layer()
    tx = layer.send_request(outgoing(), UDP_PEER, 0.0)
    layer.datagrams_to_send(0.0)
    layer.receive_message(SipResponse(200, headers=headers), UDP_PEER, 0.1)
    assert events(layer) == [] and layer.datagrams_to_send(0.1) == []
    assert tx.state is TxState.CALLING
