"""SIPp, a real external peer, registers 1,000 users with digest auth against a switch process."""

from __future__ import annotations

from pathlib import Path

import pytest

from peers.sipp import run_sipp, user_rows, write_users
from peers.switchproc import SwitchConfigFile, SwitchProcess, free_port, numbered_users

pytestmark = pytest.mark.integration

USERS = 1000
RATE = 500


def _aors(rows: list[dict[str, object]]) -> set[str]:
    return {str(r["aor"]) for r in rows}


@pytest.fixture
def switch_factory(tmp_path: Path):
    started: list[SwitchProcess] = []

    def start(**options: object) -> tuple[SwitchProcess, SwitchConfigFile]:
        config = SwitchConfigFile(tmp_path / "switch", users=numbered_users(USERS), **options)
        process = SwitchProcess(config.write(), port=config.port).start()
        started.append(process)
        return process, config

    yield start
    for process in started:
        process.stop()


@pytest.mark.parametrize(("algorithm", "transport"), [("MD5", "udp"), ("MD5", "tcp")])
def test_sipp_registers_reregisters_and_unregisters_1000_users(
    switch_factory, tmp_path: Path, algorithm: str, transport: str
) -> None:
    switch, config = switch_factory(algorithms=[algorithm])
    target = f"127.0.0.1:{config.port}"
    phone_port = free_port()  # one "phone" port for every run, as a phone keeps its Contact
    users = write_users(
        tmp_path / "users.csv",
        user_rows((u.extension, config.domain, u.password) for u in config.users),
    )

    def register(scenario: str, cid: str, **keys: str):
        result = run_sipp(
            scenario,
            target,
            calls=USERS,
            rate=RATE,
            limit=200,
            transport=transport,
            injection=users,
            keys=keys,
            timeout=120,
            local_port=phone_port,
            call_id=f"reg%u-{cid}@%s",
        )
        assert result.ok, f"{scenario}: {result.failed} failed\n{result.errors}\n{switch.log()}"
        assert result.successful == USERS
        return result

    register("register.xml", cid="a", c1="1", c2="2", expires="3600")
    rows = switch.wait_registrations(lambda rows: len(rows) == USERS)
    assert _aors(rows) == {f"sip:{u.extension}@{config.domain}" for u in config.users}
    assert all(str(r["transport"]) == transport.upper() for r in rows)

    # Re-register (same Call-ID, higher CSeq, shorter expiry): still one binding per user.
    register("register.xml", cid="a", c1="3", c2="4", expires="1800")
    rows = switch.wait_registrations(
        lambda rows: all(int(str(r["expires_in"])) <= 1800 for r in rows)
    )
    assert len(rows) == USERS
    assert all(int(str(r["expires_in"])) <= 1800 for r in rows)

    # Unregister with Expires: 0.
    register("register.xml", cid="a", c1="5", c2="6", expires="0")
    assert switch.wait_registrations(lambda rows: not rows) == []

    # Register again and remove everything with Contact: *.
    register("register.xml", cid="b", c1="1", c2="2", expires="3600")
    assert len(switch.wait_registrations(lambda rows: len(rows) == USERS)) == USERS
    register("unregister_all.xml", cid="b", c1="3", c2="4")
    assert switch.wait_registrations(lambda rows: not rows) == []
    assert switch.alive()


def test_sipp_wrong_password_gets_403_and_no_binding(switch_factory, tmp_path: Path) -> None:
    switch, config = switch_factory(algorithms=["MD5"])
    users = write_users(
        tmp_path / "wrong.csv",
        user_rows((u.extension, config.domain, "not-" + u.password) for u in config.users[:50]),
    )
    result = run_sipp(
        "register_wrong_password.xml",
        f"127.0.0.1:{config.port}",
        calls=50,
        rate=100,
        injection=users,
        keys={"c1": "1", "c2": "2"},
    )
    assert result.ok, result.errors
    # An unknown user is refused the same way, indistinguishable from a wrong password.
    unknown = write_users(tmp_path / "unknown.csv", user_rows([("99999", config.domain, "x")]))
    result = run_sipp(
        "register_wrong_password.xml",
        f"127.0.0.1:{config.port}",
        calls=1,
        rate=10,
        injection=unknown,
        keys={"c1": "1", "c2": "2"},
    )
    assert result.ok, result.errors
    assert switch.registrations() == []
