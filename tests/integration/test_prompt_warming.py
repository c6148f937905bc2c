"""`softswitch run` synthesises the generated system prompts at start-up, in a child at the
lowest priority, unless `[prompts] warm_at_start = false` (softswitch/prompts/warm.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peers.switchproc import SwitchConfigFile, SwitchProcess
from tests.integration.callkit import wait_log

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="`make test` installs espeak-ng"),
]


def _cached(prompts: Path) -> int:
    return sum(1 for _ in (prompts / "tts-cache").glob("??/*.wav"))


@pytest.mark.parametrize("warm", [True, False])
def test_the_system_prompts_are_synthesised_at_start_only_when_asked(
    tmp_path: Path, warm: bool
) -> None:
    prompts = tmp_path / "prompts"
    cfg = SwitchConfigFile(
        tmp_path / "switch",
        warm_prompts=warm,
        extra_toml=f'[prompts]\ndirectory = "{prompts}"\n',
    )
    switch = SwitchProcess(cfg.write(), port=cfg.port).start()
    try:
        if warm:
            wait_log(switch, "prompts_warmed", timeout=120)
            assert _cached(prompts) > 100  # numbers, dates, menus: every generated prompt
        else:
            wait_log(switch, "switch_started")
            assert "prompts_warming" not in switch.log()
            assert _cached(prompts) == 0
    finally:
        switch.stop()
