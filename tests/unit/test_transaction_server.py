"""Server transactions (RFC 3261 17.2, 8.2.2.2, 9.2, 18.2, RFC 6026, RFC 3581), fake clock."""

from __future__ import annotations

import pytest

from softswitch.sip.address import Address
from softswitch.sip.message import SipRequest, SipResponse, make_response, parse_message
from softswitch.sip.transaction import (
    CancelReceived,
    RequestReceived,
    ServerTransaction,
    TimerSettings,
    TransactionLayer,
    TransactionTimeout,
    TransportFailed,
    TxState,
)

PEER = Address("UDP", "203.0.113.5", 15062)
TCP_PEER = Address("TCP", "203.0.113.5", 40123, conn_id=3)
MAX_STEPS = 10_000


def incoming(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bKs1",
    host: str = "203.0.113.5",
    port: int | None = 15062,
    transport: str = "UDP",
    via_params: str = "",
    to_tag: str | None = None,
    from_tag: str = "f1",
    call_id: str = "call-1",
    cseq: int = 1,
    cseq_method: str | None = None,
    ruri: str = "sip:bob@198.51.100.1",
) -> SipRequest:
    sent_by = host if port is None else f"{host}:{port}"
    via = f"SIP/2.0/{transport} {sent_by}" + (f";branch={branch}" if branch else "") + via_params
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} {ruri} SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Via: SIP/2.0/UDP 192.0.2.99:15099;branch=z9hG4bKdownstream\r\n"
        "Max-Forwards: 69\r\n"
        f"From: <sip:alice@example.com>;tag={from_tag}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, SipRequest)
    return msg


def events(layer: TransactionLayer) -> list[object]:
    out: list[object] = []
    for _ in range(MAX_STEPS):
        event = layer.next_event()
        if event is None:
            return out
        out.append(event)
    raise AssertionError("event queue never drained")


def sent(layer: TransactionLayer, now: float = 0.0) -> list[tuple[SipResponse, Address]]:
    out = []
    for data, dest in layer.datagrams_to_send(now):
        msg = parse_message(data)
        assert isinstance(msg, SipResponse)
        out.append((msg, dest))
    return out


def statuses(layer: TransactionLayer, now: float = 0.0) -> list[int]:
    return [msg.status for msg, _ in sent(layer, now)]


def fire_until(layer: TransactionLayer, end: float) -> list[tuple[float, list[int]]]:
    fired: list[tuple[float, list[int]]] = []
    for _ in range(MAX_STEPS):
        deadline = layer.get_timer()
        if deadline is None or deadline > end:
            return fired
        layer.handle_timer(deadline)
        fired.append((deadline, statuses(layer, deadline)))
    raise AssertionError("timers never settled")


def new_invite(
    layer: TransactionLayer, source: Address = PEER, now: float = 0.0, **kw: object
) -> ServerTransaction:
    req = incoming("INVITE", **kw)  # type: ignore[arg-type]
    layer.receive_message(req, source, now)
    (event,) = events(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    return event.transaction


def make_layer(t1: float = 0.5, t2: float = 4.0, t4: float = 5.0, **kw: object) -> TransactionLayer:
    return TransactionLayer(TimerSettings(t1=t1, t2=t2, t4=t4), **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- INVITE: Proceeding


def test_invite_sends_100_at_once_and_reaches_the_tu() -> None:
    layer = make_layer()
    req = incoming()
    layer.receive_message(req, PEER, 0.0)
    ((trying, dest),) = sent(layer)
    assert trying.status == 100 and dest == PEER
    assert trying.to is not None and trying.to.tag is None  # 100 carries no To tag
    assert trying.call_id == "call-1" and len(trying.vias) == 2
    (event,) = events(layer)
    assert isinstance(event, RequestReceived)
    assert event.request is req and event.source == PEER
    tx = event.transaction
    assert tx is not None and tx.state is TxState.PROCEEDING and tx.is_invite
    assert len(layer) == 1


def test_100_trying_echoes_timestamp() -> None:
    layer = make_layer()
    req = incoming()
    req.add("Timestamp", "54.3 0.2")
    layer.receive_message(req, PEER, 0.0)
    ((trying, _),) = sent(layer)
    assert trying.status == 100 and trying.get("Timestamp") == "54.3 0.2"


def test_invite_retransmissions_in_proceeding_get_the_last_provisional() -> None:
    layer = make_layer()
    tx = new_invite(layer)
    assert statuses(layer) == [100]
    layer.receive_message(incoming(), PEER, 0.5)
    assert statuses(layer) == [100]
    layer.send_response(tx, make_response(tx.request, 180, to_tag="srv"), 1.0)
    assert statuses(layer) == [180]
    layer.receive_message(incoming(), PEER, 1.5)
    assert statuses(layer) == [180]
    assert events(layer) == []
    assert fire_until(layer, 100.0) == []  # no retransmission timer in Proceeding


# -------------------------------------------------------- INVITE: non-2xx, G, H, I


@pytest.mark.parametrize(("t1", "t2"), [(0.5, 4.0), (0.1, 0.8), (1.0, 1.0)])
def test_timer_g_doubles_to_t2_and_timer_h_times_out(t1: float, t2: float) -> None:
    layer = make_layer(t1=t1, t2=t2)
    tx = new_invite(layer)
    sent(layer)
    layer.send_response(tx, make_response(tx.request, 486, to_tag="srv"), 0.0)
    assert statuses(layer) == [486] and tx.state is TxState.COMPLETED
    fired = fire_until(layer, 10_000.0)
    expected, t, interval = [], 0.0, t1
    while t + interval < 64 * t1 - 1e-9:
        t += interval
        expected.append(t)
        interval = min(2 * interval, t2)
    assert [t for t, s in fired if s] == pytest.approx(expected)
    assert all(s == [486] for _, s in fired if s)
    assert fired[-1][0] == pytest.approx(64 * t1)  # Timer H
    assert events(layer) == [TransactionTimeout(tx)]
    assert tx.state is TxState.TERMINATED and len(layer) == 0


def test_default_timer_g_schedule() -> None:
    layer = make_layer()
    tx = new_invite(layer)
    layer.send_response(tx, make_response(tx.request, 404, to_tag="x"), 0.0)
    sent(layer)
    assert [t for t, s in fire_until(layer, 1000.0) if s] == pytest.approx(
        [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    )


def test_completed_resends_final_then_ack_confirms_and_timer_i_ends() -> None:
    layer = make_layer()
    tx = new_invite(layer)
    layer.send_response(tx, make_response(tx.request, 603, to_tag="srv"), 0.0)
    sent(layer)
    layer.receive_message(incoming(), PEER, 0.2)
    assert statuses(layer) == [603]  # retransmitted INVITE gets the final again
    ack = incoming("ACK", to_tag="srv")
    layer.receive_message(ack, PEER, 0.3)
    assert tx.state is TxState.CONFIRMED
    assert events(layer) == []  # the ACK of a non-2xx is absorbed
    layer.receive_message(incoming(), PEER, 0.4)
    layer.receive_message(incoming("ACK", to_tag="srv"), PEER, 0.4)
    assert sent(layer) == [] and events(layer) == []
    fired = fire_until(layer, 1000.0)
    assert fired == [(pytest.approx(0.3 + 5.0), [])]  # Timer I = T4, and G stopped
    assert len(layer) == 0 and events(layer) == []


def test_invite_tcp_no_timer_g_and_ack_terminates_at_once() -> None:
    layer = make_layer()
    tx = new_invite(layer, TCP_PEER, transport="TCP")
    assert sent(layer)[0][1].conn_id == 3
    layer.send_response(tx, make_response(tx.request, 480, to_tag="srv"), 0.0)
    assert statuses(layer) == [480]
    assert layer.get_timer() == pytest.approx(32.0)  # only H
    layer.receive_message(incoming("ACK", to_tag="srv", transport="TCP"), TCP_PEER, 1.0)
    assert tx.state is TxState.TERMINATED and len(layer) == 0  # Timer I = 0
    assert layer.get_timer() is None and events(layer) == []


def test_invite_tcp_timer_h() -> None:
    layer = make_layer()
    tx = new_invite(layer, TCP_PEER, transport="TCP")
    layer.send_response(tx, make_response(tx.request, 480, to_tag="srv"), 0.0)
    sent(layer)
    fired = fire_until(layer, 1000.0)
    assert fired == [(pytest.approx(32.0), [])]
    assert events(layer) == [TransactionTimeout(tx)]


# ------------------------------------------------------------ INVITE: 2xx, Accepted, L


@pytest.mark.parametrize(("source", "transport"), [(PEER, "UDP"), (TCP_PEER, "TCP")])
def test_2xx_accepted_absorbs_invites_passes_acks_and_timer_l(
    source: Address, transport: str
) -> None:
    layer = make_layer()
    tx = new_invite(layer, source, transport=transport)
    sent(layer)
    ok = make_response(tx.request, 200, to_tag="srv")
    layer.send_response(tx, ok, 1.0)
    assert statuses(layer) == [200] and tx.state is TxState.ACCEPTED
    layer.receive_message(incoming(transport=transport), source, 1.5)
    assert sent(layer) == []  # RFC 6026: absorbed, the TU retransmits its 2xx itself
    layer.send_response(tx, ok, 1.5)  # the TU's retransmission goes out
    assert statuses(layer) == [200]
    layer.send_response(tx, make_response(tx.request, 500, to_tag="srv"), 1.6)
    assert sent(layer) == []  # no non-2xx after a 2xx
    for branch in ("z9hG4bKs1", "z9hG4bKack2xx"):  # same branch (odd UAs) or a new one
        ack = incoming("ACK", branch=branch, to_tag="srv", transport=transport)
        layer.receive_message(ack, source, 2.0)
        assert events(layer) == [RequestReceived(ack, source, None)]
    fired = fire_until(layer, 1000.0)
    assert fired == [(pytest.approx(1.0 + 32.0), [])]  # Timer L = 64*T1
    assert len(layer) == 0 and events(layer) == []
    # A late 2xx retransmission from the TU is still routed to the peer.
    layer.send_response(tx, ok, 40.0)
    assert statuses(layer) == [200]


def test_stray_ack_reaches_the_tu_without_transaction() -> None:
    layer = make_layer()
    ack = incoming("ACK", to_tag="x", branch="z9hG4bKnone")
    layer.receive_message(ack, PEER, 0.0)
    assert events(layer) == [RequestReceived(ack, PEER, None)]
    assert sent(layer) == [] and len(layer) == 0


def test_ack_in_proceeding_is_dropped() -> None:
    layer = make_layer()
    new_invite(layer)
    layer.receive_message(incoming("ACK"), PEER, 0.1)
    assert events(layer) == []


# ------------------------------------------------------------------ non-INVITE: J


@pytest.mark.parametrize(
    ("source", "transport", "wait"), [(PEER, "UDP", 32.0), (TCP_PEER, "TCP", None)]
)
def test_non_invite_states_and_timer_j(source: Address, transport: str, wait: float | None) -> None:
    layer = make_layer()
    req = incoming("REGISTER", transport=transport)
    layer.receive_message(req, source, 0.0)
    (event,) = events(layer)
    assert isinstance(event, RequestReceived)
    tx = event.transaction
    assert tx is not None and tx.state is TxState.TRYING
    assert sent(layer) == []  # no 100 for non-INVITE
    layer.receive_message(incoming("REGISTER", transport=transport), source, 0.1)
    assert sent(layer) == []  # Trying: absorbed silently
    layer.send_response(tx, make_response(req, 100), 0.2)
    assert tx.state is TxState.PROCEEDING and statuses(layer) == [100]
    layer.receive_message(incoming("REGISTER", transport=transport), source, 0.3)
    assert statuses(layer) == [100]
    layer.send_response(tx, make_response(req, 200, to_tag="r"), 1.0)
    assert statuses(layer) == [200]
    layer.send_response(tx, make_response(req, 500, to_tag="r"), 1.0)
    assert sent(layer) == []  # only one final
    if wait is None:
        assert tx.state is TxState.TERMINATED and len(layer) == 0
        return
    assert tx.state is TxState.COMPLETED
    layer.receive_message(incoming("REGISTER", transport=transport), source, 2.0)
    assert statuses(layer) == [200]
    assert events(layer) == []
    fired = fire_until(layer, 1000.0)
    assert fired == [(pytest.approx(1.0 + wait), [])]  # Timer J, no retransmissions
    assert len(layer) == 0 and events(layer) == []


def test_timer_j_follows_t1() -> None:
    layer = make_layer(t1=0.25, t2=2.0)
    req = incoming("OPTIONS")
    layer.receive_message(req, PEER, 0.0)
    (event,) = events(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    layer.send_response(event.transaction, make_response(req, 200, to_tag="t"), 1.0)
    assert layer.get_timer() == pytest.approx(1.0 + 16.0)


# ------------------------------------------------------------------- guard timers


def test_unanswered_non_invite_is_dropped_after_64_t1() -> None:
    layer = make_layer()
    req = incoming("OPTIONS")
    layer.receive_message(req, PEER, 0.0)
    (event,) = events(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    fire_until(layer, 1000.0)
    assert events(layer) == [TransactionTimeout(event.transaction)]
    assert len(layer) == 0
    layer.send_response(event.transaction, make_response(req, 200, to_tag="t"), 40.0)
    assert sent(layer) == []  # too late: dropped


def test_unanswered_invite_gets_408_after_the_guard() -> None:
    layer = TransactionLayer(TimerSettings(proceeding_guard=120.0))
    tx = new_invite(layer)
    sent(layer)
    layer.send_response(tx, make_response(tx.request, 180, to_tag="srv"), 60.0)
    sent(layer)
    layer.handle_timer(179.0)
    assert events(layer) == []
    layer.handle_timer(180.0)
    assert statuses(layer) == [408] and tx.state is TxState.COMPLETED
    assert events(layer) == [TransactionTimeout(tx)]
    layer.send_response(tx, make_response(tx.request, 200, to_tag="srv"), 181.0)
    assert sent(layer) == []  # the TU lost the race
    fire_until(layer, 10_000.0)
    assert events(layer) == []  # Timer H does not report the same transaction twice
    assert len(layer) == 0


# ------------------------------------------------------------------------ CANCEL


def test_cancel_matched_is_answered_200_and_reported() -> None:
    layer = make_layer()
    tx = new_invite(layer)
    layer.send_response(tx, make_response(tx.request, 180, to_tag="srv"), 0.1)
    sent(layer)
    cancel = incoming("CANCEL")
    layer.receive_message(cancel, PEER, 1.0)
    ((ok, dest),) = sent(layer)
    assert ok.status == 200 and ok.cseq == (1, "CANCEL") and dest == PEER
    assert ok.to is not None and ok.to.tag == "srv"  # RFC 3261 9.2: same tag as the INVITE's
    assert events(layer) == [CancelReceived(cancel, tx)]
    assert len(layer) == 2
    layer.receive_message(incoming("CANCEL"), PEER, 1.1)  # retransmitted CANCEL
    assert statuses(layer) == [200] and events(layer) == []
    layer.send_response(tx, make_response(tx.request, 487, to_tag="srv"), 1.2)
    assert statuses(layer) == [487]
    layer.receive_message(incoming("ACK", to_tag="srv"), PEER, 1.3)
    assert tx.state is TxState.CONFIRMED and events(layer) == []
    fire_until(layer, 1000.0)
    assert len(layer) == 0 and events(layer) == []


def test_cancel_without_provisional_gets_a_fresh_to_tag() -> None:
    layer = make_layer()
    new_invite(layer)
    sent(layer)
    layer.receive_message(incoming("CANCEL"), PEER, 1.0)
    ((ok, _),) = sent(layer)
    assert ok.status == 200 and ok.to is not None and ok.to.tag


def test_cancel_after_final_is_answered_but_not_reported() -> None:
    layer = make_layer()
    tx = new_invite(layer)
    layer.send_response(tx, make_response(tx.request, 486, to_tag="srv"), 0.1)
    sent(layer)
    layer.receive_message(incoming("CANCEL"), PEER, 1.0)
    assert statuses(layer) == [200] and events(layer) == []


@pytest.mark.parametrize("variant", ["other-branch", "other-sent-by", "after-end"])
def test_cancel_unmatched_gets_481(variant: str) -> None:
    layer = make_layer()
    invite = new_invite(layer)
    sent(layer)
    now = 1.0
    if variant == "other-branch":
        cancel = incoming("CANCEL", branch="z9hG4bKnope")
    elif variant == "other-sent-by":
        cancel = incoming("CANCEL", port=15063)
    else:
        layer.transport_error(PEER, 0.5)
        events(layer)
        cancel = incoming("CANCEL")
    layer.receive_message(cancel, PEER, now)
    ((resp, _),) = sent(layer)
    assert resp.status == 481 and resp.to is not None and resp.to.tag
    assert events(layer) == []
    layer.receive_message(cancel, PEER, now + 0.1)  # retransmission: same answer
    assert statuses(layer) == [481]
    fire_until(layer, 10_000.0)
    assert len(layer) == 0
    # Only the unanswered INVITE's own guard shows up; the 481 is the layer's business.
    assert all(e == TransactionTimeout(invite) for e in events(layer))


# ------------------------------------------------------------- merged requests 482


def test_merged_request_gets_482_and_its_ack_is_absorbed() -> None:
    layer = make_layer()
    original = new_invite(layer)
    sent(layer)
    # Same From tag, Call-ID and CSeq, arriving by another path (other branch and sent-by).
    forked = incoming(branch="z9hG4bKfork", host="192.0.2.77", port=15077)
    src = Address("UDP", "192.0.2.77", 15077)
    layer.receive_message(forked, src, 0.5)
    ((resp, dest),) = sent(layer)
    assert resp.status == 482 and dest == src and resp.to is not None and resp.to.tag
    assert events(layer) == []
    layer.receive_message(incoming(branch="z9hG4bKfork", host="192.0.2.77", port=15077), src, 0.6)
    assert statuses(layer) == [482]
    ack = incoming("ACK", branch="z9hG4bKfork", host="192.0.2.77", port=15077, to_tag=resp.to.tag)
    layer.receive_message(ack, src, 0.7)
    assert events(layer) == [] and sent(layer) == []
    assert original.state is TxState.PROCEEDING
    fire_until(layer, 100_000.0)
    assert len(layer) == 0


@pytest.mark.parametrize(
    ("kw", "merged"),
    [
        ({"branch": "z9hG4bKb2"}, True),
        ({"branch": "z9hG4bKb2", "call_id": "call-2"}, False),
        ({"branch": "z9hG4bKb2", "from_tag": "f2"}, False),
        ({"branch": "z9hG4bKb2", "cseq": 2}, False),
        ({"branch": "z9hG4bKb2", "to_tag": "dialog"}, False),  # in-dialog: no merge check
    ],
)
def test_merge_detection_table(kw: dict[str, object], merged: bool) -> None:
    layer = make_layer()
    new_invite(layer)
    sent(layer)
    layer.receive_message(incoming(**kw), PEER, 0.5)  # type: ignore[arg-type]
    got = statuses(layer)
    if merged:
        assert got == [482] and events(layer) == []
    else:
        assert got == [100] and len(events(layer)) == 1


def test_merge_detection_can_be_turned_off() -> None:
    layer = make_layer(detect_merged=False)
    new_invite(layer)
    layer.receive_message(incoming(branch="z9hG4bKb2"), PEER, 0.5)
    assert len(events(layer)) == 1 and len(layer) == 2


def test_merge_index_is_released_with_the_transaction() -> None:
    layer = make_layer()
    req = incoming("MESSAGE")
    layer.receive_message(req, PEER, 0.0)
    (event,) = events(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    layer.send_response(event.transaction, make_response(req, 200, to_tag="t"), 0.0)
    fire_until(layer, 1000.0)
    layer.receive_message(incoming("MESSAGE", branch="z9hG4bKlater"), PEER, 1000.0)
    assert len(events(layer)) == 1  # a new transaction, not a 482


# --------------------------------------------------------------- RFC 2543 matching


def test_rfc2543_invite_retransmission_ack_and_cancel() -> None:
    layer = make_layer()
    tx = new_invite(layer, branch=None)
    assert statuses(layer) == [100]
    layer.receive_message(incoming(branch=None), PEER, 0.2)
    assert statuses(layer) == [100] and events(layer) == []
    cancel = incoming("CANCEL", branch=None)
    layer.receive_message(cancel, PEER, 0.3)
    assert statuses(layer) == [200]
    assert events(layer) == [CancelReceived(cancel, tx)]
    layer.send_response(tx, make_response(tx.request, 487, to_tag="srv"), 0.4)
    sent(layer)
    # An ACK whose To tag is not the one of our response does not match.
    wrong = incoming("ACK", branch=None, to_tag="other")
    layer.receive_message(wrong, PEER, 0.5)
    assert events(layer) == [RequestReceived(wrong, PEER, None)]
    assert tx.state is TxState.COMPLETED
    layer.receive_message(incoming("ACK", branch=None, to_tag="srv"), PEER, 0.6)
    assert tx.state is TxState.CONFIRMED and events(layer) == []
    fire_until(layer, 1000.0)
    assert len(layer) == 0


@pytest.mark.parametrize(
    ("kw", "same"),
    [
        ({}, True),
        ({"ruri": "sip:carol@198.51.100.1"}, False),
        ({"call_id": "call-9"}, False),
        ({"cseq": 7}, False),
        ({"from_tag": "f9"}, False),
        ({"to_tag": "t9"}, False),
        ({"port": 15099}, False),
        ({"via_params": ";ttl=3"}, False),
    ],
)
def test_rfc2543_matching_fields(kw: dict[str, object], same: bool) -> None:
    layer = make_layer(detect_merged=False)
    layer.receive_message(incoming("OPTIONS", branch=None), PEER, 0.0)
    assert len(events(layer)) == 1
    layer.receive_message(incoming("OPTIONS", branch=None, **kw), PEER, 0.1)  # type: ignore[arg-type]
    assert len(events(layer)) == (0 if same else 1)
    assert len(layer) == (1 if same else 2)


def test_rfc2543_reinvite_ack_matches_with_to_tag() -> None:
    layer = make_layer()
    tx = new_invite(layer, branch=None, to_tag="dlg")
    layer.send_response(tx, make_response(tx.request, 491), 0.1)
    sent(layer)
    layer.receive_message(incoming("ACK", branch=None, to_tag="dlg"), PEER, 0.2)
    assert tx.state is TxState.CONFIRMED and events(layer) == []


def test_magic_cookie_matching_needs_same_sent_by_and_method() -> None:
    layer = make_layer()
    layer.receive_message(incoming("OPTIONS", call_id="a"), PEER, 0.0)
    layer.receive_message(incoming("OPTIONS", call_id="b", port=15063), PEER, 0.0)
    layer.receive_message(incoming("INFO", call_id="c"), PEER, 0.0)
    assert len(events(layer)) == 3 and len(layer) == 3
    layer.receive_message(incoming("OPTIONS", call_id="a", host="203.0.113.5"), PEER, 0.1)
    assert events(layer) == []  # the same branch, sent-by and method: retransmission


# ------------------------------------------------------------ Via stamping, routing


def test_received_added_when_host_differs() -> None:
    layer = make_layer()
    req = incoming(host="pbx.example.com", port=None)
    layer.receive_message(req, PEER, 0.0)
    via = req.top_via
    assert via is not None and via.received == "203.0.113.5" and "rport" not in via.params
    ((_, dest),) = sent(layer)
    assert dest == Address("UDP", "203.0.113.5", 5060)  # received + sent-by port (default)


def test_nothing_added_when_host_matches() -> None:
    layer = make_layer()
    req = incoming()
    raw = req.to_bytes()
    layer.receive_message(req, PEER, 0.0)
    assert req.to_bytes() == raw and not req.modified


def test_rport_filled_and_used_for_routing() -> None:
    layer = make_layer()
    nat_source = Address("UDP", "198.18.0.9", 30001)
    req = incoming(host="10.0.0.5", port=5060, via_params=";rport")
    layer.receive_message(req, nat_source, 0.0)
    via = req.top_via
    assert via is not None and via.rport == 30001 and via.received == "198.18.0.9"
    ((trying, dest),) = sent(layer)
    assert dest == nat_source
    assert trying.top_via is not None and trying.top_via.rport == 30001
    assert "rport=30001" in trying.get_all("Via")[0]


def test_rport_received_even_when_host_matches() -> None:
    layer = make_layer()
    req = incoming(via_params=";rport")
    layer.receive_message(req, PEER, 0.0)
    via = req.top_via
    assert via is not None and via.received == PEER.host and via.rport == PEER.port


def test_maddr_routing() -> None:
    layer = make_layer()
    req = incoming(host="10.0.0.5", port=15090, via_params=";maddr=239.255.255.1;ttl=1")
    layer.receive_message(req, PEER, 0.0)
    ((_, dest),) = sent(layer)
    assert dest == Address("UDP", "239.255.255.1", 15090)


def test_reliable_response_goes_back_on_the_connection() -> None:
    layer = make_layer()
    req = incoming(transport="TCP", host="10.0.0.5", port=5070, via_params=";rport")
    layer.receive_message(req, TCP_PEER, 0.0)
    ((_, dest),) = sent(layer)
    assert dest.conn_id == TCP_PEER.conn_id and dest.host == TCP_PEER.host
    assert dest.transport == "TCP" and dest.port == 5070  # to reopen per 18.2.2 if it is gone


# --------------------------------------------------------------- bad input, errors


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (
            "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:15062;branch=z9hG4bKq\r\n"
            "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCSeq: 1 OPTIONS\r\n",
            400,
        ),
        (
            "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:15062;branch=z9hG4bKq\r\n"
            "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INFO\r\n",
            400,
        ),
        (
            "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:15062;branch=z9hG4bKq\r\n"
            "From: <sip:a@x>;tag=1\r\nTo: <<<\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n",
            400,
        ),
        (
            "OPTIONS sip:b@x SIP/2.0\r\nVia: garbage\r\n"
            "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n",
            400,
        ),
        (
            "OPTIONS sip:b@x SIP/2.0\r\n"
            "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n",
            None,
        ),
        (
            "ACK sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:15062;branch=z9hG4bKq\r\n"
            "To: <sip:b@x>\r\nCSeq: 1 ACK\r\n",
            None,
        ),
    ],
)
def test_bad_requests_get_400_or_silence(text: str, answer: int | None) -> None:
    layer = make_layer()
    msg = parse_message((text + "Content-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, SipRequest)
    layer.receive_message(msg, PEER, 0.0)
    got = [data for data, _ in layer.datagrams_to_send(0.0)]
    if answer is None:
        assert got == []
    else:
        assert len(got) == 1 and got[0].startswith(f"SIP/2.0 {answer} ".encode())
    assert events(layer) == [] and len(layer) == 0


def test_transport_error_fails_server_transactions() -> None:
    layer = make_layer()
    tx = new_invite(layer, TCP_PEER, transport="TCP")
    other = new_invite(layer, call_id="call-2", branch="z9hG4bKs2")
    layer.transport_error(Address("TCP", "203.0.113.5", 40123, conn_id=3), 1.0)
    assert events(layer) == [TransportFailed(tx)]
    assert tx.state is TxState.TERMINATED and other.state is TxState.PROCEEDING
    assert len(layer) == 1
