"""Which modules run compiled (mypyc, see setup.py), and whether the build is out of date."""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

_ROOT = Path(__file__).resolve().parent


def compiled_sources(root: Path = _ROOT) -> list[Path]:
    """The sources of the modules that import as C extensions (not as Python)."""
    found: set[Path] = set()
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for ext in root.rglob(f"*{suffix}"):
            source = ext.with_name(ext.name.split(".", 1)[0] + ".py")
            if source.exists():
                found.add(source)
    return sorted(found)


def stale_extensions(root: Path = _ROOT) -> list[str]:
    """Compiled sources edited after the last build: Python would still import the old
    extension, so the edit would silently not run (``make venv`` rebuilds them).

    Every module's code lives in the one group library (``_compiled__mypyc``), which the
    Makefile touches after each build; the per-module extensions are shims.
    """
    libraries = list(root.glob("_compiled__mypyc.*"))
    built = min((lib.stat().st_mtime for lib in libraries), default=0.0)
    return [str(source.relative_to(root.parent)) for source in compiled_sources(root)
            if source.stat().st_mtime > built]
