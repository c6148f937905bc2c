"""The switch answers every RFC 4475 / RFC 5118 torture message as the manifests expect.

Each message is fed to a running switch's receive path (as if from UDP, responses captured
before they reach a socket, since most of these messages name hosts in their Via that a
test cannot listen on), then the switch must still answer an OPTIONS over a real socket.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from config import load_config
from peers.switchproc import SwitchConfigFile, numbered_users, options_ping
from softswitch.server import Switch
from softswitch.sip.address import Address
from tests.integration.capture import capture_sends, release_sends
from tests.integration.torturekit import CASES, CORPUS, case_bytes, satisfies

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def corpus_available() -> None:
    if not CORPUS.is_dir():
        pytest.fail(f"torture corpus not found at {CORPUS}")


@pytest.mark.parametrize(("corpus", "case"), CASES, ids=[c["name"] for _, c in CASES])
async def test_torture_case(
    corpus_available: None, tmp_path: Path, corpus: str, case: dict[str, object]
) -> None:
    config = SwitchConfigFile(tmp_path, users=numbered_users(2))
    switch = Switch(load_config(config.write()))
    await switch.start()
    sent = capture_sends(switch)
    try:
        data = case_bytes(corpus, case)
        switch._on_message(data, Address("UDP", "192.0.2.7", 5060))
        await asyncio.sleep(0.05)
        statuses = [int(m.split(b" ", 2)[1]) for m in sent if m.startswith(b"SIP/2.0 ")]
        expect = str(case["expect_class"])
        assert satisfies(expect, statuses), (case["name"], expect, sent[:2])
        release_sends(switch)
        status = await asyncio.get_running_loop().run_in_executor(None, options_ping, config.port)
        assert status == 200, f"switch not answering after {case['name']}"
    finally:
        release_sends(switch)
        await switch.stop()
