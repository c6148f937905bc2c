"""Fixtures shared by the integration tests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from media.engine import EngineSettings, MediaEngine


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    """A running media engine on 200 ports of a random free-looking range."""
    base = random.randrange(30000, 60000, 2)
    async with MediaEngine(EngineSettings(port_min=base, port_max=base + 199)) as engine:
        yield engine
