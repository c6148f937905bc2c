"""Provisioning applied live to running switches, with SIPp as the phones and the carrier,
on SQLite and on PostgreSQL: a user created through provisioning registers and is called, a
re-pointed number routes the next call to its new target, a call in progress stays up
across 20 changes; in file mode `softswitch reload` and SIGHUP apply an edited file and a
bad file is refused whole; two switches on one PostgreSQL both see a change."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from peers.sipp import SippResult, run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from softswitch.provisioning import Actor, ProvisioningService
from storage import open_store
from storage.provisioning import AuditQuery
from tests.integration.callkit import (
    BackgroundSipp,
    register_endpoint,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

DID = "+14155550100"
ADMIN = Actor("test-admin", "127.0.0.1")
# The promise: a change applies to new calls within a second.
APPLIED = 1.0

_T = TypeVar("_T")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'switch.db'}"
    return str(request.getfixturevalue("pg_schema_dsn"))


def _config(tmp_path: Path, database_url: str, *, mode: str = "database") -> tuple[Path, int]:
    """A switch with users 100 and 102, the DID to 102 and a carrier trunk; its port."""
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=[PhoneUser("100", "pw100"), PhoneUser("102", "pw102")],
        database_url=database_url,
    )
    path = config.write()
    carrier = [
        "[tenants.routing]",
        f'dids = [{{ number = "{DID}", treatment = "user", destination = "102" }}]',
        "[[tenants.trunks]]",
        'name = "carrier"',
        'inbound_addresses = ["127.0.0.0/8"]',
        "[[tenants.trunks.gateways]]",
        'host = "127.0.0.1"',
        f"port = {free_port()}",
    ]
    path.write_text(f'provisioning = "{mode}"\n' + path.read_text() + "\n".join(carrier) + "\n")
    return path, config.port


def _provision(url: str, work: Callable[[ProvisioningService], Awaitable[_T]]) -> _T:
    """A change made by another process than the switch (as the admin API or CLI would)."""

    async def run() -> _T:
        async with open_store(url) as store:
            return await work(ProvisioningService(store))

    return asyncio.run(run())


def _carrier_call(port: int, hold_ms: int = 200) -> SippResult:
    return run_sipp(
        "trunk_uac.xml",
        f"127.0.0.1:{port}",
        calls=1,
        rate=1,
        extra=["-s", DID, "-d", str(hold_ms)],
        timeout=60,
    )


def _cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "softswitch.cli", *args, "--config", str(path)],
        cwd="/",  # the database is found from the file, whatever the working directory
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_changes_apply_live_and_a_call_in_progress_stays_up(
    tmp_path: Path, database_url: str
) -> None:
    path, port = _config(tmp_path, database_url)
    with SwitchProcess(path, port=port) as switch:
        phone_102, phone_103 = free_port(), free_port()
        register_endpoint(tmp_path / "sipp", port, "102", "pw102", phone_102)
        # A call to the DID, answered by 102 and held while provisioning changes 20 times.
        answering = BackgroundSipp("call_uas.xml", port, calls=1, local_port=phone_102)
        wait_until_listening()
        held: list[SippResult] = []
        caller = threading.Thread(target=lambda: held.append(_carrier_call(port, 8000)))
        caller.start()
        time.sleep(2)  # the call is set up and answered

        async def twenty_changes(service: ProvisioningService) -> None:
            await service.create(ADMIN, "user", "test", {"extension": "103", "password": "pw103"})
            for i in range(18):
                user = await service.get("user", "test", "100")
                data = {**user.data, "display_name": f"Reception {i}"}
                await service.update(ADMIN, "user", "test", "100", data, user.version)
            number = await service.get("number", "test", DID)
            await service.update(
                ADMIN, "number", "test", DID, {**number.data, "destination": "103"}
            )

        _provision(database_url, twenty_changes)
        time.sleep(APPLIED)
        # The new user registers...
        register_endpoint(tmp_path / "sipp", port, "103", "pw103", phone_103)
        # ...while the held call is still up, and ends normally (BYE answered 200).
        caller.join(60)
        assert held and held[0].ok, held[0].errors if held else "no result"
        assert answering.result().ok
        # The next call to the re-pointed number rings the new user.
        ringing = BackgroundSipp("call_uas.xml", port, calls=1, local_port=phone_103)
        wait_until_listening()
        assert _carrier_call(port).ok
        assert ringing.result().ok
        first, second = wait_cdrs(switch, 2)
        assert (first["disposition"], first["destination"]) == ("ANSWERED", "102")
        assert (second["disposition"], second["destination"]) == ("ANSWERED", "103")

        async def audit(service: ProvisioningService) -> list[Any]:
            return await service.audit(AuditQuery(actor=ADMIN.name, limit=100))

        records = _provision(database_url, audit)
        assert len(records) == 20
        # Every change was made while the first call was up.
        assert all(first["answer"] < _iso(r.at) < first["end"] for r in records)


def _iso(at: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")


def test_file_mode_reload_and_sighup_apply_a_bad_file_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    path, port = _config(tmp_path, database_url, mode="file")
    with SwitchProcess(path, port=port) as switch:
        text = path.read_text()
        with_103 = text + '[[tenants.users]]\nextension = "103"\npassword = "pw103"\n'
        path.write_text(with_103)
        reload = _cli(path, "reload")
        assert reload.returncode == 0, reload.stderr
        assert "create user '103'" in reload.stdout
        time.sleep(APPLIED)
        register_endpoint(tmp_path / "sipp", port, "103", "pw103", free_port())

        # A bad file (a bad extension, and 103 removed) is refused whole.
        path.write_text(text + '[[tenants.users]]\nextension = "10x"\npassword = "pw"\n')
        refused = _cli(path, "reload")
        assert refused.returncode == 2  # a bad configuration
        assert "extension" in refused.stderr

        # API-like writes are refused in file mode.
        async def write(service: ProvisioningService) -> None:
            service.mode = "file"
            await service.create(ADMIN, "user", "test", {"extension": "104", "password": "p"})

        from softswitch.provisioning import ReadOnly

        with pytest.raises(ReadOnly):
            _provision(database_url, write)
        time.sleep(APPLIED)
        register_endpoint(tmp_path / "sipp", port, "103", "pw103", free_port())

        # SIGHUP re-reads the file the switch was started with.
        path.write_text(with_103 + '[[tenants.users]]\nextension = "105"\npassword = "pw105"\n')
        os.kill(switch.pid, signal.SIGHUP)
        time.sleep(APPLIED)
        register_endpoint(tmp_path / "sipp", port, "105", "pw105", free_port())
        assert switch.alive()


def test_two_switches_on_one_postgresql_both_see_a_change(
    tmp_path: Path, pg_schema_dsn: str
) -> None:
    first_path, first_port = _config(tmp_path / "one", pg_schema_dsn)
    second_path, second_port = _config(tmp_path / "two", pg_schema_dsn)
    with (
        SwitchProcess(first_path, port=first_port) as first,
        SwitchProcess(second_path, port=second_port) as second,
    ):

        async def create(service: ProvisioningService) -> None:
            await service.create(ADMIN, "user", "test", {"extension": "103", "password": "pw103"})

        _provision(pg_schema_dsn, create)
        time.sleep(APPLIED)
        for switch in (first, second):
            register_endpoint(
                tmp_path / f"sipp{switch.port}", switch.port, "103", "pw103", free_port()
            )


def test_baresip_registers_as_a_provisioned_user_and_is_called(
    tmp_path: Path, database_url: str
) -> None:
    from peers.baresip import BaresipPhone
    from tests.integration.audiokit import tone

    path, port = _config(tmp_path, database_url)
    with SwitchProcess(path, port=port) as switch:

        async def provision(service: ProvisioningService) -> None:
            await service.create(ADMIN, "user", "test", {"extension": "103", "password": "pw103"})
            number = await service.get("number", "test", DID)
            await service.update(
                ADMIN, "number", "test", DID, {**number.data, "destination": "103"}
            )

        _provision(database_url, provision)
        time.sleep(APPLIED)
        account = f"<sip:103@127.0.0.1:{port}>;auth_pass=pw103;regint=120;answermode=auto"
        source = tone(tmp_path / "440.wav", 440.0)
        with BaresipPhone(tmp_path / "phone", account, audio_source=source) as phone:
            deadline = time.monotonic() + 15
            while not any(r["aor"] == "sip:103@pbx.test" for r in switch.registrations()):
                assert time.monotonic() < deadline, phone.output()
                time.sleep(0.2)
            assert _carrier_call(port, 1000).ok
            (cdr,) = wait_cdrs(switch, 1)
            assert (cdr["disposition"], cdr["destination"]) == ("ANSWERED", "103")
