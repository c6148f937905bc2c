"""One provisioning write at 10,000 users (issue 17): what validating it costs.

A tenant of `--users` users (answering rules, numbers, a ring group, a queue, a bridge and
a shared mailbox beside them) is seeded into a SQLite Store; then, through the
ProvisioningService (the API's path, without HTTP):

    user update     one user's display name changed          (each of 20 a different user)
    user create     a new user                                (20 new extensions)
    user delete     a user nothing names                      (the ones just created)
    number update   a number re-pointed to another user       (workload 7's write)
    refused         a duplicate username (422: the whole tenant is validated for the error)

Median and max of `--writes` (20) each, milliseconds, and the validation alone
(`validate_change` against the kept model) for the user update.

    .venv/bin/python -m bench.api_write --users 10000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from config.models import Tenant
from softswitch.provisioning import Actor, InvalidObject, ProvisioningService
from storage import open_store

__all__ = ["main", "tenant_of"]

WHO = Actor("bench", "api_write")
FIRST = 10_000  # the bench's users are 10000, 10001...


def tenant_of(users: int) -> Tenant:
    """A tenant of `users` users and something naming users beside them."""
    exts = [str(FIRST + i) for i in range(users)]
    return Tenant.model_validate(
        {
            "name": "bench",
            "domain": "bench.test",
            "users": [{"extension": e, "password": f"pw-{e}"} for e in exts],
            "conferences": [{"name": "standup", "extension": "700", "owner": exts[0]}],
            "queues": [{"name": "sales", "extension": "800", "agents": [{"extension": exts[1]}]}],
            "voicemail": {"mailboxes": {"900": {}}},
            "routing": {
                "users": {
                    exts[2]: {
                        "default_rule": {"forward": {"always": {"kind": "user", "target": exts[3]}}}
                    }
                },
                "dids": [
                    {"number": f"+1415555{i:04d}", "treatment": "user", "destination": exts[i]}
                    for i in range(min(users, 100))
                ],
                "ring_groups": [
                    {"name": "front", "extension": "600", "members": [{"target": exts[4]}]}
                ],
            },
        }
    )


async def _timed(writes: int, step: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    times = []
    for i in range(writes):
        started = time.perf_counter()
        await step(i)
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


async def run(users: int, writes: int) -> dict[str, Any]:
    """The figures for one tenant size."""
    with tempfile.TemporaryDirectory(prefix="api-write-") as work:
        store = open_store(f"sqlite:///{Path(work) / 'bench.db'}")
        await store.open()
        try:
            service = ProvisioningService(store)
            started = time.perf_counter()
            await service.seed(WHO, [tenant_of(users)])
            await service.snapshot()  # the kept model
            out: dict[str, Any] = {
                "users": users,
                "seed_s": round(time.perf_counter() - started, 1),
            }
            first = await _timed(1, lambda i: _rename(service, 100))
            out["first write"] = first  # builds the kept indexes
            out["user update"] = await _timed(writes, lambda i: _rename(service, 200 + i))
            new = [str(FIRST + users + 100 + i) for i in range(writes)]
            out["user create"] = await _timed(
                writes,
                lambda i: service.create(
                    WHO, "user", "bench", {"extension": new[i], "password": "pw"}
                ),
            )
            out["user delete"] = await _timed(
                writes, lambda i: service.delete(WHO, "user", "bench", new[i])
            )
            out["number update"] = await _timed(writes, lambda i: _repoint(service, i, users))
            out["refused"] = await _timed(min(writes, 5), lambda i: _refused(service, users))
            out["validation alone"] = await _timed(writes, lambda i: _validation(service, i))
            return out
        finally:
            await store.close()


async def _rename(service: ProvisioningService, i: int) -> None:
    ext = str(FIRST + i)
    doc = {"extension": ext, "password": f"pw-{ext}", "display_name": f"User {i} {time.time()}"}
    await service.update(WHO, "user", "bench", ext, doc)


async def _repoint(service: ProvisioningService, i: int, users: int) -> None:
    target = str(FIRST + 10 + (i % max(1, users - 10)))
    doc = {"number": "+14155550005", "treatment": "user", "destination": target}
    await service.update(WHO, "number", "bench", "+14155550005", doc)


async def _refused(service: ProvisioningService, users: int) -> None:
    ext = str(FIRST + users - 1)
    doc = {"extension": ext, "username": str(FIRST), "password": "pw"}
    try:
        await service.update(WHO, "user", "bench", ext, doc)
    except InvalidObject:
        return
    raise AssertionError("a duplicate username was accepted")


async def _validation(service: ProvisioningService, i: int) -> None:
    # The service's own check, off the write: what a PUT validates before it stores.
    from softswitch.provisioning.validated import validate_change

    state = service._state  # the kept model is what is measured
    assert state is not None
    held = state.tenants["bench"]
    docs = held.documents()
    ext = str(FIRST + 300 + i)
    docs[("user", ext)] = {"extension": ext, "password": "pw", "display_name": f"V {i}"}
    validate_change("bench", held, docs, {("user", ext)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_write", description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--writes", type=int, default=20)
    args = parser.parse_args(argv)
    for users in args.users:
        figures = asyncio.run(run(users, args.writes))
        print(f"{users} users (seeded in {figures.pop('seed_s')} s; median / max ms)")
        figures.pop("users")
        for what, value in figures.items():
            print(f"  {what:18} {value['median_ms']:8.1f} {value['max_ms']:8.1f}")


if __name__ == "__main__":
    main()
