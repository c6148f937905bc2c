"""A longer, coverage-guided fuzzing run of one target with atheris (not part of `make test`).

    .venv/bin/pip install atheris
    SOFTSWITCH_PURE_PYTHON=1 .venv/bin/python -m tests.fuzz.atheris_run sip -max_total_time=600

Targets: sip, sdp, crypto, digest (tests/fuzz/targets.py). Other arguments go to libFuzzer
(-max_total_time, -runs, a corpus directory, ...). A crash leaves its input in a
crash-<hash> file: add it to the seeds of tests/unit/test_fuzz_parsers.py as a regression.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from tests.fuzz.targets import TARGETS


def main() -> None:
    """Run the target named by the first argument under libFuzzer."""
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(
            f"usage: python -m tests.fuzz.atheris_run {{{','.join(TARGETS)}}} [libFuzzer args]"
        )
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
