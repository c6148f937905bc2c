"""Conference bridges and live-call monitoring through the switch with baresip phones, each
playing its own tone; what each phone heard is read back from its decoded-audio dump.

Every test runs twice: media in the switch process, and in two media worker processes
(``--media-workers 2``, where the phones' legs land on both workers)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess
from tests.integration.audiokit import heard, level, stretch, tone

pytestmark = pytest.mark.integration

HEARD = 0.2  # a tone at least this strong (vs the loudest) is heard
ABSENT = 0.05  # and below this it is not

MODES = {"in-process": (), "2 workers": ("--media-workers", "2")}


@pytest.fixture(params=list(MODES))
def media_args(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The switch's command-line arguments for the media mode under test."""
    return MODES[request.param]


@dataclass
class Party:
    """A baresip phone in a call, with when its call was established (its dump's t=0)."""

    phone: BaresipPhone
    directory: Path
    frequency: float
    started: float = 0.0

    def levels(self, start: float, end: float, *freqs: float) -> dict[float, float]:
        """How strongly each frequency sounded to this phone between two wall-clock times
        (time.monotonic), after the phone has stopped and written its dump."""
        piece = stretch(heard(self.directory), start - self.started, end - self.started)
        return {f: round(level(piece, f), 3) for f in freqs}


@contextlib.contextmanager
def _parties(tmp_path: Path, port: int, users: list[tuple[str, float]]) -> Iterator[list[Party]]:
    with contextlib.ExitStack() as stack:
        parties = []
        for ext, frequency in users:
            directory = tmp_path / f"p{ext}"
            phone = stack.enter_context(
                BaresipPhone(
                    directory,
                    f"<sip:{ext}@127.0.0.1:{port}>;auth_pass=pw{ext};regint=120;answermode=auto",
                    audio_source=tone(tmp_path / f"{int(frequency)}.wav", frequency, 60.0),
                )
            )
            parties.append(Party(phone, directory, frequency))
        yield parties


def _dial(party: Party, port: int, number: str) -> None:
    party.phone.command("dial", f"sip:{number}@127.0.0.1:{port}")
    party.phone.wait_event("CALL_ESTABLISHED", timeout=15)
    party.started = time.monotonic()


def _hang_up(*parties: Party) -> None:
    for party in parties:
        party.phone.command("hangup")
    for party in parties:
        with contextlib.suppress(TimeoutError):
            party.phone.wait_event("CALL_CLOSED", timeout=10)


def _switch(
    tmp_path: Path, users: list[PhoneUser], media_args: tuple[str, ...], tenant_toml: str = ""
) -> SwitchProcess:
    config = SwitchConfigFile(tmp_path / "switch", users=users, tenant_toml=tenant_toml)
    return SwitchProcess(config.write(), port=config.port, extra_args=media_args)


BRIDGE = """[[tenants.conferences]]
name = "Team"
extension = "800"
"""


def test_three_callers_hear_each_other_but_not_themselves_and_mute_works(
    tmp_path: Path, media_args: tuple[str, ...]
) -> None:
    users = [PhoneUser(e, f"pw{e}") for e in ("100", "101", "102")]
    tones = [("100", 500.0), ("101", 700.0), ("102", 900.0)]
    with (
        _switch(tmp_path, users, media_args, BRIDGE) as switch,
        _parties(tmp_path, switch.port, tones) as parties,
    ):
        switch.wait_registrations(lambda rows: len(rows) == 3, timeout=20)
        for party in parties:
            _dial(party, switch.port, "800")
        time.sleep(1.0)
        talking = (time.monotonic(), time.monotonic() + 3.0)
        time.sleep(3.5)
        parties[0].phone.command("sndcode", "0")  # 500 Hz mutes itself (0: mute toggle)
        time.sleep(1.5)
        muted = (time.monotonic(), time.monotonic() + 2.5)
        time.sleep(3.0)
        _hang_up(*parties)
    freqs = [p.frequency for p in parties]
    for party in parties:
        heard_ = party.levels(*talking, *freqs)
        others = [f for f in freqs if f != party.frequency]
        assert all(heard_[f] > HEARD for f in others), (party.frequency, heard_)
        assert heard_[party.frequency] < ABSENT, (party.frequency, heard_)
    for party in parties[1:]:
        after = party.levels(*muted, *freqs)
        assert after[500.0] < ABSENT, (party.frequency, after)  # the muted caller is gone
        other = next(f for f in freqs[1:] if f != party.frequency)
        assert after[other] > HEARD, (party.frequency, after)
    log = switch.log()
    assert "conference" in log


def test_first_caller_hears_music_until_the_minimum_is_reached(
    tmp_path: Path, media_args: tuple[str, ...]
) -> None:
    users = [PhoneUser(e, f"pw{e}") for e in ("100", "101")]
    bridge = BRIDGE + "min_participants = 2\n"
    with (
        _switch(tmp_path, users, media_args, bridge) as switch,
        _parties(tmp_path, switch.port, [("100", 500.0), ("101", 700.0)]) as (a, b),
    ):
        switch.wait_registrations(lambda rows: len(rows) == 2, timeout=20)
        _dial(a, switch.port, "800")
        time.sleep(1.0)
        alone = (time.monotonic(), time.monotonic() + 2.5)
        time.sleep(3.0)
        _dial(b, switch.port, "800")
        time.sleep(1.0)
        together = (time.monotonic(), time.monotonic() + 2.5)
        time.sleep(3.0)
        _hang_up(a, b)
    waiting = stretch(heard(a.directory), alone[0] - a.started, alone[1] - a.started)
    assert abs(waiting).max() > 1000  # music, not silence
    assert a.levels(*alone, 700.0)[700.0] < ABSENT
    assert a.levels(*together, 700.0)[700.0] > HEARD  # the conference runs: B is heard


def test_pins_wrong_pin_refused_and_leader_starts_the_conference(
    tmp_path: Path, media_args: tuple[str, ...]
) -> None:
    users = [PhoneUser(e, f"pw{e}") for e in ("100", "101", "102")]
    bridge = BRIDGE + ('leader_pin = "1234"\nparticipant_pin = "5678"\nrequire_leader = true\n')
    tones = [("100", 500.0), ("101", 700.0), ("102", 900.0)]
    with (
        _switch(tmp_path, users, media_args, bridge) as switch,
        _parties(tmp_path, switch.port, tones) as (intruder, member, leader),
    ):
        switch.wait_registrations(lambda rows: len(rows) == 3, timeout=20)
        _dial(intruder, switch.port, "800")
        for _ in range(3):
            time.sleep(1.5)
            intruder.phone.command("sndcode", "999#")
        intruder.phone.wait_event("CALL_CLOSED", timeout=20)  # refused after three tries
        _dial(member, switch.port, "800")
        time.sleep(1.5)
        member.phone.command("sndcode", "5678#")
        time.sleep(2.5)
        waiting = (time.monotonic(), time.monotonic() + 2.0)
        time.sleep(2.5)
        _dial(leader, switch.port, "800")
        time.sleep(1.5)
        leader.phone.command("sndcode", "1234#")
        time.sleep(2.5)
        running = (time.monotonic(), time.monotonic() + 2.5)
        time.sleep(3.0)
        _hang_up(member, leader)
    assert member.levels(*waiting, 900.0)[900.0] < ABSENT  # no leader yet: music only
    assert member.levels(*running, 900.0)[900.0] > HEARD
    assert leader.levels(*running, 700.0)[700.0] > HEARD


def test_supervisor_listens_whispers_and_barges_in_one_call(
    tmp_path: Path, media_args: tuple[str, ...]
) -> None:
    """X (caller, 500 Hz) talks to agent Y (101, 700 Hz); supervisor Z (102, 900 Hz) dials
    *51101 (listen), then presses 2 (whisper), 3 (barge) and 1 (listen again)."""
    users = [
        PhoneUser("100", "pw100"),
        PhoneUser("101", "pw101"),
        PhoneUser("102", "pw102", extra_toml="can_monitor = true"),
    ]
    tones = [("100", 500.0), ("101", 700.0), ("102", 900.0)]
    with (
        _switch(tmp_path, users, media_args) as switch,
        _parties(tmp_path, switch.port, tones) as (caller, agent, supervisor),
    ):
        switch.wait_registrations(lambda rows: len(rows) == 3, timeout=20)
        _dial(caller, switch.port, "101")
        agent.phone.wait_event("CALL_ESTABLISHED", timeout=15)
        agent.started = time.monotonic()
        time.sleep(1.0)
        _dial(supervisor, switch.port, "*51101")
        phases: dict[str, tuple[float, float]] = {}
        for name, key in (
            ("listen", None),
            ("whisper", "2"),
            ("barge", "3"),
            ("listen again", "1"),
        ):
            if key is not None:
                supervisor.phone.command("sndcode", key)
            time.sleep(1.5)
            phases[name] = (time.monotonic(), time.monotonic() + 2.0)
            time.sleep(2.5)
        _hang_up(supervisor, caller)
    z = 900.0
    # listen: the supervisor hears both, nobody hears the supervisor
    assert all(v > HEARD for v in supervisor.levels(*phases["listen"], 500.0, 700.0).values())
    for name in ("listen", "listen again"):
        assert caller.levels(*phases[name], z)[z] < ABSENT, name
        assert agent.levels(*phases[name], z)[z] < ABSENT, name
    # whisper: the agent hears the supervisor, the caller does not
    assert agent.levels(*phases["whisper"], z)[z] > HEARD
    assert caller.levels(*phases["whisper"], z)[z] < ABSENT
    # barge: everybody hears everybody
    assert agent.levels(*phases["barge"], z)[z] > HEARD
    assert caller.levels(*phases["barge"], z)[z] > HEARD
    # the call itself went on throughout
    assert caller.levels(*phases["listen again"], 700.0)[700.0] > HEARD


def test_monitoring_needs_the_permission(tmp_path: Path, media_args: tuple[str, ...]) -> None:
    users = [PhoneUser(e, f"pw{e}") for e in ("100", "101", "102")]
    tones = [("100", 500.0), ("101", 700.0), ("102", 900.0)]
    with (
        _switch(tmp_path, users, media_args) as switch,
        _parties(tmp_path, switch.port, tones) as (caller, agent, intruder),
    ):
        switch.wait_registrations(lambda rows: len(rows) == 3, timeout=20)
        _dial(caller, switch.port, "101")
        agent.phone.wait_event("CALL_ESTABLISHED", timeout=15)
        intruder.phone.command("dial", f"sip:*51101@127.0.0.1:{switch.port}")
        intruder.phone.wait_event("CALL_CLOSED", timeout=15)
        _hang_up(caller)
    assert "monitor_denied" in switch.log()
