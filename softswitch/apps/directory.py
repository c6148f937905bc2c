"""Dial by name: the caller spells the first letters of a name on the keypad, hears the
people whose names match read out (text to speech) and presses 1 to be put through.

The matching is pure (``keypad_digits``, ``DialByName``); ``dial_by_name`` runs the
conversation on an application's session with a ``Voice`` that turns prompt names and
texts into audio (the attendant's, backed by the tenant's prompt library).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from config.models import User
from media.players import AudioSource
from softswitch.apps.session import AppSession, collect_digits, flush_digits, play

__all__ = ["DialByName", "Listing", "Voice", "dial_by_name", "keypad_digits"]

_KEYPAD = {
    **dict.fromkeys("abc", "2"),
    **dict.fromkeys("def", "3"),
    **dict.fromkeys("ghi", "4"),
    **dict.fromkeys("jkl", "5"),
    **dict.fromkeys("mno", "6"),
    **dict.fromkeys("pqrs", "7"),
    **dict.fromkeys("tuv", "8"),
    **dict.fromkeys("wxyz", "9"),
}

#: Letters the caller enters before the matches are read out.
LETTERS = 3
#: Most names read out for one search.
MAX_CANDIDATES = 9


def keypad_digits(name: str) -> str:
    """The keys that spell ``name`` on a phone keypad (accents dropped, other characters
    skipped): ``"Brown"`` -> ``"27696"``."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "".join(_KEYPAD[c] for c in plain if c in _KEYPAD)


@dataclass(frozen=True, slots=True)
class Listing:
    """One person in the directory."""

    extension: str
    name: str  # as it is read out
    first: str  # keypad digits of the first name
    last: str  # keypad digits of the last name


class DialByName:
    """The directory of a tenant's users who have a name; ``by`` is ``first``, ``last``
    or ``either``."""

    def __init__(self, users: Iterable[User], by: str = "last") -> None:
        if by not in ("first", "last", "either"):
            raise ValueError(f"by must be first, last or either, not {by!r}")
        self.by = by
        listings = []
        for user in users:
            words = user.display_name.split()
            if not words:
                continue
            listings.append(
                Listing(
                    user.extension,
                    user.display_name.strip(),
                    keypad_digits(words[0]),
                    keypad_digits(words[-1]),
                )
            )
        self.listings = tuple(sorted(listings, key=lambda x: (x.last, x.first, x.extension)))

    def matches(self, digits: str) -> list[Listing]:
        """The people whose (first / last) name starts with ``digits``, at most
        MAX_CANDIDATES."""
        if not digits:
            return []
        found = [
            x
            for x in self.listings
            if (self.by != "first" and x.last.startswith(digits))
            or (self.by != "last" and x.first.startswith(digits))
        ]
        return found[:MAX_CANDIDATES]


class Voice(Protocol):
    """What the caller hears: a library prompt by name, or a text spoken."""

    async def prompt(self, name: str) -> AudioSource: ...

    async def text(self, text: str) -> AudioSource: ...


async def dial_by_name(
    session: AppSession, directory: DialByName, voice: Voice, *, timeout: float = 5.0
) -> str | None:
    """Ask for a name, read out the matches, return the extension the caller confirmed
    with 1 (None: nobody matched, the caller gave up with ``*`` or hung up). Two tries."""
    ask = {"first": "dir-first-name", "last": "dir-last-name"}.get(directory.by, "dir-either-name")
    for _ in range(2):
        flush_digits(session.endpoint)
        await play(session, await voice.prompt(ask), barge_in=True)
        digits = await collect_digits(session, LETTERS, timeout)
        if session.ended.is_set():
            return None
        found = directory.matches(digits)
        if not found:
            await play(session, await voice.prompt("dir-no-match"))
            continue
        chosen = await _offer(session, found, voice, timeout)
        if chosen is not None or session.ended.is_set():
            return chosen
        await play(session, await voice.prompt("dir-no-more"))
        return None
    return None


async def _offer(
    session: AppSession, found: list[Listing], voice: Voice, timeout: float
) -> str | None:
    confirm = await voice.prompt("dir-confirm")
    for listing in found:
        flush_digits(session.endpoint)
        name = await voice.text(f"{listing.name}, extension {' '.join(listing.extension)}.")
        if await play(session, name, barge_in=True) == "hangup":
            return None
        key = _pending(session)
        if key is None:
            await play(session, confirm, barge_in=True)
            key = _pending(session) or await _key(session, timeout)
        if key == "1":
            return listing.extension
        if key == "*" or session.ended.is_set():
            return None
    return None


def _pending(session: AppSession) -> str | None:
    queue = session.endpoint.digits
    return queue.get_nowait().digit if not queue.empty() else None


async def _key(session: AppSession, timeout: float) -> str | None:
    keys = await collect_digits(session, 1, timeout, terminator="")
    return None if session.ended.is_set() else keys or None
