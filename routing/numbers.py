"""Number handling on the call path: cheap normalisation of caller and dialled numbers.

``phonenumbers`` parsing costs tens of microseconds, so numbers already in E.164 form skip it
and everything else goes through a bounded cache.
"""

from __future__ import annotations

import re
from functools import lru_cache

from config.numbers import NumberError, to_e164

_E164_RE = re.compile(r"^\+[1-9][0-9]{5,14}$")
_STRIP = str.maketrans("", "", " -.()/\t")
_E164_FULL_RE = re.compile(r"\+[1-9][0-9]{5,14}")  # with fullmatch: no "$" newline leeway
_DIGIT_RE = re.compile(r"[0-9]")
_ANONYMOUS = frozenset({"", "anonymous", "unknown", "restricted", "private", "unavailable"})


def is_anonymous(caller: str | None) -> bool:
    """True when the caller withheld or has no number."""
    return caller is None or caller.strip().lower() in _ANONYMOUS


def is_plain_e164(text: str) -> bool:
    """True for bare E.164 text: nothing to clean, and ``normalise`` returns it unchanged."""
    return _E164_FULL_RE.fullmatch(text) is not None


def has_digit(text: str) -> bool:
    """True when ``text`` holds a digit (``str.isdigit``): a number rather than a user name."""
    if text.isascii():
        return _DIGIT_RE.search(text) is not None
    return any((ch.isascii() and ch.isdigit()) for ch in text)


def clean(text: str) -> str:
    """Drop the punctuation people write numbers with."""
    return text.strip().translate(_STRIP)


@lru_cache(maxsize=65536)
def _normalise(text: str, region: str) -> str | None:
    try:
        return to_e164(text, region)
    except NumberError:
        return None


def normalise(text: str, region: str, *, validate: bool = False) -> str | None:
    """E.164 form of ``text`` (national formats read in ``region``), or None if not a number.

    A syntactically E.164 string is trusted as is unless ``validate``; the trunk has the final
    word on whether it exists.
    """
    return normalise_clean(clean(text), region, validate=validate)


def normalise_clean(cleaned: str, region: str, *, validate: bool = False) -> str | None:
    """``normalise`` for text already passed through ``clean`` (the call path cleans once)."""
    # Dropping punctuation can bare whitespace ("-\n5"); stripping again equals a second clean.
    cleaned = cleaned.strip()
    if cleaned.startswith("00") and (cleaned[2:].isascii() and cleaned[2:].isdigit()):
        cleaned = "+" + cleaned[2:]
    if _E164_RE.match(cleaned) and not validate:
        return cleaned
    if not cleaned or len(cleaned) > 32:
        return None
    return _normalise(cleaned, region)


def reason_invalid(text: str, region: str | None = None) -> str | None:
    """Why ``text`` is not a valid number (None if it is)."""
    try:
        to_e164(text, region)
    except NumberError as exc:
        return exc.reason
    return None
