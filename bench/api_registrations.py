"""The registrations list at 10,000 registrations (issue 17): one request's work on the
switch's loop, without HTTP.

`--registrations` phones of one tenant (and as many of a second tenant) in the registrar's
location table; per request, median and p99 of `--requests` (200), milliseconds:

    walk            every binding filtered, sorted and cut (the list before the index)
    first page      the index's first page of 50
    one extension   ?extension=...
    page 100        a page deep in the list (by its cursor)
    after a new AOR the first page once a phone registers for the first time (a rebuild)

    .venv/bin/python -m bench.api_registrations --registrations 10000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.models import Tenant
from softswitch.api.registrations import RegistrationIndex
from softswitch.location import LocationService
from softswitch.sip.address import Address
from storage import open_store
from storage.base import Binding

__all__ = ["main"]

SOURCE = Address("UDP", "127.0.0.1", 40001)
FIRST = 10_000


def _binding(aor: str, n: int, now: float) -> Binding:
    return Binding(
        aor=aor,
        contact=f"sip:{n}@10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}:5062",
        expires_at=now + 3600,
        q=None,
        call_id=f"c{n}",
        cseq=1,
        instance_id=None,
        reg_id=None,
        path=[],
        received=None,
        transport="UDP",
        user_agent="bench phone",
        registered_at=now,
    )


def _walk(location: LocationService, tenant: Tenant, now: float, limit: int) -> list[Any]:
    """The endpoint's work before the index (softswitch/api/routes_live.py at f6ab953)."""
    suffix = "@" + tenant.domain.lower()
    rows = []
    for b in location.all_bindings(now):
        if not b.aor.lower().endswith(suffix):
            continue
        user = b.aor.removeprefix("sip:")[: -len(suffix)]
        found = tenant.user_by_extension(user) or tenant.user_by_username(user)
        ext = found.extension if found is not None else user
        rows.append((ext, b.contact, b))
    rows.sort(key=lambda row: (row[0], row[1]))
    return rows[:limit]


def _timed(requests: int, step: Callable[[int], Any]) -> dict[str, float]:
    times = []
    for i in range(requests):
        started = time.perf_counter()
        step(i)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
    }


async def run(registrations: int, requests: int) -> dict[str, dict[str, float]]:
    exts = [str(FIRST + i) for i in range(registrations)]
    tenants = [
        Tenant.model_validate(
            {
                "name": name,
                "domain": domain,
                "users": [{"extension": e, "password": "pw"} for e in exts],
            }
        )
        for name, domain in (("bench", "bench.test"), ("other", "other.test"))
    ]
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="api-regs-") as work:
        location = LocationService(open_store(f"sqlite:///{Path(work) / 'loc.db'}"))
        n = 0
        for tenant in tenants:
            for ext in exts:
                aor = f"sip:{ext}@{tenant.domain}"
                location.update(aor, [(_binding(aor, n, now), SOURCE)])
                n += 1
        bench = tenants[0]
        index = RegistrationIndex()
        deep = None
        for _ in range(100):
            deep = index.page(location, bench, now, after=deep, limit=50).next_key
        out = {
            "walk": _timed(requests, lambda i: _walk(location, bench, now, 50)),
            "first page": _timed(requests, lambda i: index.page(location, bench, now, limit=50)),
            "one extension": _timed(
                requests,
                lambda i: index.page(location, bench, now, extension=exts[i % len(exts)]),
            ),
            "page 100": _timed(
                requests, lambda i: index.page(location, bench, now, after=deep, limit=50)
            ),
        }

        def new_aor(i: int) -> None:
            aor = f"sip:{FIRST + registrations + i}@bench.test"
            location.update(aor, [(_binding(aor, n + i, now), SOURCE)])
            index.page(location, bench, now, limit=50)

        out["after a new AOR"] = _timed(min(requests, 50), new_aor)
        return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_registrations", description=__doc__)
    parser.add_argument("--registrations", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.registrations, args.requests))
    print(f"{args.registrations} registrations per tenant, two tenants (median / p99 ms)")
    for what, value in figures.items():
        print(f"  {what:16} {value['median_ms']:9.3f} {value['p99_ms']:9.3f}")


if __name__ == "__main__":
    main()
