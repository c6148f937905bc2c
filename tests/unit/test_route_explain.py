"""`softswitch route explain` prints the callflow tree, compared exactly with the fixture
files in tests/unit/explain/: a DID in and out of business hours, a user with sim-ring and
forward on no answer (and what if she is busy), a disaster plan, a conference, a supervisor
dialling a monitor code, a park orbit and the park code, emergency calls (911, and a
number of the tenant's own).

After a deliberate change of the output, rewrite the fixtures with
``SOFTSWITCH_WRITE_FIXTURES=1 pytest tests/unit/test_route_explain.py`` and review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "explain"
MONDAY_10 = "2026-07-06T10:00-04:00"
MONDAY_20 = "2026-07-06T20:00-04:00"
EVERYONE = [arg for ext in ("100", "101", "102", "103") for arg in ("--registered", ext)]
FROM_OUTSIDE = ["--from", "+12125550123"]

CASES: dict[str, list[str]] = {
    "did_business_hours": ["--to", "+14155550100", *FROM_OUTSIDE, "--at", MONDAY_10],
    "did_after_hours": ["--to", "+14155550100", *FROM_OUTSIDE, "--at", MONDAY_20],
    "simring_forward_no_answer": ["--to", "103", "--from", "101", "--at", MONDAY_10],
    "simring_busy": ["--to", "103", "--from", "101", "--at", MONDAY_10, "--outcome", "busy"],
    "disaster_plan": ["--to", "+14155550100", *FROM_OUTSIDE, "--at", MONDAY_10],
    "conference": ["--to", "+14155550170", *FROM_OUTSIDE, "--at", MONDAY_10],
    "monitor": ["--to", "*52101", "--from", "100", "--at", MONDAY_10],
    "emergency": ["--to", "911", "--from", "101", "--at", MONDAY_10],
    "emergency_tenant_number": ["--to", "933", "--from", "102", "--at", MONDAY_10],
    "park_orbit": ["--to", "7002", "--from", "101", "--at", MONDAY_10],
    "park_code": ["--to", "*70", "--from", "101", "--at", MONDAY_10],
}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "softswitch.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_route_explain_prints_the_callflow(name: str, tmp_path: Path) -> None:
    text = (FIXTURES / "switch.toml").read_text(encoding="utf-8")
    config = tmp_path / "switch.toml"
    config.write_text(text.replace("@DATABASE@", f"sqlite:///{tmp_path}/db.sqlite"), "utf-8")
    if name in ("disaster_plan", "emergency"):
        enabled = cli("disaster", "enable", "Office outage", "--config", str(config), cwd=tmp_path)
        assert enabled.returncode == 0, enabled.stderr
    done = cli("route", "explain", *CASES[name], *EVERYONE, "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = FIXTURES / f"{name}.txt"
    if os.environ.get("SOFTSWITCH_WRITE_FIXTURES"):
        expected.write_text(done.stdout, encoding="utf-8")
    assert done.stdout == expected.read_text(encoding="utf-8")
