"""The admin API bench's data and arithmetic: synthetic call history, users and registrations
seeded straight into the Store, the endpoints measured, and the figures drawn from samples.

Seeding goes through the Store's own batch writes (``save_cdrs``: executemany on SQLite,
one ``unnest`` INSERT per batch on PostgreSQL; ``write_provisioning`` for the users in one
transaction; ``save_bindings``), so a million calls take a minute or two, not hours of API
calls.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.call_bench import percentile
from config.loader import load_config
from softswitch.provisioning import Actor, ProvisioningService
from storage import open_store
from storage.base import Binding
from storage.cdr import Cdr

__all__ = [
    "ENDPOINTS",
    "Change",
    "Endpoint",
    "change_latencies_ms",
    "invite_arrivals",
    "latency_figures",
    "seed_store",
    "synthetic_bindings",
    "synthetic_cdrs",
]

TENANT = "test"  # peers.switchproc.SwitchConfigFile's tenant
DOMAIN = "pbx.test"
HISTORY_DAYS = 30  # the synthetic calls start over the last month
CDR_BATCH = 10_000
DISPOSITIONS = (  # (disposition, SIP code, Q.850 cause, name, weight)
    ("ANSWERED", 200, 16, "NORMAL_CLEARING", 70),
    ("NO ANSWER", 480, 19, "NO_ANSWER", 15),
    ("BUSY", 486, 17, "USER_BUSY", 8),
    ("FAILED", 503, 41, "TEMPORARY_FAILURE", 4),
    ("CANCELLED", 487, 16, "NORMAL_CLEARING", 3),
)


@dataclass(frozen=True)
class Endpoint:
    """One measured request: ``path`` (with ``{t}`` for the tenant) as the OpenAPI document
    names it, and the query it is sent with (a search, filters)."""

    name: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    # Part of the API load alongside calls: pages opened all day, not a full-history search
    # (seconds over a million calls) nor the operator's audit log.
    in_load: bool = True

    def url(self, tenant: str) -> str:
        return self.path.replace("{tenant}", tenant)

    def params(self, now: float) -> dict[str, str]:
        """The query with ``@week`` (the start of the last seven days) filled in."""
        week = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 7 * 86400))
        return {k: week if v == "@week" else v for k, v in self.query}


# Paths absent from the API's OpenAPI document (users CRUD and the audit log land on another
# branch) are reported as not available rather than measured as 404s.
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("users: search", "/v1/tenants/{tenant}/users", (("q", "123"), ("limit", "50"))),
    Endpoint("users: first page", "/v1/tenants/{tenant}/users", (("limit", "50"),)),
    Endpoint("cdrs: newest page", "/v1/tenants/{tenant}/cdrs", (("limit", "50"),)),
    Endpoint(
        "cdrs: last week, one user, answered",
        "/v1/tenants/{tenant}/cdrs",
        (("from", "@week"), ("user", "10042"), ("disposition", "ANSWERED"), ("limit", "50")),
    ),
    Endpoint(
        "cdrs: dialled contains, inbound",
        "/v1/tenants/{tenant}/cdrs",
        (("dialled", "555012"), ("direction", "inbound"), ("limit", "50")),
        in_load=False,
    ),
    Endpoint("registrations", "/v1/tenants/{tenant}/registrations", (("limit", "50"),)),
    Endpoint(
        "registrations: one extension",
        "/v1/tenants/{tenant}/registrations",
        (("extension", "10042"),),
    ),
    Endpoint("audit", "/v1/audit", (("limit", "50"),), in_load=False),
    Endpoint("tenant", "/v1/tenants/{tenant}"),
)


def latency_figures(samples_ms: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p99 and max (nearest rank) of latencies in milliseconds."""
    ordered = sorted(samples_ms)
    if not ordered:
        return {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "samples": len(ordered),
        "p50_ms": round(percentile(ordered, 0.5), 2),
        "p99_ms": round(percentile(ordered, 0.99), 2),
        "max_ms": round(ordered[-1], 2),
    }


def _external(rng: random.Random) -> str:
    return f"+1{rng.choice(('415', '212', '646', '312'))}555{rng.randrange(10_000):04d}"


def synthetic_cdrs(
    count: int,
    extensions: Sequence[str],
    *,
    now: float,
    seed: int = 17,
    batch: int = CDR_BATCH,
) -> Iterator[list[Cdr]]:
    """`count` finished calls of the bench tenant over the last HISTORY_DAYS, in batches:
    internal calls between the users, inbound from outside numbers to the DIDs, outbound
    through the carrier trunk; dispositions weighted as a business's day is. Deterministic
    for a seed."""
    rng = random.Random(seed)
    kinds = [d for d in DISPOSITIONS for _ in range(d[4])]
    span = HISTORY_DAYS * 86400.0
    made = 0
    while made < count:
        rows: list[Cdr] = []
        for n in range(made, min(count, made + batch)):
            disposition, code, cause, cause_name, _ = rng.choice(kinds)
            direction = rng.choice(("internal", "internal", "inbound", "outbound"))
            user = rng.choice(extensions)
            if direction == "inbound":
                caller, dialled, destination, trunk = (
                    _external(rng),
                    f"+1415555{n % 200:04d}",
                    user,
                    "carrier",
                )
            elif direction == "outbound":
                caller, dialled, trunk = user, _external(rng), "carrier"
                destination = dialled
            else:
                caller, dialled, trunk = user, rng.choice(extensions), ""
                destination = dialled
            start = now - span * rng.random()
            answered = disposition == "ANSWERED"
            ring = 1 + 20 * rng.random()
            end = start + ring + (rng.expovariate(1 / 180) if answered else 0)
            rows.append(
                Cdr(
                    call_id=f"bench-{n:08d}",
                    sip_call_id=f"{n:08x}@bench",
                    tenant=TENANT,
                    direction=direction,
                    caller_number=caller,
                    caller_name=f"User {caller}" if direction != "inbound" else "",
                    dialled=dialled,
                    destination=destination if answered else "",
                    trunk=trunk,
                    start=start,
                    answer=start + ring if answered else None,
                    end=end,
                    disposition=disposition,
                    sip_code=code,
                    q850_cause=cause,
                    q850_name=cause_name,
                    legs=[
                        {
                            "target": f"user_devices {destination}",
                            "contact": f"sip:{destination}@127.0.0.1:5999",
                            "status": code,
                            "started": start + 0.05,
                            "ended": end,
                            "answered": answered,
                        }
                    ],
                    mos=round(3.5 + rng.random(), 2) if answered else None,
                )
            )
        made += len(rows)
        yield rows


def synthetic_bindings(extensions: Sequence[str], *, now: float) -> list[Binding]:
    """One registered phone per user, valid for an hour, each on its own (unused) port."""
    return [
        Binding(
            aor=f"sip:{ext}@{DOMAIN}",
            contact=f"sip:{ext}@127.0.0.1:{20000 + i % 40000};transport=udp",
            expires_at=now + 3600,
            q=None,
            call_id=f"bench-reg-{ext}",
            cseq=1,
            instance_id=None,
            reg_id=None,
            path=[],
            received=None,
            transport="udp",
            user_agent="bench phone",
            registered_at=now,
        )
        for i, ext in enumerate(extensions)
    ]


async def seed_store(
    config: Path, database_url: str, cdrs: int, registered: Sequence[str]
) -> dict[str, float]:
    """The file's tenants (the bench's users) as the provisioning model, `cdrs` synthetic
    calls and a registration per extension in `registered`, written straight into the
    Store; seconds each took."""
    tenants = load_config(config).tenants
    extensions = [u.extension for t in tenants for u in t.users]
    now = time.time()
    timings: dict[str, float] = {}
    async with open_store(database_url) as store:
        started = time.perf_counter()
        await ProvisioningService(store).seed(Actor("bench", "api_bench"), tenants)
        timings["users_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        for rows in synthetic_cdrs(cdrs, extensions, now=now):
            await store.save_cdrs(rows)
        timings["cdrs_s"] = round(time.perf_counter() - started, 2)
        timings["cdrs_per_s"] = round(cdrs / timings["cdrs_s"]) if timings["cdrs_s"] else 0.0
        started = time.perf_counter()
        await store.save_bindings(synthetic_bindings(registered, now=now))
        timings["registrations_s"] = round(time.perf_counter() - started, 2)
    return timings


# --- a change applied: SIPp traces --------------------------------------------------------

_BLOCK = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$", re.M)
_CALL_ID = re.compile(r"^(?:Call-ID|i)\s*:\s*(\S+)", re.M | re.I)


def invite_arrivals(trace: str) -> list[float]:
    """Epoch times a SIPp UAS's -trace_msg log received each call's first INVITE (SIPp
    stamps messages in local time; retransmissions of a Call-ID are left out), sorted."""
    first: dict[str, float] = {}
    parts = _BLOCK.split(trace)
    for stamp, body in zip(parts[1::2], parts[2::2], strict=False):
        header, _, message = body.lstrip("\n").partition("\n")
        if "received" not in header or not message.lstrip().startswith("INVITE "):
            continue
        call_id = _CALL_ID.search(message)
        if call_id is None or call_id.group(1) in first:
            continue
        first[call_id.group(1)] = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
    return sorted(first.values())


@dataclass(frozen=True)
class Change:
    """One re-pointing of the number over the API: when the request left, when its answer
    came back, and whether the number now goes to the new target (the carrier's gateway)
    or back to the user."""

    sent: float
    answered: float
    forwarded: bool
    status: int


def change_latencies_ms(
    changes: Sequence[Change], to_gateway: Sequence[float], to_user: Sequence[float]
) -> list[float | None]:
    """Per change: from the API's answer to the first call arriving at the number's new
    target, taken between the request leaving and the next change (None: no call got there
    in that window; negative: the call arrived before the answer reached the client)."""
    out: list[float | None] = []
    for i, change in enumerate(changes):
        until = changes[i + 1].sent if i + 1 < len(changes) else math.inf
        arrivals = to_gateway if change.forwarded else to_user
        first = next((t for t in arrivals if change.sent <= t < until), None)
        out.append(None if first is None else round(1000 * (first - change.answered), 2))
    return out
