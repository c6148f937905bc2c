"""Bindings survive `kill -TERM` and a restart, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from peers.sipp import run_sipp, user_rows, write_users
from peers.switchproc import SwitchConfigFile, SwitchProcess, free_port, numbered_users

pytestmark = pytest.mark.integration

USERS = 200


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'restart.db'}"
    return str(request.getfixturevalue("pg_schema_dsn"))


def test_bindings_survive_sigterm_and_restart(tmp_path: Path, database_url: str) -> None:
    config = SwitchConfigFile(
        tmp_path / "switch", users=numbered_users(USERS), database_url=database_url
    )
    path = config.write()
    users = write_users(
        tmp_path / "users.csv",
        user_rows((u.extension, config.domain, u.password) for u in config.users),
    )
    phone_port = free_port()
    first = SwitchProcess(path, port=config.port).start()
    try:
        result = run_sipp(
            "register.xml",
            f"127.0.0.1:{config.port}",
            calls=USERS,
            rate=400,
            injection=users,
            keys={"c1": "1", "c2": "2", "expires": "3600"},
            call_id="restart%u@%s",
            local_port=phone_port,
        )
        assert result.ok, result.errors
        # Stop right away: whatever is still queued for the store must be flushed on SIGTERM.
        assert first.stop() == 0
    finally:
        first.kill()

    second = SwitchProcess(path, port=config.port).start()
    try:
        rows = second.registrations()
        assert {r["aor"] for r in rows} == {
            f"sip:{u.extension}@{config.domain}" for u in config.users
        }
        assert all(3500 < int(str(r["expires_in"])) <= 3600 for r in rows)
        assert "bindings_restored=200" in (tmp_path / "switch" / "switch.log").read_text()
        # The restored bindings are live: re-registering the same contacts updates them in
        # place (same Call-ID, higher CSeq) rather than adding new ones.
        result = run_sipp(
            "register.xml",
            f"127.0.0.1:{config.port}",
            calls=USERS,
            rate=400,
            injection=users,
            keys={"c1": "3", "c2": "4", "expires": "600"},
            call_id="restart%u@%s",
            local_port=phone_port,
        )
        assert result.ok, result.errors
        rows = second.wait_registrations(
            lambda rows: all(int(str(r["expires_in"])) <= 600 for r in rows)
        )
        assert len(rows) == USERS
    finally:
        second.stop()
