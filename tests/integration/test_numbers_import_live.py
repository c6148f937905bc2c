"""`softswitch numbers import --apply` against a running switch in database mode, on SQLite
and PostgreSQL: the imported number routes the next SIPp carrier call to its user without a
restart, and the configuration file is left as it was."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    register_endpoint,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

IMPORTED = "+14155550177"
APPLIED = 1.0  # the promise: a change reaches new calls within a second


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'switch.db'}"
    return str(request.getfixturevalue("pg_schema_dsn"))


def test_imported_number_routes_the_next_call(tmp_path: Path, database_url: str) -> None:
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=[PhoneUser("100", "pw100"), PhoneUser("102", "pw102")],
        database_url=database_url,
    )
    path = config.write()
    carrier = [
        "[[tenants.trunks]]",
        'name = "carrier"',
        'inbound_addresses = ["127.0.0.0/8"]',
        "[[tenants.trunks.gateways]]",
        'host = "127.0.0.1"',
        f"port = {free_port()}",
    ]
    path.write_text(path.read_text() + "\n".join(carrier) + "\n")
    original = path.read_bytes()
    (tmp_path / "dids.csv").write_text(
        f"number,treatment,destination,caller_id_prefix,notes\n{IMPORTED},user,102,,sales\n"
    )
    with SwitchProcess(path, port=config.port) as switch:
        phone = free_port()
        register_endpoint(tmp_path / "sipp", config.port, "102", "pw102", phone)
        imported = subprocess.run(
            [
                sys.executable,
                "-m",
                "softswitch.cli",
                "numbers",
                "import",
                "dids.csv",
                "--apply",
                "--config",
                str(path),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert imported.returncode == 0, imported.stdout + imported.stderr
        assert "1 DID(s) added to the database" in imported.stdout
        time.sleep(APPLIED)
        answering = BackgroundSipp("call_uas.xml", config.port, calls=1, local_port=phone)
        wait_until_listening()
        call = run_sipp(
            "trunk_uac.xml",
            f"127.0.0.1:{config.port}",
            calls=1,
            rate=1,
            extra=["-s", IMPORTED, "-d", "200"],
            timeout=60,
        )
        assert call.ok, call.errors
        assert answering.result().ok
        (cdr,) = wait_cdrs(switch, 1)
        assert (cdr["disposition"], cdr["destination"]) == ("ANSWERED", "102")
    assert path.read_bytes() == original
