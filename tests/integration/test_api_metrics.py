"""`softswitch run` serves the admin API beside the switch: the first operator and its token
come from the command line, and /metrics (Prometheus text, parsed with prometheus_client's
parser) moves with real SIPp traffic: registrations, calls, SIP requests and responses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.sipp import run_sipp
from bench.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    caller_injection,
    register_endpoint,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

USERS = [PhoneUser("100", "pw100"), PhoneUser("200", "pw200")]
CALLS = 20


def _cli(config: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "softswitch.cli", *args, "--config", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_sipp_traffic(tmp_path: Path) -> None:
    api_port = free_port()
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=USERS,
        extra_toml=f'[api]\nenabled = true\nhost = "127.0.0.1"\nport = {api_port}\n',
    )
    path = config.write()
    out = _cli(path, "admin", "create", "prometheus", "--role", "operator", "--no-password")
    assert "prometheus created" in out
    token = _cli(path, "token", "create", "prometheus", "--description", "scraper").strip()
    assert token.startswith("ss_")

    with (
        SwitchProcess(path, port=config.port) as switch,
        httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as api,
    ):
        assert api.get("/metrics", headers={"Authorization": ""}).status_code == 401
        before = _samples(api.get("/metrics").text)
        assert _value(before, "softswitch_registrations", tenant="test") == 0

        uas_port = free_port()
        register_endpoint(tmp_path / "sipp", switch.port, "200", "pw200", uas_port)
        uas = BackgroundSipp("call_uas.xml", switch.port, calls=CALLS, local_port=uas_port)
        wait_until_listening()
        uac = run_sipp(
            "call_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=CALLS,
            rate=20,
            injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
            extra=["-s", "200", "-d", "100"],
            timeout=60,
        )
        assert uac.ok and uac.successful == CALLS, uac.errors
        assert uas.result().ok
        wait_cdrs(switch, CALLS)

        answer = api.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        after = _samples(answer.text)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert _value(after, "softswitch_registrations", tenant="test") == 1
    assert moved("softswitch_sip_requests_received_total", method="INVITE") >= 2 * CALLS
    assert moved("softswitch_sip_requests_received_total", method="REGISTER") >= 2
    assert moved("softswitch_sip_requests_received_total", method="BYE") >= CALLS
    assert moved("softswitch_sip_requests_received_total", method="ACK") >= CALLS
    assert moved("softswitch_sip_responses_received_total", **{"class": "2xx"}) >= CALLS
    assert moved("softswitch_sip_responses_sent_total", **{"class": "4xx"}) >= 1  # 401
    assert moved("softswitch_calls_started_total") == CALLS
    assert moved("softswitch_calls_answered_total") == CALLS
    assert _value(after, "softswitch_calls", tenant="test", state="active") == 0
    assert _value(after, "softswitch_calls", tenant="test", state="setup") == 0
    assert ("softswitch_sip_transactions", ()) in after
    assert moved("softswitch_media_ticks_total") > 0  # calls are anchored by default
    assert ("softswitch_media_late_ticks_total", ()) in after
    assert ("softswitch_overload_rejected_total", ()) in after
    # no label names a call
    assert not any("call" in key for _, labels in after for key, _ in labels)
