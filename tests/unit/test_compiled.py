"""The stale-build check: a compiled module's source edited after the build is reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from softswitch.compiled import compiled_sources, stale_extensions

SUFFIX = ".cpython-311-x86_64-linux-gnu.so"


def _tree(root: Path, *, built_at: float, edited_at: float, library: bool = True) -> None:
    pkg = root / "pkg"
    (pkg / "sub").mkdir(parents=True)
    for name in ("a", "sub/b"):
        (pkg / f"{name}.py").write_text("x = 1\n")
        (pkg / f"{name}{SUFFIX}").write_bytes(b"")
        os.utime(pkg / f"{name}{SUFFIX}", (built_at, built_at))
        os.utime(pkg / f"{name}.py", (built_at - 10, built_at - 10))
    (pkg / "plain.py").write_text("y = 2\n")  # not compiled: never reported
    os.utime(pkg / "plain.py", (edited_at, edited_at))
    if library:
        (pkg / f"_compiled__mypyc{SUFFIX}").write_bytes(b"")
        os.utime(pkg / f"_compiled__mypyc{SUFFIX}", (built_at, built_at))
    os.utime(pkg / "sub/b.py", (edited_at, edited_at))


@pytest.mark.parametrize(
    ("edited_after_build", "library", "stale"),
    [
        (False, True, []),
        (True, True, ["pkg/sub/b.py"]),
        # shims without their library: everything compiled counts as stale
        (False, False, ["pkg/a.py", "pkg/sub/b.py"]),
    ],
)
def test_stale_extensions(
    tmp_path: Path, edited_after_build: bool, library: bool, stale: list[str]
) -> None:
    built = 1_700_000_000.0
    _tree(
        tmp_path,
        built_at=built,
        edited_at=built + (60 if edited_after_build else -60),
        library=library,
    )
    root = tmp_path / "pkg"
    assert [p.name for p in compiled_sources(root)] == ["a.py", "b.py"]
    assert stale_extensions(root) == stale


def test_no_extensions_nothing_stale(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("")
    assert stale_extensions(tmp_path / "pkg") == []


def test_stale_extensions_in_a_second_package(tmp_path: Path) -> None:
    # media's extensions sit in their own package; the group library only in the first
    built = 1_700_000_000.0
    _tree(tmp_path, built_at=built, edited_at=built - 60)
    other = tmp_path / "other"
    other.mkdir()
    (other / "c.py").write_text("z = 3\n")
    (other / f"c{SUFFIX}").write_bytes(b"")
    os.utime(other / f"c{SUFFIX}", (built, built))
    os.utime(other / "c.py", (built + 60, built + 60))
    roots = (tmp_path / "pkg", other)
    assert {p.name for p in compiled_sources(*roots)} == {"a.py", "b.py", "c.py"}
    assert stale_extensions(*roots) == ["other/c.py"]
