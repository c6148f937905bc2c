"""Fixtures shared by the integration tests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator

import pytest

from media.engine import EngineSettings, MediaEngine
from tests.integration.rtpkit import Peer


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    """A running media engine on 200 ports of a random free-looking range."""
    base = random.randrange(30000, 60000, 2)
    async with MediaEngine(EngineSettings(port_min=base, port_max=base + 199)) as engine:
        yield engine


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    """Raw RTP phones a test makes (``new_peer``), closed after it."""
    made: list[Peer] = []
    yield made
    for p in made:
        p.close()
