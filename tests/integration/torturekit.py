"""The torture corpus's cases and how an answer is judged against a manifest expectation.

Shared by the server tests over UDP (test_torture_server.py) and TCP (test_torture_tcp.py).
"""

from __future__ import annotations

import json

from tests.unit.torture_expectations import TORTURE_CORPUS

CORPUS = TORTURE_CORPUS
CASES: list[tuple[str, dict[str, object]]] = [
    (corpus, case)
    for corpus in ("rfc4475", "rfc5118")
    for case in json.loads((CORPUS / corpus / "manifest.json").read_text())["cases"]
]


def case_bytes(corpus: str, case: dict[str, object]) -> bytes:
    """The wire bytes of one case."""
    return (CORPUS / corpus / str(case["file"])).read_bytes()


def satisfies(expect: str, statuses: list[int]) -> bool:
    """Do the statuses answered to one message meet a manifest ``expect_class``?"""
    finals = [s for s in statuses if s >= 200]
    if expect == "no-crash":
        return True
    if expect == "silence":
        return not statuses
    if "-or-" in expect:
        return any(satisfies(option, statuses) for option in expect.split("-or-"))
    if expect == "accept":
        return not finals or finals[0] not in (400, 500, 505)
    if expect == "any-final":
        return not finals or finals[0] != 500
    if expect == "error":
        return bool(finals) and finals[0] >= 400 and finals[0] != 500
    if expect.endswith("xx"):
        return bool(finals) and str(finals[0])[0] == expect[0]
    return bool(finals) and finals[0] == int(expect)
