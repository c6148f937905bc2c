"""Timer settings and heap, 18.2.2 routing, stateless sends, and a leak property test."""

from __future__ import annotations

import itertools
import random
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softswitch.sip.address import Address
from softswitch.sip.headers import parse_via
from softswitch.sip.message import SipRequest, SipResponse, make_response, parse_message
from softswitch.sip.timers import TimerHeap, TimerSettings
from softswitch.sip.transaction import (
    CancelReceived,
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    Transaction,
    TransactionLayer,
    TransactionTimeout,
    TransportFailed,
    response_destination,
)

MAX_STEPS = 200_000
T = TypeVar("T")

# ------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    "kwargs",
    [
        {"t1": 0},
        {"t1": -1},
        {"t1": 1.0, "t2": 0.5},
        {"t4": -1},
        {"timer_d": -1},
        {"proceeding_guard": 0},
    ],
)
def test_timer_settings_reject_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TimerSettings(**kwargs)


def test_timer_settings_defaults_are_rfc_values() -> None:
    t = TimerSettings()
    assert (t.t1, t.t2, t.t4, t.timer_d) == (0.5, 4.0, 5.0, 32.0)
    assert t.timeout == 32.0
    assert TimerSettings(t1=0.25).timeout == 16.0


# ------------------------------------------------------------------------ timer heap


def test_heap_orders_and_pops_due_entries() -> None:
    heap = TimerHeap()
    for deadline, name in [(3.0, "c"), (1.0, "a"), (2.0, "b"), (1.0, "a2")]:
        heap.push(deadline, name)
    assert heap.next_deadline() == 1.0 and len(heap) == 4
    assert heap.pop_due(0.5) is None
    assert [heap.pop_due(2.0) for _ in range(4)] == ["a", "a2", "b", None]
    assert heap.next_deadline() == 3.0 and len(heap) == 1


def test_heap_cancel_is_lazy_and_idempotent() -> None:
    heap = TimerHeap()
    first = heap.push(1.0, "a")
    heap.push(2.0, "b")
    heap.cancel(first)
    heap.cancel(first)
    assert len(heap) == 1 and heap.next_deadline() == 2.0
    assert heap.pop_due(5.0) == "b" and heap.pop_due(5.0) is None
    assert heap.next_deadline() is None
    with pytest.raises(ValueError):
        heap.push(1.0, None)


def test_heap_compacts_when_mostly_dead() -> None:
    heap = TimerHeap()
    entries = [heap.push(float(i), i) for i in range(10_000)]
    for entry in entries[:9_000]:
        heap.cancel(entry)
    assert len(heap) == 1_000
    assert heap.heap_size <= 2 * 1_000 + 1  # memory follows the live timers
    assert heap.next_deadline() == 9_000.0


@given(st.lists(st.tuples(st.floats(0, 1000, allow_nan=False), st.booleans()), max_size=300))
def test_heap_matches_a_sorted_reference(items: list[tuple[float, bool]]) -> None:
    heap = TimerHeap()
    live = []
    for index, (deadline, keep) in enumerate(items):
        entry = heap.push(deadline, index)
        if keep:
            live.append((deadline, index))
        else:
            heap.cancel(entry)
    out = []
    while (payload := heap.pop_due(float("inf"))) is not None:
        out.append(payload)
    assert out == [index for _, index in sorted(live)]


# ------------------------------------------------------------------ 18.2.2 routing

UDP_SRC = Address("UDP", "198.18.0.9", 30001)


@pytest.mark.parametrize(
    ("via", "source", "expected"),
    [
        # sent-by only (same host as the source)
        (
            "SIP/2.0/UDP 198.18.0.9:5070;branch=z9hG4bKa",
            UDP_SRC,
            Address("UDP", "198.18.0.9", 5070),
        ),
        ("SIP/2.0/UDP 198.18.0.9;branch=z9hG4bKa", UDP_SRC, Address("UDP", "198.18.0.9", 5060)),
        # received: sent-by port
        (
            "SIP/2.0/UDP 10.0.0.1:5070;received=198.18.0.9;branch=z9hG4bKa",
            UDP_SRC,
            Address("UDP", "198.18.0.9", 5070),
        ),
        # an unstamped Via that differs from the source is read as stamped
        (
            "SIP/2.0/UDP pbx.example.com;branch=z9hG4bKa",
            UDP_SRC,
            Address("UDP", "198.18.0.9", 5060),
        ),
        # rport (RFC 3581): filled, or empty -> the source port
        (
            "SIP/2.0/UDP 10.0.0.1:5070;received=198.18.0.9;rport=30001;branch=z9hG4bKa",
            UDP_SRC,
            Address("UDP", "198.18.0.9", 30001),
        ),
        ("SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKa", UDP_SRC, UDP_SRC),
        # maddr wins over received for unreliable transports
        (
            "SIP/2.0/UDP 10.0.0.1:5070;maddr=239.1.1.1;received=198.18.0.9;branch=z9hG4bKa",
            UDP_SRC,
            Address("UDP", "239.1.1.1", 5070),
        ),
        (
            "SIP/2.0/UDP 10.0.0.1;maddr=239.1.1.1;branch=z9hG4bKa",
            UDP_SRC,
            Address("UDP", "239.1.1.1", 5060),
        ),
        # reliable: the connection it came on, with received + sent-by port to reopen
        (
            "SIP/2.0/TCP 10.0.0.1:5070;rport;maddr=239.1.1.1;branch=z9hG4bKa",
            Address("TCP", "198.18.0.9", 40000, conn_id=12),
            Address("TCP", "198.18.0.9", 5070, 12),
        ),
        (
            "SIP/2.0/TLS 10.0.0.1;branch=z9hG4bKa",
            Address("TLS", "198.18.0.9", 40000, conn_id=4),
            Address("TLS", "198.18.0.9", 5061, 4),
        ),
        # IPv6
        (
            "SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKa",
            Address("UDP", "2001:db8::1", 5070),
            Address("UDP", "2001:db8::1", 5070),
        ),
        (
            "SIP/2.0/UDP [2001:db8::1]:5070;received=[2001:db8::9];branch=z9hG4bKa",
            Address("UDP", "2001:db8::9", 5070),
            Address("UDP", "2001:db8::9", 5070),
        ),
    ],
)
def test_response_destination(via: str, source: Address, expected: Address) -> None:
    assert response_destination(parse_via(via), source) == expected


def test_response_destination_without_via_is_the_source() -> None:
    assert response_destination(None, UDP_SRC) == UDP_SRC


# ------------------------------------------------------------------- stateless sends


def _request(
    method: str,
    branch: str | None,
    via: str = "SIP/2.0/UDP 10.0.0.1:5070",
    to_tag: str | None = None,
    call_id: str = "c1",
    cseq: int = 1,
) -> SipRequest:
    to = "<sip:b@example.com>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} sip:b@example.com SIP/2.0\r\n"
        f"Via: {via}{f';branch={branch}' if branch else ''}\r\n"
        "From: <sip:a@example.com>;tag=ft\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, SipRequest)
    return msg


def test_send_stateless_and_stateless_response() -> None:
    layer = TransactionLayer()
    ack = _request("ACK", "z9hG4bKack")
    dest = Address("UDP", "192.0.2.1", 15000)
    layer.send_stateless(ack, dest)
    resp = make_response(_request("OPTIONS", "z9hG4bKo", via="SIP/2.0/UDP 10.0.0.1;rport"), 400)
    layer.send_stateless_response(resp, UDP_SRC)
    assert layer.datagrams_to_send(0.0) == [(ack.to_bytes(), dest), (resp.to_bytes(), UDP_SRC)]
    assert layer.datagrams_to_send(0.0) == []
    assert len(layer) == 0 and layer.get_timer() is None


# ------------------------------------------------------------------- volume / leaks


def test_thousands_of_transactions_drain_and_the_heap_stays_small() -> None:
    layer = TransactionLayer()
    peer = Address("UDP", "192.0.2.1", 15000)
    now = 0.0
    for i in range(3_000):
        now += 0.001
        req = _request("OPTIONS", f"z9hG4bKc{i}", via="SIP/2.0/UDP 198.51.100.1:15060")
        layer.send_request(req, peer, now)
        resp = parse_message(make_response(req, 200, to_tag="t").to_bytes())
        layer.receive_message(resp, peer, now)
        inv = _request("INVITE", f"z9hG4bKs{i}", via="SIP/2.0/UDP 192.0.2.1:15000", call_id=f"s{i}")
        layer.receive_message(inv, peer, now)
        event = layer.next_event()
        while event is not None and not isinstance(event, RequestReceived):
            event = layer.next_event()
        assert event is not None and event.transaction is not None
        layer.send_response(event.transaction, make_response(inv, 200, to_tag="s"), now)
        layer.handle_timer(now)
        layer.datagrams_to_send(now)
    assert len(layer) == 6_000
    assert layer._heap.heap_size <= 2 * layer.timer_count + 256
    _drain(layer)
    assert len(layer) == 0 and layer.timer_count == 0 and layer._heap.heap_size == 0


def _drain(layer: TransactionLayer) -> list[object]:
    out: list[object] = []
    for _ in range(MAX_STEPS):
        deadline = layer.get_timer()
        if deadline is None:
            break
        layer.handle_timer(deadline)
        layer.datagrams_to_send(deadline)
    else:
        raise AssertionError("timers never drained")
    while (event := layer.next_event()) is not None:
        out.append(event)
    return out


# --------------------------------------------------------------- property test

PEERS = {
    "UDP": Address("UDP", "192.0.2.50", 15050),
    "TCP": Address("TCP", "192.0.2.50", 41000, conn_id=1),
}

op_strategy = st.one_of(
    st.tuples(
        st.just("send"),
        st.sampled_from(["INVITE", "OPTIONS", "BYE"]),
        st.sampled_from(["UDP", "TCP"]),
    ),
    st.tuples(st.just("send_cancel"), st.integers(0, 20)),
    st.tuples(
        st.just("client_response"),
        st.integers(0, 20),
        st.sampled_from([100, 180, 183, 200, 202, 302, 404, 487, 503]),
    ),
    st.tuples(
        st.just("recv"),
        st.sampled_from(["INVITE", "OPTIONS", "ACK", "CANCEL"]),
        st.integers(0, 3),
        st.sampled_from(["UDP", "TCP"]),
        st.sampled_from([None, "t1"]),
        st.booleans(),
    ),
    st.tuples(
        st.just("tu_response"), st.integers(0, 20), st.sampled_from([100, 180, 200, 404, 487])
    ),
    st.tuples(st.just("advance"), st.sampled_from([0.0, 0.1, 0.5, 1.0, 4.0, 30.0, 700.0])),
    st.tuples(st.just("transport_error"), st.sampled_from(["UDP", "TCP"])),
    st.tuples(st.just("garbage_response"), st.integers(0, 3)),
)

DOCUMENTED = (
    RequestReceived,
    ResponseReceived,
    CancelReceived,
    TransactionTimeout,
    TransportFailed,
)


class Checker:
    """Keeps what the TU saw and checks each event against the documented contract."""

    def __init__(self) -> None:
        self.ended: set[int] = set()
        self.final_seen: dict[int, int] = {}
        self.servers: list[ServerTransaction] = []
        # The TU's own reference: a completed non-INVITE transaction lets go of its request.
        self.requests: dict[int, SipRequest] = {}

    def check(self, event: object) -> None:
        assert isinstance(event, DOCUMENTED), event
        if isinstance(event, RequestReceived):
            stx = event.transaction
            if stx is None:
                assert event.request.method == "ACK"
            else:
                assert isinstance(stx, ServerTransaction) and not stx.internal
                assert event.request.method not in ("ACK", "CANCEL")
                self.servers.append(stx)
                self.requests[id(stx)] = event.request
        elif isinstance(event, ResponseReceived):
            ctx = event.transaction
            assert isinstance(ctx, ClientTransaction)
            self._alive(ctx)
            status = event.response.status
            previous = self.final_seen.get(id(ctx))
            if previous is not None:
                # After a final only further 2xx to INVITE reach the TU (RFC 6026).
                assert ctx.is_invite and 200 <= previous < 300 and 200 <= status < 300
            if status >= 200:
                self.final_seen[id(ctx)] = status
        elif isinstance(event, CancelReceived):
            assert event.cancel.method == "CANCEL"
            assert event.invite_transaction.method == "INVITE"
            self._alive(event.invite_transaction)
        else:
            assert isinstance(event, TransactionTimeout | TransportFailed)
            tx = event.transaction
            assert isinstance(tx, Transaction)
            assert not (isinstance(tx, ServerTransaction) and tx.internal)
            self._alive(tx)
            self.ended.add(id(tx))

    def _alive(self, tx: Transaction) -> None:
        assert id(tx) not in self.ended, "event for a transaction already reported dead"


def _recent(items: list[T], index: object) -> T:
    """One of the last few items: old transactions are mostly over already."""
    assert isinstance(index, int)
    return items[-1 - index % min(len(items), 8)]


def _run(ops: list[tuple[object, ...]]) -> None:
    layer = TransactionLayer(TimerSettings(proceeding_guard=90.0))
    checker = Checker()
    clients: list[ClientTransaction] = []
    branches = itertools.count()
    now = 0.0

    def drain_events() -> None:
        while (event := layer.next_event()) is not None:
            checker.check(event)

    for op in ops:
        kind = op[0]
        if kind == "send":
            _, method, transport = op
            req = _request(
                str(method),
                f"z9hG4bKc{next(branches)}",
                via=f"SIP/2.0/{transport} 198.51.100.1:15060",
            )
            clients.append(layer.send_request(req, PEERS[str(transport)], now))
        elif kind == "send_cancel" and clients:
            invite = _recent(clients, op[1])
            if invite.is_invite and layer.find_client(invite.branch, "CANCEL") is None:
                cancel = _request(
                    "CANCEL",
                    invite.branch,
                    via=f"SIP/2.0/{invite.dest.transport} 198.51.100.1:15060",
                )
                clients.append(layer.send_request(cancel, invite.dest, now))
        elif kind == "client_response" and clients:
            tx = _recent(clients, op[1])
            resp = make_response(
                tx.request,
                int(op[2]),  # type: ignore[call-overload]
                to_tag=None if op[2] == 100 else "r",
            )
            layer.receive_message(parse_message(resp.to_bytes()), tx.dest, now)
        elif kind == "recv":
            _, method, index, transport, to_tag, rfc2543 = op
            req = _request(
                str(method),
                None if rfc2543 else f"z9hG4bKs{index}",
                via=f"SIP/2.0/{transport} 192.0.2.50:15050",
                to_tag=to_tag,
                call_id=f"call{index}",
            )  # type: ignore[arg-type]
            layer.receive_message(req, PEERS[str(transport)], now)
        elif kind == "tu_response" and checker.servers:
            stx = _recent(checker.servers, op[1])
            status = int(op[2])  # type: ignore[call-overload]
            request = checker.requests[id(stx)]
            layer.send_response(stx, make_response(request, status, to_tag="u"), now)
        elif kind == "advance":
            now += float(op[1])  # type: ignore[arg-type]
            layer.handle_timer(now)
        elif kind == "transport_error":
            layer.transport_error(PEERS[str(op[1])], now)
        elif kind == "garbage_response":
            resp = SipResponse(
                200,
                headers=[
                    ("Via", "SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKnone"),
                    ("CSeq", f"{op[1]} INVITE"),
                ],
            )
            layer.receive_message(resp, PEERS["UDP"], now)
        for data, dest in layer.datagrams_to_send(now):
            assert isinstance(data, bytes) and isinstance(dest, Address)
            parse_message(data)  # everything the layer emits is well-formed SIP
        drain_events()
        # Every live transaction holds at least one timer that will end or advance it.
        assert layer.timer_count >= layer.transaction_count
        deadline = layer.get_timer()
        assert deadline is None or deadline > now

    for event in _drain(layer):
        checker.check(event)
    assert layer.transaction_count == 0 and len(layer) == 0
    assert layer.timer_count == 0 and layer.get_timer() is None
    assert layer._merge_index == {}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op_strategy, max_size=60))
def test_table_always_drains_and_only_documented_events(ops: list[tuple[object, ...]]) -> None:
    _run(ops)


def test_long_random_run_drains() -> None:
    rng = random.Random(20240601)
    ops: list[tuple[object, ...]] = []
    for _ in range(3_000):
        roll = rng.random()
        if roll < 0.15:
            ops.append(("send", rng.choice(["INVITE", "OPTIONS"]), rng.choice(["UDP", "TCP"])))
        elif roll < 0.2:
            ops.append(("send_cancel", rng.randrange(100)))
        elif roll < 0.4:
            ops.append(
                ("client_response", rng.randrange(100), rng.choice([100, 180, 200, 404, 487]))
            )
        elif roll < 0.6:
            ops.append(
                (
                    "recv",
                    rng.choice(["INVITE", "OPTIONS", "ACK", "CANCEL"]),
                    rng.randrange(20),
                    rng.choice(["UDP", "TCP"]),
                    rng.choice([None, "t1"]),
                    rng.random() < 0.1,
                )
            )
        elif roll < 0.8:
            ops.append(("tu_response", rng.randrange(100), rng.choice([100, 180, 200, 486])))
        elif roll < 0.997:
            ops.append(("advance", rng.choice([0.0, 0.05, 0.2, 0.5, 1.0, 5.0])))
        else:
            ops.append(("transport_error", rng.choice(["UDP", "TCP"])))
    _run(ops)


def test_heap_drops_a_cancelled_last_leaf_at_once() -> None:
    heap = TimerHeap()
    heap.push(1.0, "a")
    guard = heap.push(5.0, "guard")  # the latest deadline: stays the last leaf
    heap.cancel(guard)
    assert heap.heap_size == 1 and len(heap) == 1
    early = heap.push(0.5, "early")  # sifted to the top: not the last leaf any more
    heap.cancel(early)
    assert heap.heap_size == 2 and len(heap) == 1  # left for lazy deletion
    assert heap.pop_due(10.0) == "a" and heap.pop_due(10.0) is None and heap.heap_size == 0
