"""Keys typed ahead of the prompts (apps/session.py): a key pressed while a prompt is
prepared or before it plays ends it and stays queued, keys keep the order pressed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from media.dtmf import Digit
from softswitch.apps.session import collect_digits, key_pressed, play, play_when_ready


@dataclass
class _Endpoint:
    digits: asyncio.Queue[Digit] = field(default_factory=asyncio.Queue)
    released: bool = False


class _Playback:
    def __init__(self) -> None:
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def wait(self) -> str:
        return await self.ended


class _Engine:
    """A playback lasts until stopped (or, with barge-in, a key the test presses)."""

    def __init__(self) -> None:
        self.plays: list[_Playback] = []
        self.stopped = 0

    def play(self, leg: Any, source: Any, **kw: Any) -> _Playback:
        self.plays.append(_Playback())
        return self.plays[-1]

    def stop(self, leg: Any) -> None:
        self.stopped += 1
        for p in self.plays:
            if not p.ended.done():
                p.ended.set_result("stopped")


class _Session:
    def __init__(self) -> None:
        self.endpoint = _Endpoint()
        self.engine = _Engine()
        self.ended = asyncio.Event()

    def press(self, keys: str) -> None:
        for k in keys:
            self.endpoint.digits.put_nowait(Digit(k, 100, "rfc4733"))


SILENCE = np.zeros(800, np.int16)


async def test_key_pressed_leaves_the_keys_queued_in_order() -> None:
    session = _Session()
    waiting = asyncio.ensure_future(key_pressed(session.endpoint))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    session.press("123")  # in one go, before the waiter runs again
    await waiting
    assert await collect_digits(session, 3, 1.0) == "123"  # type: ignore[arg-type]


async def test_a_key_typed_ahead_skips_a_barge_in_prompt() -> None:
    session = _Session()
    session.press("5")
    assert await play(session, SILENCE, barge_in=True) == "barge-in"  # type: ignore[arg-type]
    assert session.engine.plays == []
    assert await collect_digits(session, 1, 1.0) == "5"  # type: ignore[arg-type]


async def test_a_key_during_playback_stops_it_and_stays_queued() -> None:
    session = _Session()
    playing = asyncio.ensure_future(play(session, SILENCE, barge_in=True))  # type: ignore[arg-type]
    while not session.engine.plays:
        await asyncio.sleep(0)
    session.press("7")
    assert await playing == "barge-in"
    assert session.engine.stopped == 1
    assert await collect_digits(session, 1, 1.0) == "7"  # type: ignore[arg-type]


async def test_a_key_during_preparation_ends_the_wait_and_the_preparation_finishes() -> None:
    session = _Session()
    release = asyncio.Event()
    prepared: list[bool] = []

    async def synthesise() -> np.ndarray:
        await release.wait()
        prepared.append(True)
        return SILENCE

    saying = asyncio.ensure_future(
        play_when_ready(session, synthesise(), barge_in=True)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0)
    session.press("2")
    assert await saying == "barge-in"
    assert session.engine.plays == [] and not prepared
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert prepared == [True]  # not cancelled: its result is cached for the next caller
    assert await collect_digits(session, 1, 1.0) == "2"  # type: ignore[arg-type]


async def test_without_barge_in_a_prompt_is_prepared_and_played_whatever_the_keys() -> None:
    session = _Session()
    session.press("9")

    async def synthesise() -> np.ndarray:
        return SILENCE

    saying = asyncio.ensure_future(
        play_when_ready(session, synthesise(), barge_in=False)  # type: ignore[arg-type]
    )
    while not session.engine.plays:
        await asyncio.sleep(0)
    session.engine.plays[0].ended.set_result("finished")
    assert await saying == "finished"
    assert await collect_digits(session, 1, 1.0) == "9"  # type: ignore[arg-type]
