"""The admin API bench's pure parts: percentiles of latencies, the synthetic call history,
the endpoints' queries, SIPp trace reading and the change-applied arithmetic, and the one
write it sends (the request, as httpx would put it on the wire)."""

from __future__ import annotations

import datetime as dt
import json
import time

import httpx

from bench.api_client import FORWARD_TO, NUMBERS, SIDE_DID, repoint
from bench.api_data import (
    DISPOSITIONS,
    ENDPOINTS,
    TENANT,
    Change,
    Endpoint,
    change_latencies_ms,
    invite_arrivals,
    latency_figures,
    synthetic_bindings,
    synthetic_cdrs,
)
from bench.call_bench import CALLEE
from bench.systems import DID

SEP = "-" * 47


def test_latency_figures_nearest_rank() -> None:
    samples = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
    assert latency_figures(samples) == {"samples": 100, "p50_ms": 50, "p99_ms": 99, "max_ms": 100}
    assert latency_figures([7.0]) == {"samples": 1, "p50_ms": 7, "p99_ms": 7, "max_ms": 7}
    assert latency_figures([]) == {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}


def test_synthetic_history_is_deterministic_batched_and_plausible() -> None:
    now = time.time()
    users = ["100", "200", "10000"]
    batches = list(synthetic_cdrs(25, users, now=now, batch=10))
    assert [len(b) for b in batches] == [10, 10, 5]
    cdrs = [c for b in batches for c in b]
    again = [c for b in synthetic_cdrs(25, users, now=now, batch=7) for c in b]
    assert cdrs == again  # the same calls whatever the batch size
    assert len({c.call_id for c in cdrs}) == 25
    known = {d[0] for d in DISPOSITIONS}
    for cdr in cdrs:
        assert cdr.tenant == TENANT and cdr.disposition in known
        assert now - 30 * 86400 <= cdr.start <= cdr.end
        assert (cdr.answer is not None) == (cdr.disposition == "ANSWERED")
        assert (cdr.trunk == "carrier") == (cdr.direction != "internal")
        if cdr.direction != "inbound":
            assert cdr.caller_number in users
    assert list(synthetic_cdrs(0, users, now=now)) == []


def test_bindings_one_per_user_on_distinct_contacts() -> None:
    now = time.time()
    bindings = synthetic_bindings(["100", "101"], now=now)
    assert [b.aor for b in bindings] == ["sip:100@pbx.test", "sip:101@pbx.test"]
    assert len({b.contact for b in bindings}) == 2
    assert all(b.expires_at > now for b in bindings)


def test_endpoint_queries_fill_in_last_week() -> None:
    now = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC).timestamp()
    endpoint = Endpoint("x", "/v1/tenants/{tenant}/cdrs", (("from", "@week"), ("user", "1")))
    assert endpoint.url("acme") == "/v1/tenants/acme/cdrs"
    assert endpoint.params(now) == {"from": "2026-11-30T12:00:00Z", "user": "1"}
    assert len({e.name for e in ENDPOINTS}) == len(ENDPOINTS)


def _block(stamp: str, header: str, message: str) -> str:
    return f"{SEP} 2026-12-07 {stamp}\n{header}\n\n{message}\n"


def _invite(call_id: str) -> str:
    return f"INVITE sip:+12125550199@127.0.0.1 SIP/2.0\nCall-ID: {call_id}\nCSeq: 1 INVITE\n"


def _local(stamp: str) -> float:
    return dt.datetime.strptime(f"2026-12-07 {stamp}", "%Y-%m-%d %H:%M:%S.%f").timestamp()


def test_invite_arrivals_first_receipt_per_call() -> None:
    trace = "".join(
        [
            _block("10:00:00.100000", "UDP message received [800] bytes :", _invite("a")),
            _block("10:00:00.101000", "UDP message sent (300 bytes):", "SIP/2.0 180 Ringing\n"),
            _block("10:00:00.050000", "UDP message received [800] bytes :", _invite("b")),
            # a retransmission of a's INVITE, and a BYE: neither is an arrival
            _block("10:00:00.600000", "UDP message received [800] bytes :", _invite("a")),
            _block("10:00:01.000000", "UDP message received [300] bytes :", "BYE sip:x SIP/2.0\n"),
        ]
    )
    assert invite_arrivals(trace) == [_local("10:00:00.050000"), _local("10:00:00.100000")]
    assert invite_arrivals("") == []


def test_change_latency_from_the_answer_to_the_first_call_at_the_new_target() -> None:
    changes = [
        Change(sent=10.0, answered=10.010, forwarded=True, status=200),
        Change(sent=12.0, answered=12.020, forwarded=False, status=200),
        Change(sent=14.0, answered=14.005, forwarded=True, status=200),
    ]
    to_gateway = [10.030, 10.050, 14.003]  # the last one got there before the answer did
    to_user = [9.0, 9.5, 11.99, 12.045, 13.0]  # 11.99: before the revert was even sent
    assert change_latencies_ms(changes, to_gateway, to_user) == [20.0, 25.0, -2.0]
    # No call at the new target before the next change: not seen.
    assert change_latencies_ms(changes[:2], [], to_user) == [None, 25.0]


def test_the_write_is_a_put_of_the_number_with_if_match() -> None:
    seen: list[tuple[str, str, str | None, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append(
            (request.method, request.url.raw_path.decode(), request.headers.get("If-Match"), body)
        )
        return httpx.Response(200, json={}, headers={"ETag": f'"v{len(seen)}"'})

    with httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(answer)) as c:
        assert repoint(c, DID, True).status_code == 200
        repoint(c, SIDE_DID, False)
    path = f"/v1/tenants/{TENANT}/numbers/"
    assert seen == [
        ("GET", path + DID, None, None),
        (
            "PUT",
            path + DID,
            '"v1"',
            {"number": DID, "treatment": "offnet", "destination": FORWARD_TO},
        ),
        ("GET", path + SIDE_DID, None, None),
        (
            "PUT",
            path + SIDE_DID,
            '"v3"',
            {"number": SIDE_DID, "treatment": "user", "destination": CALLEE},
        ),
    ]
    assert set(NUMBERS) == {DID, SIDE_DID}


def test_a_number_that_cannot_be_read_is_not_written() -> None:
    methods: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        methods.append(request.method)
        return httpx.Response(404, json={"error": "not_found"})

    with httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(answer)) as c:
        assert repoint(c, "+19995550000", True).status_code == 404
    assert methods == ["GET"]
