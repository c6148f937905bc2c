"""Text-to-speech and conversion happen once per prompt: the first and the second play.

Run: ``.venv/bin/python -m bench.voicemail_prompts_bench [--repeat 5]``.

A fresh prompt library (its own directory, so nothing is cached) prepares what the
voicemail and the auto attendant play, the way they ask for it:

- a tenant prompt given as text (``welcome``: an attendant's greeting), asked for as a
  file to play (:meth:`PromptLibrary.audio_file`);
- a phrase of system prompts and a number ("you have 3 new messages"), rendered to
  samples (:meth:`PromptLibrary.render`, what the voicemail application plays).

For each, the first play's preparation (espeak-ng, conversion to 8 kHz) and the second's
are timed, and the synthesiser's count of espeak-ng runs says whether the second synthesised
anything. The voicemail application also keeps rendered phrases in memory, so its second
play of a phrase does not even read the cached file; that is the third line.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from config.prompts import PromptSettings
from softswitch.apps.voicemail import VoicemailApp
from softswitch.prompts import MESSAGES, Phrase, PromptLibrary

TENANT = "acme"


async def _timed(step: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await step()
    return (time.perf_counter() - started) * 1000


async def run(repeat: int) -> list[str]:
    firsts: dict[str, list[float]] = {"text prompt": [], "phrase": []}
    seconds: dict[str, list[float]] = {"text prompt": [], "phrase": []}
    runs: dict[str, list[tuple[int, int]]] = {"text prompt": [], "phrase": []}
    memory: list[float] = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="prompt-bench-") as tmp:
            library = PromptLibrary(PromptSettings(directory=Path(tmp)))
            library.add_text(
                "welcome", "Welcome to Example Company. For sales, press one.", tenant=TENANT
            )
            phrase = Phrase("en").prompt("vm-you-have").count(3, MESSAGES, "vm-new")
            steps: dict[str, Callable[[], Awaitable[Any]]] = {
                "text prompt": lambda lib=library: lib.audio_file("welcome", tenant=TENANT),
                "phrase": lambda lib=library, p=phrase: lib.render(p, tenant=TENANT),
            }
            for name, step in steps.items():
                before = library.synthesiser.syntheses
                firsts[name].append(await _timed(step))
                middle = library.synthesiser.syntheses
                seconds[name].append(await _timed(step))
                runs[name].append((middle - before, library.synthesiser.syntheses - middle))
            # The voicemail application keeps rendered phrases: its second play of one.
            app = VoicemailApp(cast(Any, None), library)  # _render uses only the library
            session = cast(Any, SimpleNamespace(tenant=TENANT))
            await app._render(session, phrase)
            before = library.synthesiser.syntheses
            memory.append(await _timed(lambda a=app, s=session, p=phrase: a._render(s, p)))
            assert library.synthesiser.syntheses == before
    lines = []
    for name in firsts:
        first_runs = {a for a, _ in runs[name]}
        second_runs = {b for _, b in runs[name]}
        lines.append(
            f"{name:12s} first play {statistics.median(firsts[name]):8.1f} ms "
            f"(espeak-ng runs {sorted(first_runs)})   second play "
            f"{statistics.median(seconds[name]):6.2f} ms (espeak-ng runs {sorted(second_runs)})"
        )
    lines.append(
        f"{'phrase, app':12s} second play through VoicemailApp._render (its rendered copy) "
        f"{statistics.median(memory) * 1000:.1f} us (espeak-ng runs [0], no file read)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="fresh libraries (medians)")
    args = parser.parse_args()
    for line in asyncio.run(run(args.repeat)):
        print(line, flush=True)


if __name__ == "__main__":
    main()
