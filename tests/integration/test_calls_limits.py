"""Call admission control: a tenant's concurrent call limit answers the next call 503."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    caller_injection,
    register_endpoint,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration


def test_sixth_concurrent_call_gets_503(tmp_path: Path) -> None:
    config = SwitchConfigFile(
        tmp_path / "switch", users=[PhoneUser("100", "pw100"), PhoneUser("200", "pw200")]
    )
    path = config.write()
    text = path.read_text()
    path.write_text(text.replace('domain = "pbx.test"\n', 'domain = "pbx.test"\nmax_calls = 5\n'))
    with SwitchProcess(path, port=config.port) as switch:
        port = free_port()
        register_endpoint(tmp_path / "sipp", switch.port, "200", "pw200", port)
        callee = BackgroundSipp("call_uas.xml", switch.port, calls=5, local_port=port)
        wait_until_listening()
        # Six calls within about half a second, each held for 4 s: the sixth finds five up.
        uac = run_sipp(
            "call_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=6,
            rate=10,
            injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
            extra=["-s", "200", "-d", "4000"],
            timeout=30,
        )
        assert (uac.successful, uac.failed) == (5, 1), uac.errors
        assert "503" in uac.errors or "503" in uac.screen
        assert callee.result().ok
        rows = wait_cdrs(switch, 5)
        assert Counter(r["disposition"] for r in rows) == {"ANSWERED": 5}


def test_overloaded_switch_sheds_new_calls_and_finishes_the_others(tmp_path: Path) -> None:
    config = SwitchConfigFile(
        tmp_path / "switch", users=[PhoneUser("100", "pw100"), PhoneUser("200", "pw200")]
    )
    path = config.write()
    # A bound of two calls in set-up stands in for a switch at its limit.
    path.write_text(
        path.read_text().replace(
            "[[tenants]]", "[overload]\nmax_calls_in_setup = 2\nretry_after = 7\n[[tenants]]", 1
        )
    )
    with SwitchProcess(path, port=config.port) as switch:
        port = free_port()
        register_endpoint(tmp_path / "sipp", switch.port, "200", "pw200", port)
        # The callee rings 3 s before answering, so the first two calls stay in set-up.
        callee = BackgroundSipp(
            "call_uas.xml", switch.port, calls=3, local_port=port, extra=["-d", "3000"]
        )
        wait_until_listening()
        injection = caller_injection(tmp_path / "sipp", "100", "pw100")
        burst = run_sipp(
            "call_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=3,
            rate=10,
            injection=injection,
            extra=["-s", "200", "-d", "200"],
            timeout=30,
        )
        assert (burst.successful, burst.failed) == (2, 1), burst.errors
        assert "503 Service Unavailable" in burst.errors
        assert "Retry-After: 7" in burst.errors
        # The overload is over once those two are answered: the next call goes through.
        later = run_sipp(
            "call_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=1,
            rate=1,
            injection=injection,
            extra=["-s", "200", "-d", "200"],
            timeout=30,
        )
        assert later.ok, later.errors
        assert callee.result().ok
        rows = wait_cdrs(switch, 3)
        assert Counter(r["disposition"] for r in rows) == {"ANSWERED": 3}
        switch.stop()
    log = (config.directory / "switch.log").read_text()
    assert "overload_shedding" in log and "reason=calls_in_setup" in log
    assert "overload={'shed': 1, 'episodes': 1, 'calls_in_setup': 1}" in log
