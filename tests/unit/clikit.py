"""The real `softswitch` command line as an operator runs it (subprocesses), for the CLI
tests: a configuration file written from the example with a database of the test's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from config import example_config_path

__all__ = ["run", "write_config"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m softswitch.cli ARGS` as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "softswitch.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_config(directory: Path, database_url: str, extra: str = "") -> Path:
    text = example_config_path().read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///data/softswitch.db"', f'url = "{database_url}"')
    text = text.replace('file = "data/softswitch.log"', 'file = ""')
    path = directory / "switch.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path
