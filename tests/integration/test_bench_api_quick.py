"""The suite's workload 7 (the admin API bench) end to end at tiny sizes: `python -m bench
--quick --workloads 7` seeds users and call history into SQLite and PostgreSQL, measures the
list endpoints over HTTP, runs workload 2's ladder without and with API requests alongside
and re-points a number while SIPp calls it. No figure is asserted: the machine is shared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_quick_api_bench_reports_every_figure(tmp_path: Path, pg_dsn: str) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--workloads",
            "7",
            "--systems",
            "softswitch",
            "--users",
            "50",
            "--cdrs",
            "2000",
            "--max-rate",
            "20",
            "--results",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        # The bench's PostgreSQL: the tests' server (pg_dsn), not one of its own.
        env={**os.environ, "SOFTSWITCH_TEST_PG_DSN": pg_dsn},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (report,) = tmp_path.glob("bench-*.json")
    (row,) = json.loads(report.read_text())["results"]
    assert row["workload"] == "7" and row["status"] == "ok", row
    # (a ladder may find no clean level when the machine is busy: that is a figure too)
    assert row["trials"] and "best_level" in row["summary"]
    api = row["api"]
    assert (api["users"], api["cdrs"]) == (50, 2000)
    for backend in ("sqlite", "postgresql"):
        figures = api[backend]
        assert figures["seeding"]["cdrs_s"] >= 0
        cdrs = figures["endpoints"]["cdrs: newest page"]
        assert cdrs["status"] == "ok" and cdrs["total"] == 2000 and cdrs["p99_ms"] > 0
        registrations = figures["endpoints"]["registrations"]
        assert registrations["total"] == 51  # one phone per user, and the callee
        change = figures["change"]
        assert change["api_errors"] == [] and change["samples"] + change["not_seen"] == 4
        assert change["calls"]["to_gateway"] > 0 and change["calls"]["to_user"] > 0
    calls = api["sqlite"]["calls"]
    assert calls["without_api"]["api_load"] is None
    busy = calls["with_api"]["api_load"]
    assert busy["errors"] == 0 and busy["reads"]["samples"] and busy["writes"]["samples"]
    for side in ("without_api", "with_api"):
        assert calls[side]["invite_delay"]["samples"] > 0
        assert calls[side]["summary"]["trials"] and "best_level" in calls[side]["summary"]
