"""The admin API bench's HTTP side (bench/api_bench.py): the one write it makes, the sweep
of the list endpoints, and the background load of requests alongside calls."""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from bench.api_data import ENDPOINTS, TENANT, Endpoint, latency_figures
from bench.call_bench import CALLEE
from bench.systems import DID

__all__ = [
    "API_RATE",
    "FORWARD_TO",
    "NUMBERS",
    "SIDE_DID",
    "ApiLoad",
    "measure_endpoints",
    "number_document",
    "repoint",
]

SIDE_DID = "+14155550199"  # re-pointed by the background writes of (b); never called
FORWARD_TO = "+12125550199"  # where a re-pointed number goes: the carrier trunk's gateway
NUMBERS = (DID, SIDE_DID)  # the tenant's numbers the bench re-points, both to the callee
API_RATE = 50.0


def number_document(number: str, forwarded: bool) -> dict[str, str]:
    """The number's document: to the carrier (offnet, FORWARD_TO) or to the callee user."""
    if forwarded:
        return {"number": number, "treatment": "offnet", "destination": FORWARD_TO}
    return {"number": number, "treatment": "user", "destination": CALLEE}


def _number_path(number: str) -> str:
    return f"/v1/tenants/{TENANT}/numbers/{quote(number, safe='+')}"


def repoint(client: httpx.Client, number: str, forwarded: bool) -> httpx.Response:
    """THE write of this bench, as an admin's page makes it: read the number (its ETag),
    then PUT its document with If-Match, sending it to the carrier (FORWARD_TO) or back to
    its user. The answer is the PUT's (or the GET's when that failed)."""
    path = _number_path(number)
    current = client.get(path)
    etag = current.headers.get("ETag")
    if not current.is_success or etag is None:
        return current
    return client.put(path, json=number_document(number, forwarded), headers={"If-Match": etag})


# --- (a) list and search latency ----------------------------------------------------------


ENDPOINT_BUDGET_S = 60.0  # time one endpoint may take in all, once it has MIN_SAMPLES
MIN_SAMPLES = 5


def measure_endpoints(
    client: httpx.Client,
    samples: int,
    log: Callable[[str], None],
    budget_s: float = ENDPOINT_BUDGET_S,
) -> dict[str, dict[str, Any]]:
    """Each endpoint the API has `samples` times, interleaved (machine noise falls on all
    alike), after a warm-up request each; latencies from request sent to body read. An
    endpoint that has taken `budget_s` (a search scanning a million rows) stops at the
    samples it has (at least MIN_SAMPLES); the report says how many."""
    paths = client.get("/openapi.json").json()["paths"]
    present = [e for e in ENDPOINTS if e.path in paths]
    figures: dict[str, dict[str, Any]] = {
        e.name: {"path": e.path, "status": "not available: not in this API"}
        for e in ENDPOINTS
        if e.path not in paths
    }
    times: dict[str, list[float]] = {e.name: [] for e in present}
    errors: dict[str, list[int]] = {e.name: [] for e in present}
    totals: dict[str, object] = {}
    for endpoint in present:
        _, answer = _timed_get(client, endpoint)
        totals[endpoint.name] = answer.json().get("total") if answer.is_success else None
    active = list(present)
    for _ in range(samples):
        for endpoint in list(active):
            elapsed, answer = _timed_get(client, endpoint)
            if answer.is_success:
                times[endpoint.name].append(elapsed)
            else:
                errors[endpoint.name].append(answer.status_code)
            spent = sum(times[endpoint.name]) / 1000
            if spent > budget_s and len(times[endpoint.name]) >= MIN_SAMPLES:
                active.remove(endpoint)
        if not active:
            break
    for endpoint in present:
        found = latency_figures(times[endpoint.name])
        figures[endpoint.name] = {
            "path": endpoint.path,
            "query": dict(endpoint.query),
            "status": "ok" if not errors[endpoint.name] else "errors",
            "total": totals.get(endpoint.name),
            "errors": errors[endpoint.name][:10],
            **found,
        }
        log(
            f"    {endpoint.name}: p50 {found['p50_ms']} ms p99 {found['p99_ms']} ms over "
            f"{found['samples']} (matched {totals.get(endpoint.name)}, "
            f"{len(errors[endpoint.name])} errors)"
        )
    return figures


def _timed_get(client: httpx.Client, endpoint: Endpoint) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    answer = client.get(endpoint.url(TENANT), params=endpoint.params(time.time()))
    answer.read()
    return 1000 * (time.perf_counter() - started), answer


# --- (b) API requests alongside calls -----------------------------------------------------


class ApiLoad:
    """`rate` requests/s, open loop, from a few client threads: a round of list and get
    requests, one of them each second a write (a side number re-pointed and back). At most
    WORKERS requests are in flight: a request due while all are busy is not sent but
    counted (`skipped_busy`), so a slow API shows as a lower achieved rate instead of a
    backlog that would go on loading the switch after the load is stopped."""

    WORKERS = 8

    def __init__(self, connect: Callable[[], httpx.Client], rate: float = API_RATE) -> None:
        self.connect, self.rate = connect, rate
        with connect() as client:
            paths = client.get("/openapi.json").json()["paths"]
        # What this API has of the measured lists an admin's page asks for as it opens.
        reads = [e for e in ENDPOINTS if e.path in paths and e.in_load]
        gets = [
            Endpoint("get cdr", "/v1/tenants/{tenant}/cdrs/bench-00000042"),
            Endpoint("get number", f"/v1/tenants/{{tenant}}/numbers/{quote(DID, safe='+')}"),
        ]
        self._reads = itertools.cycle([*reads, *gets])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-load", daemon=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.samples: dict[str, list[float]] = {"read": [], "write": []}
        self.errors: list[str] = []
        self.started = self.stopped = 0.0
        self.sent = self.skipped = 0
        self._slots = threading.BoundedSemaphore(self.WORKERS)

    def start(self) -> ApiLoad:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.connect()
        return client

    def _request(self, kind: str, endpoint: Endpoint | None, forwarded: bool) -> None:
        try:
            self._send(kind, endpoint, forwarded)
        finally:
            self._slots.release()

    def _send(self, kind: str, endpoint: Endpoint | None, forwarded: bool) -> None:
        client = self._client()
        started = time.perf_counter()
        try:
            if endpoint is None:
                answer = repoint(client, SIDE_DID, forwarded)
            else:
                answer = client.get(endpoint.url(TENANT), params=endpoint.params(time.time()))
            ok = answer.is_success
            problem = f"{answer.status_code} {answer.text[:200]}"
        except httpx.HTTPError as exc:
            ok, problem = False, f"{type(exc).__name__}: {exc}"
        elapsed = 1000 * (time.perf_counter() - started)
        with self._lock:
            if ok:
                self.samples[kind].append(elapsed)
            else:
                self.errors.append(problem)

    def _run(self) -> None:
        every = max(1, round(self.rate))  # one write a second
        forward = False
        with concurrent.futures.ThreadPoolExecutor(self.WORKERS) as pool:
            for n in itertools.count():
                due = self.started + n / self.rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                if not self._slots.acquire(blocking=False):
                    self.skipped += 1
                    continue
                if n % every == every - 1:
                    forward = not forward  # there and back, in the order they are sent
                    pool.submit(self._request, "write", None, forward)
                else:
                    pool.submit(self._request, "read", next(self._reads), False)
                self.sent += 1
        self.stopped = time.monotonic()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        stopped = time.monotonic()
        self._thread.join(60)  # the requests in flight finish (their samples count)
        span = max(1e-9, max(stopped, self.stopped) - self.started)
        done = len(self.samples["read"]) + len(self.samples["write"])
        return {
            "offered_per_s": self.rate,
            "achieved_per_s": round(done / span, 1),
            "requests": self.sent,
            "skipped_busy": self.skipped,
            "errors": len(self.errors),
            "error_examples": self.errors[:5],
            "reads": latency_figures(self.samples["read"]),
            "writes": latency_figures(self.samples["write"]),
        }
