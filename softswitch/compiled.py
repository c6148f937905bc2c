"""Which modules run compiled (mypyc, see setup.py), and whether the build is out of date."""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
# The packages setup.py compiles modules of; the group library is in the first.
PACKAGES = (_ROOT, _ROOT.parent / "media")


def compiled_sources(*roots: Path) -> list[Path]:
    """The sources of the modules that import as C extensions (not as Python), in the
    packages ``roots`` (default: :data:`PACKAGES`)."""
    found: set[Path] = set()
    for root in roots or PACKAGES:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            for ext in root.rglob(f"*{suffix}"):
                source = ext.with_name(ext.name.split(".", 1)[0] + ".py")
                if source.exists():
                    found.add(source)
    return sorted(found)


def stale_extensions(*roots: Path) -> list[str]:
    """Compiled sources edited after the last build: Python would still import the old
    extension, so the edit would silently not run (``make venv`` rebuilds them).

    Every module's code lives in the one group library (``_compiled__mypyc``, in the first
    of ``roots``), which the Makefile touches after each build; the per-module extensions
    are shims.
    """
    roots = roots or PACKAGES
    libraries = list(roots[0].glob("_compiled__mypyc.*"))
    built = min((lib.stat().st_mtime for lib in libraries), default=0.0)
    return [
        str(source.relative_to(roots[0].parent))
        for source in compiled_sources(*roots)
        if source.stat().st_mtime > built
    ]
