"""`softswitch run` on a SQLite file serves the admin API from a process of its own: the
listening socket is held by a child of the switch (not by the switch), which runs at a
lower CPU priority; a user created through it registers and is called; the call is listed
and hung up through it; its event stream tells of the call; and the switch connects calls
while the API process is frozen (SIGSTOP) with a request in hand; a killed API process
is started again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

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


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[16])


def _listening_inode(port: int) -> str:
    """The socket inode listening on TCP ``port`` (IPv4)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[1].endswith(f":{port:04X}") and parts[3] == "0A":
            return parts[9]
    raise AssertionError(f"nothing listens on {port}")


def _holds(pid: int, inode: str) -> bool:
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == f"socket:[{inode}]":
                return True
        except OSError:
            continue
    return False


def _api_process(switch: SwitchProcess, api_port: int) -> int:
    """The PID of the process that listens on the API's port, a child of the switch."""
    inode = _listening_inode(api_port)
    holders = [pid for pid in _children(switch.pid) if _holds(pid, inode)]
    assert len(holders) == 1, holders
    assert not _holds(switch.pid, inode)
    return holders[0]


def test_the_api_runs_in_its_own_process(tmp_path: Path) -> None:
    api_port = free_port()
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=[PhoneUser("100", "pw100")],
        database_url=f"sqlite:///{tmp_path}/switch.db",
        extra_toml=f'[api]\nenabled = true\nhost = "127.0.0.1"\nport = {api_port}\n',
    )
    path = config.write()
    switch_cli(path, "admin", "create", "ops", "--role", "operator", "--no-password")
    token = switch_cli(path, "token", "create", "ops").strip()
    headers = {"Authorization": f"Bearer {token}"}
    with (
        SwitchProcess(path, port=config.port) as switch,
        httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers=headers) as api,
        connect(f"ws://127.0.0.1:{api_port}/v1/events?token={token}") as ws,
    ):
        api_pid = _api_process(switch, api_port)
        assert api_pid != switch.pid
        assert _nice(api_pid) > _nice(switch.pid)  # signalling first

        # A user made through the API registers and is called.
        made = api.post("/v1/tenants/test/users", json={"extension": "300", "password": "pw300"})
        assert made.status_code == 201, made.text
        uas_port = free_port()
        register_endpoint(tmp_path / "sipp", switch.port, "300", "pw300", uas_port)
        uas = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=uas_port)
        wait_until_listening()
        caller = HeldCaller(tmp_path, switch.port, "100", "300")
        live: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while not live and time.monotonic() < deadline:
            live = api.get("/v1/tenants/test/calls", params={"state": "answered"}).json()["items"]
            time.sleep(0.1)
        assert len(live) == 1, "the call was never answered"
        assert (live[0]["caller_number"], live[0]["callee"]) == ("100", "300")
        # Hung up through the API: both sides get BYE from the switch.
        assert api.delete(f"/v1/tenants/test/calls/{live[0]['id']}").status_code == 202
        result = caller.join()
        assert result.ok, result.errors
        assert uas.result().ok
        assert wait_cdrs(switch, 1)[0]["disposition"] == "ANSWERED"

        # The event stream told of the call, ended by the hang-up.
        # (A call created and ended between two samples shows only its end.)
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while "call.ended" not in [e["type"] for e in events] and time.monotonic() < deadline:
            events.append(json.loads(ws.recv(timeout=10)))
        ended = next(e for e in events if e["type"] == "call.ended")
        assert ended["data"]["id"] == live[0]["id"] and ended["data"]["callee"] == "300"
        added = next(e for e in events if e["type"] == "registration.added")
        assert added["data"]["extension"] == "300"
        assert any(e["type"] == "config.changed" and e["data"]["name"] == "300" for e in events)

        # Frozen (as by a slow request), the API holds up nothing: the switch answers and
        # connects a call, and the request in hand is answered once the API runs again.
        uas = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=uas_port)
        wait_until_listening()
        os.kill(api_pid, signal.SIGSTOP)
        with ThreadPoolExecutor(1) as pool:
            try:
                pending = pool.submit(api.get, "/v1/tenants/test/users", timeout=60)
                done = run_sipp(
                    "call_uac.xml",
                    f"127.0.0.1:{switch.port}",
                    calls=1,
                    rate=1,
                    injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
                    extra=["-s", "300", "-d", "100"],
                    timeout=60,
                )
                assert done.ok and done.successful == 1, done.errors
                assert uas.result().ok
                assert not pending.done()
            finally:
                os.kill(api_pid, signal.SIGCONT)
            answer = pending.result(60)
        assert answer.status_code == 200 and answer.json()["total"] == 2

        # An API process that dies is started again; the switch runs on meanwhile.
        os.kill(api_pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        again = None
        while again is None and time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(httpx.HTTPError):
                if api.get("/v1/tenants/test/calls").status_code == 200:
                    again = _api_process(switch, api_port)
        assert again is not None and again != api_pid
        assert switch.alive()
        api_pid = again
    assert not Path(f"/proc/{api_pid}").exists() or _zombie(api_pid)  # stopped with it


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True
