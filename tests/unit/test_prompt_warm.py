"""The generated prompts synthesised at start-up (softswitch/prompts/warm.py): a child
process at the lowest priority fills the tts cache the switch's library then hits."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from config.prompts import PromptSettings
from softswitch.prompts import PromptLibrary
from softswitch.prompts.warm import LOWEST_PRIORITY, warm_prompts

ESPEAK = shutil.which("espeak-ng")


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng missing: `make test` installs it")
async def test_warming_fills_the_cache_at_the_lowest_priority(tmp_path: Path) -> None:
    niceness = tmp_path / "nice.log"
    espeak = tmp_path / "espeak-nice"  # records the priority it runs at
    espeak.write_text(
        f"#!/bin/sh\ncut -d' ' -f19 /proc/$$/stat >> {niceness}\nexec {ESPEAK} \"$@\"\n"
    )
    espeak.chmod(espeak.stat().st_mode | stat.S_IEXEC)
    config = tmp_path / "switch.toml"
    config.write_text(
        f'[prompts]\ndirectory = "{tmp_path / "prompts"}"\ntts_command = "{espeak}"\n'
    )
    await warm_prompts(str(config))
    library = PromptLibrary(PromptSettings(directory=tmp_path / "prompts", tts_command=str(espeak)))
    voice, rate = library.voice_for(None, "en")
    for text in library.generated().values():
        assert library.synthesiser.path_for(text, voice, rate).is_file(), text
    runs = niceness.read_text().split()
    assert runs and set(runs) == {str(LOWEST_PRIORITY)}
    for name in ("vm-you-have", "digits/7", "vm-opt-callback"):
        await library.audio_file(name)  # found in the cache: not synthesised again
    assert library.synthesiser.syntheses == 0
