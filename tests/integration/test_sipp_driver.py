"""The SIPp driver's background run: a UAS that would wait for calls until its own
time limit is stopped by its PID, and its result (statistics) is still read."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from peers.sipp import start_sipp
from peers.switchproc import free_port

pytestmark = pytest.mark.integration


def test_a_background_uas_is_stopped_early_and_leaves_its_result(tmp_path: Path) -> None:
    port = free_port()
    uas = start_sipp(
        "call_uas.xml", f"127.0.0.1:{free_port()}", calls=10, rate=1, local_port=port,
        timeout=300, workdir=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not (tmp_path / "stat.csv").exists() and time.monotonic() < deadline:
        assert uas.running(), uas.wait().errors
        time.sleep(0.1)
    result = uas.stop(grace=3)
    assert not uas.running()
    with pytest.raises(ProcessLookupError):
        os.kill(uas.pid, 0)  # gone, not left to its 300 s time limit
    assert result.successful == 0 and result.failed == 0
    assert uas.stop() is result  # stopping twice is harmless
