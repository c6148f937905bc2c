"""Helpers of the call-park tests: a SIPp client run in a thread, and the busy-lamp watcher
scenario of a park orbit (idle, lit while a call is parked, dark once it is taken)."""

from __future__ import annotations

import threading
from pathlib import Path

from peers.sipp import SippResult, run_sipp

SIPP = Path(__file__).parent.parent / "sipp"


class SippThread:
    """A SIPp run (client side) in a thread, joined with ``wait()``."""

    def __init__(self, scenario: str | Path, port: int, **kwargs: object) -> None:
        self.result: SippResult | None = None
        self._thread = threading.Thread(
            target=self._run, args=(scenario, port, kwargs), daemon=True
        )
        self._thread.start()

    def _run(self, scenario: str | Path, port: int, kwargs: dict[str, object]) -> None:
        self.result = run_sipp(scenario, f"127.0.0.1:{port}", calls=1, rate=1, **kwargs)  # type: ignore[arg-type]

    def wait(self, timeout: float = 90) -> SippResult:
        self._thread.join(timeout)
        assert self.result is not None, "SIPp did not finish"
        return self.result


def park_watch_scenario(path: Path) -> Path:
    """blf_watch.xml without its ringing step: idle, lit (confirmed), dark (terminated)."""
    text = (SIPP / "blf_watch.xml").read_text()
    notify = '  <recv request="NOTIFY" crlf="true">\n    <action>\n      <ereg regexp='
    start = text.index(notify + '"&lt;state&gt;early')
    end = text.index(notify + '"&lt;state&gt;confirmed')
    path.write_text(text[:start] + text[end:].replace(",early,earlys", ""))
    return path
