"""pjsip (pjsua2), a real external SIP stack, registers with SHA-256 digest (RFC 7616/8760).

SIPp and baresip only do MD5; pjsip 2.15 answers SHA-256 challenges. pjsua runs in a worker
process (`peers.pjsua`), at most MAX_ACCOUNTS accounts per endpoint lifetime, so a hundred
users take many lifetimes one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from peers.pjsua import MAX_ACCOUNTS, PjsuaWorker, RegistrationOutcome
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, numbered_users

pytestmark = pytest.mark.integration

ROUNDS = 13  # endpoint lifetimes: 13 x 8 = 104 distinct users
USERS = ROUNDS * MAX_ACCOUNTS
USER_AGENT = "pjsua2-python bench"

SwitchFactory = Callable[..., tuple[SwitchProcess, SwitchConfigFile]]


def _aors(rows: list[dict[str, object]]) -> set[str]:
    return {str(r["aor"]) for r in rows}


def _aor(config: SwitchConfigFile, user: PhoneUser) -> str:
    return f"sip:{user.extension}@{config.domain}"


def _all_bound(aors: set[str]) -> Callable[[list[dict[str, object]]], bool]:
    return lambda rows: aors <= _aors(rows)


def _none_bound(aors: set[str]) -> Callable[[list[dict[str, object]]], bool]:
    return lambda rows: not aors & _aors(rows)


@pytest.fixture
def switch_factory(tmp_path: Path) -> Iterator[SwitchFactory]:
    started: list[SwitchProcess] = []

    def start(**options: object) -> tuple[SwitchProcess, SwitchConfigFile]:
        config = SwitchConfigFile(tmp_path / "switch", users=numbered_users(USERS), **options)  # type: ignore[arg-type]
        process = SwitchProcess(config.write(), port=config.port).start()
        started.append(process)
        return process, config

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[PjsuaWorker]:
    with PjsuaWorker(stderr_path=tmp_path / "pjsua.err") as running:
        yield running


def _register(
    worker: PjsuaWorker,
    config: SwitchConfigFile,
    users: Sequence[PhoneUser],
    transport: str = "udp",
    passwords: dict[str, str] | None = None,
) -> dict[str, RegistrationOutcome]:
    pairs = [(u.extension, (passwords or {}).get(u.extension, u.password)) for u in users]
    outcomes = worker.register(
        pairs, f"127.0.0.1:{config.port}", domain=config.domain, transport=transport
    )
    return {o.username: o for o in outcomes}


def test_pjsua2_registers_and_unregisters_104_users_with_sha256_only(
    switch_factory: SwitchFactory, worker: PjsuaWorker
) -> None:
    # The switch offers SHA-256 only and refuses any other algorithm, so every 200 below is
    # a SHA-256 digest that pjsip computed and the switch verified.
    switch, config = switch_factory(algorithms=["SHA-256"])
    registered: set[str] = set()
    for index in range(ROUNDS):
        batch = config.users[index * MAX_ACCOUNTS : (index + 1) * MAX_ACCOUNTS]
        batch_aors = {_aor(config, u) for u in batch}
        transport = ("udp", "tcp")[index % 2]

        outcomes = _register(worker, config, batch, transport)
        assert {o.code for o in outcomes.values()} == {200}, (outcomes, switch.log())
        assert all(o.active and o.expires > 0 for o in outcomes.values())
        assert {o.aor for o in outcomes.values()} == batch_aors

        rows = switch.wait_registrations(_all_bound(batch_aors))
        mine = [r for r in rows if r["aor"] in batch_aors]
        assert _aors(mine) == batch_aors
        assert len(mine) == len(batch)  # one binding each
        assert all(r["transport"] == transport.upper() for r in mine)
        assert all(r["user_agent"] == USER_AGENT for r in mine)
        registered |= _aors(mine)

        report = worker.unregister()
        assert {o.code for o in report.outcomes} == {200}
        assert not any(o.active for o in report.outcomes)
        assert report.offered_algorithms() == {"SHA-256"}
        assert report.sent_algorithms() == {u.extension: {"SHA-256"} for u in batch}
        rows = switch.wait_registrations(_none_bound(batch_aors))
        assert not batch_aors & _aors(rows)

    assert len(registered) == USERS
    assert switch.registrations() == []
    assert "registration_denied" not in (config.directory / "switch.log").read_text()
    assert switch.alive()


def test_pjsua2_wrong_password_gets_no_binding(
    switch_factory: SwitchFactory, worker: PjsuaWorker
) -> None:
    switch, config = switch_factory(algorithms=["SHA-256"])
    good, bad = config.users[0], config.users[1]
    outcomes = _register(worker, config, [good, bad], passwords={bad.extension: "wrong"})
    assert outcomes[good.extension].code == 200
    assert outcomes[bad.extension].code in (401, 403)
    assert not outcomes[bad.extension].active

    rows = switch.wait_registrations(lambda rows: _aor(config, good) in _aors(rows))
    assert _aors(rows) == {_aor(config, good)}
    log = (config.directory / "switch.log").read_text()
    assert "registration_denied" in log and f"username={bad.extension}" in log

    report = worker.unregister()
    # The refused account did answer the SHA-256 challenge: it failed on the password.
    assert report.sent_algorithms()[bad.extension] == {"SHA-256"}
    assert switch.wait_registrations(lambda rows: not rows) == []


@pytest.mark.parametrize(
    ("algorithms", "expected"),
    [(["SHA-256", "MD5"], "SHA-256"), (["MD5", "SHA-256"], "SHA-256"), (["MD5"], "MD5")],
)
def test_pjsua2_answers_the_strongest_offered_algorithm(
    switch_factory: SwitchFactory, worker: PjsuaWorker, algorithms: list[str], expected: str
) -> None:
    # Offered both, pjsip must pick SHA-256 (RFC 8760 2.4); MD5 alone shows the log check
    # tells the algorithms apart.
    switch, config = switch_factory(algorithms=algorithms)
    batch = config.users[:MAX_ACCOUNTS]
    outcomes = _register(worker, config, batch)
    assert {o.code for o in outcomes.values()} == {200}, (outcomes, switch.log())
    rows = switch.wait_registrations(lambda rows: len(rows) == len(batch))
    assert _aors(rows) == {_aor(config, u) for u in batch}

    report = worker.unregister()
    assert report.offered_algorithms() == set(algorithms)
    assert report.sent_algorithms() == {u.extension: {expected} for u in batch}
    assert switch.wait_registrations(lambda rows: not rows) == []
