"""Attended transfer between three real phones (pjsua2, peers.pjsua_phones), tones checked by
FFT: A (100, 500 Hz) calls B (101, 700 Hz); B puts A on hold and calls C (102, 1100 Hz);
after talking with C, B transfers A to C (REFER with Replaces, pjsip's xferReplaces).
B is released (its transfer reported 200, both its calls hung up), A and C end talking to
each other (each hears the other's tone), and the CDRs of the three calls tell the story.
Once with media anchored by the switch, once passing through (RFC 3725 re-INVITEs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.pjsua_phones import CallState, PhoneWorker
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess
from tests.integration.audiokit import dominant, growing, tone
from tests.integration.callkit import wait_cdrs

pytestmark = pytest.mark.integration

A, B, C = "100", "101", "102"
TONES = {A: 500.0, B: 700.0, C: 1100.0}
USERS = [PhoneUser(ext, f"pw{ext}") for ext in (A, B, C)]
DOMAIN = "pbx.test"


@pytest.fixture(params=["always", "never"], ids=["anchored", "pass-through"])
def phones(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SwitchProcess, PhoneWorker]]:
    config = SwitchConfigFile(tmp_path / "switch", users=USERS, media_anchor=request.param)
    with SwitchProcess(config.write(), port=config.port) as switch:
        worker = PhoneWorker(tmp_path / "phones").start()
        try:
            users = [
                (u.extension, u.password, tone(tmp_path / f"{u.extension}.wav", TONES[u.extension]))
                for u in USERS
            ]
            outcomes = worker.register(users, f"127.0.0.1:{switch.port}", DOMAIN)
            assert all(o["code"] == 200 for o in outcomes), outcomes
            yield switch, worker
        finally:
            worker.close()


def _one(calls: dict[int, CallState], phone: str, incoming: bool) -> CallState | None:
    found = [c for c in calls.values() if c.phone == phone and c.incoming is incoming]
    return found[-1] if found else None


def talking(call: int) -> object:
    return lambda calls: calls[call].state == "confirmed" and calls[call].media


def answer_incoming(worker: PhoneWorker, phone: str) -> int:
    calls = worker.wait(f"{phone} rings", lambda cs: _one(cs, phone, True) is not None)
    ringing = _one(calls, phone, True)
    assert ringing is not None
    worker.answer(ringing.number)
    return ringing.number


def heard(path: str, last: float) -> float:
    """The dominant frequency of the last ``last`` seconds recorded so far."""
    samples = growing(Path(path))
    assert len(samples) > 8000 * last, f"{path}: {len(samples)} samples"
    return dominant(samples[-int(8000 * last) :])


def test_transferee_ends_talking_to_the_target(
    phones: tuple[SwitchProcess, PhoneWorker],
) -> None:
    switch, worker = phones
    a1 = worker.call(A, f"sip:{B}@{DOMAIN}")
    b1 = answer_incoming(worker, B)
    worker.wait("A and B talk", lambda cs: talking(a1)(cs) and talking(b1)(cs))  # type: ignore[operator]
    worker.hold(b1)
    b2 = worker.call(B, f"sip:{C}@{DOMAIN}")
    c2 = answer_incoming(worker, C)
    worker.wait("B and C talk", lambda cs: talking(b2)(cs) and talking(c2)(cs))  # type: ignore[operator]
    time_for_audio(worker, 1.5)
    assert heard(worker.calls()[c2].recording, 1.0) == pytest.approx(TONES[B], abs=20)
    worker.transfer(b1, b2)
    # B is done: its transfer succeeded and the switch hung up both of its calls.
    calls = worker.wait(
        "B released",
        lambda cs: cs[b1].state == "disconnected" and cs[b2].state == "disconnected",
    )
    assert calls[b1].transfer_status == 200
    # A and C are still up, now with each other.
    assert calls[a1].state == "confirmed" and calls[c2].state == "confirmed"
    worker.wait("A and C have media", lambda cs: cs[a1].media and cs[c2].media)
    time_for_audio(worker, 2.5)
    calls = worker.calls()
    assert heard(calls[a1].recording, 1.5) == pytest.approx(TONES[C], abs=20)
    assert heard(calls[c2].recording, 1.5) == pytest.approx(TONES[A], abs=20)
    worker.hangup(a1)
    worker.wait("C hung up", lambda cs: cs[c2].state == "disconnected")
    rows = wait_cdrs(switch, 3)
    assert len(rows) == 3, rows
    transfers = [leg["transfer"] for r in rows for leg in r["legs"] if leg.get("transfer")]
    assert transfers and all(t["kind"] == "attended" and t["by"] == B for t in transfers)
    joined = next(r for r in rows if r["caller_number"] == A and r["destination"] == C)
    assert joined["disposition"] == "ANSWERED"


def time_for_audio(worker: PhoneWorker, seconds: float) -> None:
    """Let the phones talk ``seconds`` (calls() keeps polling the worker meanwhile)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        worker.calls()
        time.sleep(0.1)
