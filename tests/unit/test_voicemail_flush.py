"""A recording killed outright (SIGKILL) keeps all but its last 200 ms: the recorder hands
its frames to the disk thread every 10 ticks, which writes them to the operating system,
whose page cache outlives the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from softswitch.voicemail.audio import recorded_channel

_CHILD = r"""
import asyncio, socket, sys, time
import numpy as np
from media.diskwriter import DiskWriter
from media.endpoint import Endpoint
from media.recorder import Recording
from media.wav import RecordingWriter

rtp, rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rtp.bind(("127.0.0.1", 0)); rtcp.bind(("127.0.0.1", 0))
ep = Endpoint(lambda: None, 1, rtp, rtcp, "127.0.0.1", "127.0.0.1", on_dtmf=None, inband_dtmf=None, jitter_depth=3)
disk, loop = DiskWriter(), asyncio.new_event_loop()
rec = Recording(sys.argv[1], ep, None, RecordingWriter(sys.argv[1]), disk, loop.create_future())
frame = np.full(160, 1000, np.int16)
for _ in range(int(sys.argv[2])):
    rec.append(frame, frame)
loop.run_until_complete(disk.drain())  # the thread wrote what it was handed (no close)
print("ready", flush=True)
time.sleep(60)
"""  # noqa: E501


def test_a_killed_recording_loses_at_most_200_ms(tmp_path: Path) -> None:
    path = tmp_path / "rec.wav"
    frames = 77  # 1.54 s: 70 frames written by the 200 ms flushes, 7 still buffered
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(frames)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    kept = recorded_channel(path)
    assert len(kept) == 70 * 160  # everything but the last, unflushed 140 ms
