"""Queue callback and position announcements with real peers: a baresip caller waiting
in a queue hears its position announced (speech over the ringback, found by FFT), presses
the callback key and is hung up; a SIPp caller who arrives later does not overtake them:
when the agent (baresip) is free the switch calls the first caller back, and once they
answer offers them to the agent, whose voice (a 1 kHz tone) they then hear."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from peers.baresip import BaresipPhone
from peers.sipp import SippResult
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from storage.queue_events import QueueEvent
from tests.integration.audiokit import channel, dominant, tone, windows
from tests.integration.callkit import append_lines, trunk_lines
from tests.integration.ivrkit import call_with_keys
from tests.integration.queuekit import load_events
from tests.unit.clikit import run

pytestmark = pytest.mark.integration

DID = "+14155550220"
RINGBACK = (440.0, 480.0)


def _lines() -> list[str]:
    return [
        *trunk_lines("carrier", [free_port()], inbound_addresses=["127.0.0.0/8"]),
        "[[tenants.queues]]",
        'name = "desk"',
        'extension = "8200"',
        'strategy = "linear_hunt"',
        'audio = "ringback"',
        "agent_ring_timeout = 10",
        "announce_every = 10",
        'callback_key = "5"',
        "callback_attempts = 1",
        'agents = [{ extension = "101" }]',
        "[tenants.routing]",
        f'dids = [{{ number = "{DID}", treatment = "queue", destination = "8200" }}]',
    ]


@dataclass
class Desk:
    switch: SwitchProcess
    database: str
    work: Path
    agent: BaresipPhone
    caller: BaresipPhone


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp("desk")
    users = [PhoneUser("101", "pw101", "Agent"), PhoneUser("104", "pw104", "Caller")]
    config = SwitchConfigFile(tmp / "switch", users=users)
    path = append_lines(config.write(), _lines())
    database = f"sqlite:///{config.directory / 'switch.db'}"
    with SwitchProcess(path, port=config.port) as switch:
        port = config.port
        with (
            BaresipPhone(
                tmp / "p101",
                f"<sip:101@127.0.0.1:{port}>;auth_pass=pw101;regint=600;answermode=auto",
                audio_source=tone(tmp / "1000.wav", 1000.0, seconds=60),
            ) as agent,
            BaresipPhone(
                tmp / "p104",
                f"<sip:104@127.0.0.1:{port}>;auth_pass=pw104;regint=600;answermode=auto",
                audio_source=tone(tmp / "700.wav", 700.0, seconds=60),
            ) as caller,
        ):
            rows = switch.wait_registrations(lambda rows: len(rows) == 2, timeout=20)
            assert len(rows) == 2, agent.output() + caller.output()
            done = run("queues", "agent", "login", "101", "--config", str(path), cwd=tmp)
            assert done.returncode == 0, done.stderr
            time.sleep(2.5)  # the switch follows the CLI's status changes within 2 s
            yield Desk(switch, database, tmp, agent, caller)


def _carrier(desk: Desk, name: str, hold_ms: int) -> tuple[threading.Thread, list[SippResult]]:
    out: list[SippResult] = []

    def go() -> None:
        out.append(call_with_keys(desk.work / name, desk.switch.port, DID, [("pause", hold_ms)]))

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, out


def _wait(desk: Desk, check: object, timeout: float) -> list[QueueEvent]:
    deadline = time.monotonic() + timeout
    events = load_events(desk.database)
    while not check(events) and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.3)
        events = load_events(desk.database)
    seen = [(e.event, e.call_id[:8], e.agent, e.reason) for e in events]
    assert check(events), seen  # type: ignore[operator]
    return events


def _speech_windows(path: Path) -> int:
    """Half-second windows of the recording that are loud and neither ringback nor
    silence: the spoken announcement."""
    samples = channel(path, skip=0.0)
    found = 0
    for start in range(0, len(samples) - 4000, 4000):
        window = samples[start : start + 4000]
        if np.sqrt(np.mean(window.astype(np.float64) ** 2)) < 300:
            continue
        if all(abs(dominant(window) - f) > 30 for f in RINGBACK):
            found += 1
    return found


def test_a_caller_called_back_keeps_their_place(desk: Desk) -> None:
    # The agent talks to a first caller for 22 s.
    first, first_result = _carrier(desk, "first", 22000)
    _wait(desk, lambda evs: any(e.event == "answered" for e in evs), 15)

    # Our caller waits, hears their position (after 10 s), asks for a callback (key 5).
    desk.caller.command("dial", f"sip:8200@127.0.0.1:{desk.switch.port}")
    desk.caller.wait_event("CALL_ESTABLISHED", timeout=10)
    time.sleep(14)
    # baresip holds a burst's last key until the next starts: 5 arrives as # starts.
    desk.caller.send_dtmf("5#")
    desk.caller.wait_event("CALL_CLOSED", timeout=15)  # the switch hung up after the notice
    events = _wait(
        desk, lambda evs: any(e.event == "exited" and e.reason == "callback" for e in evs), 10
    )
    (ours,) = [e.call_id for e in events if e.event == "exited" and e.reason == "callback"]

    # A later caller arrives while the agent still talks: they must wait behind ours.
    later, later_result = _carrier(desk, "later", 14000)

    # The agent frees up: our caller is called back (baresip answers), then offered.
    desk.caller.wait_event("CALL_ESTABLISHED", timeout=30)
    events = _wait(
        desk,
        lambda evs: any(e.event == "answered" and e.call_id == ours for e in evs),
        20,
    )
    time.sleep(3)  # talk to the agent
    desk.caller.command("hangup")
    desk.caller.wait_event("CALL_CLOSED", timeout=10)
    for thread in (first, later):
        thread.join(timeout=40)
    assert first_result and first_result[0].ok and later_result and later_result[0].ok
    events = load_events(desk.database)

    story = [(e.event, e.reason) for e in events if e.call_id == ours]
    assert story[:2] == [("entered", ""), ("exited", "callback")], story
    assert ("callback", "calling") in story and ("callback", "answered") in story
    assert story.index(("entered", "callback")) < story.index(("answered", "")), story
    answered = next(e for e in events if e.event == "answered" and e.call_id == ours)
    assert answered.agent == "101"
    # Nobody who came later was offered the agent before our caller.
    asked = next(e.at for e in events if e.event == "exited" and e.call_id == ours)
    later_ids = {e.call_id for e in events if e.event == "entered" and e.at > asked} - {ours}
    assert later_ids
    assert all(
        e.at >= answered.at for e in events if e.event == "offered" and e.call_id in later_ids
    )

    # What our caller heard: the first call had the announcement spoken over the ringback,
    # the call back the agent's 1 kHz tone.
    time.sleep(1)  # baresip completes the recording's header
    recordings = sorted((desk.caller.directory / "rec").glob("dump-*-dec.wav"))
    assert len(recordings) >= 2, recordings
    assert _speech_windows(recordings[0]) >= 2
    heard = windows(channel(recordings[-1]))
    assert any(abs(f - 1000.0) < 20 for f in heard), heard
