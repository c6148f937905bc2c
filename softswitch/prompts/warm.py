"""The generated system prompts synthesised once at start-up, in the background.

A fresh install has an empty text-to-speech cache: the first caller into the voicemail
inbox would sit out some 20 utterances (about 4 s) before the menu speaks. So the switch
starts ``softswitch prompts generate`` (the command an operator may run by hand) on its
configuration file as a child process at the lowest CPU priority: the synthesis
(espeak-ng) and the conversion to 8 kHz (about 5 s of CPU for the 180 English prompts)
stay out of the switch's process and its signalling loop, and take only CPU that calls
leave idle. Prompts already cached cost a file check each, so a restart is quick. A call
that needs a prompt first still synthesises it itself; both write the same cache file
(atomically, by the same name).

The child warms the switch's own language and voice (``[prompts]``); a tenant speaking
another language or with another voice has its prompts synthesised on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import structlog

__all__ = ["warm_prompts"]

log = structlog.get_logger(__name__)

LOWEST_PRIORITY = 19  # nice: the scheduler runs it only on CPU nobody else wants


async def warm_prompts(config_path: str) -> None:
    """Run ``softswitch prompts generate --config config_path`` at the lowest priority
    until it ends; cancelled (the switch stopping), the child is killed by its PID."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "softswitch.cli",
        "prompts",
        "generate",
        "--config",
        config_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    # Lowered right after the fork, long before the interpreter has started and spawns its
    # first espeak-ng (which inherits the priority).
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, proc.pid, LOWEST_PRIORITY)
    log.info("prompts_warming", pid=proc.pid)
    try:
        _, err = await proc.communicate()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode == 0:
        log.info("prompts_warmed", pid=proc.pid)
    else:
        # espeak-ng missing or failing: callers get the same error when a prompt is needed
        lines = err.decode(errors="replace").strip().splitlines()
        log.warning(
            "prompts_warming_failed", exit=proc.returncode, error=lines[-1] if lines else ""
        )
