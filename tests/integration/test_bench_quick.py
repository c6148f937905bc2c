"""The operator bench suite's short mode end to end: `python -m bench --quick` against our
switch (the reference systems are not part of the test set-up) writes a well-formed JSON
report and two PNG plots. No figure is asserted: the machine is shared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_quick_bench_writes_the_report(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--workloads",  # 7, the admin API: test_bench_api_quick.py
            "1,2,3,4,5,6",
            "--systems",
            "softswitch",
            "--results",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (report,) = tmp_path.glob("bench-*.json")
    data = json.loads(report.read_text())
    assert data["meta"]["quick"] is True
    rows = {row["workload"]: row for row in data["results"]}
    assert sorted(rows) == ["1", "2", "3", "4", "5", "6"]
    for key in ("1", "2", "3", "5", "6"):
        assert rows[key]["status"] == "ok", rows[key]
        assert rows[key]["trials"], rows[key]
        trial = rows[key]["trials"][0]
        assert {"level", "attempted", "failed", "achieved", "p99_ms", "clean"} <= set(trial)
    assert "bytes_per_call" in rows["4"]
    assert "cdrs" in rows["3"]
    pngs = sorted(tmp_path.glob("bench-*.png"))
    assert [p.name.rsplit("-", 1)[1] for p in pngs] == ["failures.png", "latency.png"]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert "wrote" in out.stdout
