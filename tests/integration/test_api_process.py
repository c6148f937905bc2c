"""`softswitch run` serves the admin API beside the switch: the first operator and its token
come from the command line; /metrics (Prometheus text, parsed with prometheus_client's
parser) moves with real SIPp traffic (registrations, calls, SIP requests and responses);
the event stream tells of those calls; live calls are listed, hung up and monitored, and
conference participants listed, muted and kicked through the API."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    HeldCaller,
    caller_injection,
    register_endpoint,
    switch_cli,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

USERS = [
    PhoneUser("100", "pw100"),
    PhoneUser("200", "pw200"),
    PhoneUser("101", "pw101", extra_toml="can_monitor = true"),
]
CONFERENCE = '[[tenants.conferences]]\nname = "standup"\nextension = "300"\n'
CALLS = 20


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class _Collector:
    """Reads an event stream in a thread until it closes."""

    def __init__(self, ws: ClientConnection) -> None:
        self.events: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, args=(ws,), daemon=True)
        self._thread.start()

    def _run(self, ws: ClientConnection) -> None:
        try:
            while True:
                self.events.append(json.loads(ws.recv()))
        except (ConnectionClosed, TimeoutError, OSError):
            return

    def types(self) -> list[str]:
        return [e["type"] for e in list(self.events)]


def _switch_with_api(tmp_path: Path, database: str) -> tuple[SwitchConfigFile, Path, int, str]:
    """A switch configuration with [api] on a free port, its first operator and token made
    with the command line."""
    api_port = free_port()
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=USERS,
        database_url=database,
        extra_toml=f'[api]\nenabled = true\nhost = "127.0.0.1"\nport = {api_port}\n',
        tenant_toml=CONFERENCE,
    )
    path = config.write()
    out = switch_cli(path, "admin", "create", "prometheus", "--role", "operator", "--no-password")
    assert "prometheus created" in out
    token = switch_cli(path, "token", "create", "prometheus", "--description", "scraper").strip()
    assert token.startswith("ss_")
    return config, path, api_port, token


def _client(api_port: int, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{api_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_metrics_and_events_move_with_sipp_traffic(tmp_path: Path, store_url: str) -> None:
    config, path, api_port, token = _switch_with_api(tmp_path, store_url)
    with (
        SwitchProcess(path, port=config.port) as switch,
        _client(api_port, token) as api,
        connect(f"ws://127.0.0.1:{api_port}/v1/events?token={token}") as ws,
    ):
        stream = _Collector(ws)
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
        deadline = time.monotonic() + 10
        while stream.types().count("call.ended") < CALLS and time.monotonic() < deadline:
            time.sleep(0.1)
        types = stream.types()

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

    assert types.count("call.ended") == CALLS  # from the CDRs: none missed
    assert "registration.added" in types and "call.created" in types
    ended = next(e for e in stream.events if e["type"] == "call.ended")
    assert ended["tenant"] == "test" and ended["data"]["disposition"] == "ANSWERED"


def test_a_live_call_is_listed_and_hung_up(tmp_path: Path, store_url: str) -> None:
    config, path, api_port, token = _switch_with_api(tmp_path, store_url)
    with SwitchProcess(path, port=config.port) as switch, _client(api_port, token) as api:
        uas_port = free_port()
        register_endpoint(tmp_path / "sipp", switch.port, "200", "pw200", uas_port)
        uas = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=uas_port)
        wait_until_listening()
        caller = HeldCaller(tmp_path, switch.port, "100", "200")
        live: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            live = api.get("/v1/tenants/test/calls", params={"state": "answered"}).json()["items"]
            if live:
                break
            time.sleep(0.1)
        assert len(live) == 1, "the call was never answered"
        listed = live[0]
        assert (listed["caller_number"], listed["dialled"], listed["callee"]) == (
            "100",
            "200",
            "200",
        )
        assert listed["duration"] >= listed["talk_time"] >= 0
        assert len(listed["legs"]) == 2 and listed["legs"][1]["answered"]
        assert api.get(f"/v1/tenants/test/calls/{listed['id']}").status_code == 200
        assert api.delete(f"/v1/tenants/test/calls/{listed['id']}").status_code == 202
        result = caller.join()
        assert result.ok, result.errors  # the caller got our BYE
        assert uas.result().ok  # and so did the callee
        rows = wait_cdrs(switch, 1)
        assert rows[0]["disposition"] == "ANSWERED"
        assert api.get(f"/v1/tenants/test/calls/{listed['id']}").status_code == 404


def _wait(fetch: Any, done: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    value = fetch()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = fetch()
    return value


def test_conference_participants_listed_muted_and_kicked(tmp_path: Path, store_url: str) -> None:
    config, path, api_port, token = _switch_with_api(tmp_path, store_url)
    with (
        SwitchProcess(path, port=config.port) as switch,
        _client(api_port, token) as api,
        connect(f"ws://127.0.0.1:{api_port}/v1/events?token={token}") as ws,
    ):
        stream = _Collector(ws)
        time.sleep(0.5)  # the stream's first sample
        caller = HeldCaller(tmp_path, switch.port, "100", "300")
        conference = _wait(
            lambda: api.get("/v1/tenants/test/conferences/standup").json(),
            lambda c: c["participants"],
        )
        assert conference["active"] and len(conference["participants"]) == 1
        participant = conference["participants"][0]
        assert participant["number"] == "100" and not participant["muted"]
        joined = _wait(stream.types, lambda t: "conference.joined" in t, 5)
        assert "call.created" in joined and "conference.joined" in joined
        path_p = f"/v1/tenants/test/conferences/standup/participants/{participant['id']}"
        muted = api.patch(path_p, json={"muted": True})
        assert muted.status_code == 200 and muted.json()["muted"] is True
        assert api.delete(path_p).status_code == 202
        assert caller.join().ok  # the kicked caller got the switch's BYE
        reports = _wait(
            lambda: api.get("/v1/tenants/test/conference-reports").json(),
            lambda r: r["total"] >= 1,
        )
        assert reports["items"][0]["participants"][0]["reason"] == "kicked"
        types = _wait(stream.types, lambda t: "conference.left" in t, 5)
        assert "conference.left" in types
        assert api.get(path_p).status_code == 405  # participants are patched or deleted
        assert api.delete(path_p).status_code == 404  # gone


def test_monitor_rings_the_supervisor(tmp_path: Path, store_url: str) -> None:
    config, path, api_port, token = _switch_with_api(tmp_path, store_url)
    with SwitchProcess(path, port=config.port) as switch, _client(api_port, token) as api:
        agent_port, supervisor_port = free_port(), free_port()
        register_endpoint(tmp_path / "sipp", switch.port, "200", "pw200", agent_port)
        register_endpoint(tmp_path / "sipp-sup", switch.port, "101", "pw101", supervisor_port)
        agent = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=agent_port)
        supervisor = BackgroundSipp(
            "call_uas.xml", switch.port, calls=1, local_port=supervisor_port
        )
        wait_until_listening()
        caller = HeldCaller(tmp_path, switch.port, "100", "200")
        calls = _wait(
            lambda: api.get("/v1/tenants/test/calls", params={"state": "answered"}).json(),
            lambda page: page["total"] == 1,
        )
        call_id = calls["items"][0]["id"]
        monitor = f"/v1/tenants/test/calls/{call_id}/monitor"
        refused = api.post(monitor, json={"supervisor": "100", "mode": "listen"})
        assert refused.status_code == 409 and refused.json()["code"] == "monitor_denied"
        assert api.post(monitor, json={"supervisor": "101", "mode": "whisper"}).status_code == 202
        both = _wait(
            lambda: api.get("/v1/tenants/test/calls", params={"state": "answered"}).json(),
            lambda page: page["total"] == 2,
        )
        assert both["total"] == 2, "the supervisor's phone was not rung and answered"
        assert api.delete(f"/v1/tenants/test/calls/{call_id}").status_code == 202
        assert caller.join().ok
        assert agent.result().ok
        assert supervisor.result().ok  # monitoring ended with the call: BYE to the supervisor
