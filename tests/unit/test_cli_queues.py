"""`softswitch queues stats|status|agent` as an operator runs them, on both backends."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from pathlib import Path

from storage import open_store
from storage.queue_events import QueueEvent
from tests.unit.clikit import run, write_config

QUEUES = """
[[tenants.queues]]
name = "sales"
extension = "8000"
strategy = "linear_hunt"
service_level = 30
agents = [{ extension = "101", order = 1 }, { extension = "102", order = 2 }]
"""


def _append(url: str, events: list[QueueEvent]) -> None:
    async def go() -> None:
        async with open_store(url) as store:
            await store.append_queue_events(events)

    asyncio.run(go())


def test_agent_commands_status_and_stats(database_url: str, tmp_path: Path) -> None:
    config = str(write_config(tmp_path, database_url, QUEUES))
    base = ("--config", config)
    done = run("queues", "agent", "login", "101", *base, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        run("queues", "agent", "pause", "102", "--reason", "lunch", *base, cwd=tmp_path).returncode
        == 0
    )
    bad = run("queues", "agent", "login", "105", *base, cwd=tmp_path)
    assert bad.returncode == 2 and "105: not an agent" in bad.stderr
    bad = run("queues", "agent", "logout", "101", "--reason", "x", *base, cwd=tmp_path)
    assert bad.returncode == 2 and "--reason" in bad.stderr

    now = time.time()
    ev = lambda kind, dt, agent="", reason="": QueueEvent(  # noqa: E731
        "example", kind, now - dt, "sales", "call-1", agent, reason
    )
    _append(
        database_url,
        [
            ev("entered", 40),
            ev("offered", 35, "101", "linear_hunt"),
            ev("answered", 20, "101"),
            QueueEvent("example", "entered", now - 10, "sales", "call-2"),
        ],
    )
    status = run("queues", "status", "--format", "json", *base, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert [c["call_id"] for c in doc["callers"]] == ["call-2"]
    agents = {a["agent"]: a for a in doc["agents"]}
    assert (agents["101"]["status"], agents["101"]["state"]) == ("available", "in_call")
    assert (agents["102"]["status"], agents["102"]["reason"]) == ("on_break", "lunch")
    table = run("queues", "status", *base, cwd=tmp_path).stdout
    assert "callers waiting: 1" in table and "on_break:lunch" in table

    today = time.strftime("%Y-%m-%d", time.gmtime(now - 86400))
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(now + 86400))
    stats = run(
        "queues",
        "stats",
        "--from",
        today,
        "--to",
        tomorrow,
        "--format",
        "csv",
        "--queue",
        "sales",
        *base,
        cwd=tmp_path,
    )
    assert stats.returncode == 0, stats.stderr
    queue_part = stats.stdout.split("# agents")[0].replace("# queues\n", "")
    (row,) = list(csv.DictReader(io.StringIO(queue_part)))
    assert (row["queue"], row["volume"], row["handled"], row["service_level_threshold"]) == (
        "sales",
        "2",
        "1",
        "30.0",
    )
    bad = run("queues", "stats", "--from", "yesterday", "--to", tomorrow, *base, cwd=tmp_path)
    assert bad.returncode == 2 and "from" in bad.stderr
    bad = run(
        "queues", "stats", "--from", today, "--to", tomorrow, "--queue", "nope", *base, cwd=tmp_path
    )
    assert bad.returncode == 2 and "no queue 'nope'" in bad.stderr
