"""Phrases: what the switch says, as a sequence of prompt names and text to synthesise.

A :class:`Phrase` is built by the applications ("you have", a count of new messages,
"received", a date, "at", a time) and turned into :class:`Segment` items by the rules of
one language (:class:`SayRules`), the way Asterisk's ``say.c`` and FreeSWITCH's
``mod_say_*`` compose numbers and dates out of small prompts (``digits/40``,
``digits/hundred``, ``months/december``).  The library then plays each segment: a prompt
by its name (a tenant's recording or the system's generated one), a text by speech
synthesis.  Languages register their rules in :data:`LANGUAGES`; English is complete
(:mod:`softswitch.prompts.english`), and a language without rules falls back to English.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from config.prompts import canonical_language

__all__ = [
    "LANGUAGES",
    "MESSAGES",
    "MINUTES",
    "Phrase",
    "PluralCategory",
    "SayRules",
    "Segment",
    "canonical_language",
    "rules_for",
]

# CLDR plural categories: English uses "one" and "other"; Slavic languages "few" and
# "many" too, which is why counted nouns name their forms by category.
PluralCategory = Literal["zero", "one", "two", "few", "many", "other"]


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of a phrase: a prompt by name, or text to synthesise (``kind``)."""

    kind: Literal["prompt", "text"]
    value: str

    @staticmethod
    def prompt(name: str) -> Segment:
        """A named prompt (``digits/7``, ``vm-you-have``)."""
        return Segment("prompt", name)

    @staticmethod
    def text(text: str) -> Segment:
        """Free text, spoken by speech synthesis."""
        return Segment("text", text)


class SayRules(Protocol):
    """How one language says numbers, dates, times and counts, in prompt names."""

    code: str
    # The default text of every system prompt the rules use (the switch speaks them
    # through text-to-speech unless a tenant replaces them).
    texts: Mapping[str, str]

    def number(self, n: int) -> list[Segment]:
        """A cardinal number."""
        ...

    def ordinal(self, n: int) -> list[Segment]:
        """An ordinal number (first, second, ...)."""
        ...

    def digits(self, s: str) -> list[Segment]:
        """Digits (and ``*``, ``#``) one by one."""
        ...

    def date(self, d: dt.date, *, weekday: bool, year: bool) -> list[Segment]:
        """A calendar date."""
        ...

    def time(self, t: dt.time) -> list[Segment]:
        """A time of day (hours and minutes)."""
        ...

    def plural(self, n: int) -> PluralCategory:
        """The plural category of a count."""
        ...

    def menu_option(self, key: str, option: Sequence[Segment]) -> list[Segment]:
        """A menu instruction: what the option is and the key that chooses it."""
        ...

    def count(
        self, n: int, forms: Mapping[PluralCategory, str], adjectives: Sequence[str] = ()
    ) -> list[Segment]:
        """A number of things: the number, the adjectives and the noun of its category."""
        ...


LANGUAGES: dict[str, SayRules] = {}

# Counted nouns of the applications, by plural category (a language's rules pick one).
MESSAGES: Mapping[PluralCategory, str] = {"one": "vm-message", "other": "vm-messages"}
MINUTES: Mapping[PluralCategory, str] = {"one": "queue-minute", "other": "queue-minutes"}


def rules_for(language: str) -> SayRules:
    """The rules for ``language``: exact tag, then its base language, then English."""
    tag = canonical_language(language)
    if tag in LANGUAGES:
        return LANGUAGES[tag]
    base = tag.split("-", 1)[0]
    return LANGUAGES.get(base) or LANGUAGES["en"]


@dataclass
class Phrase:
    """A phrase under construction; each method appends and returns the phrase.

    ``Phrase("en").prompt("vm-you-have").count(3, NEW_MESSAGES)`` says "you have three new
    messages"; :attr:`segments` is what the library plays.
    """

    language: str = "en"
    segments: list[Segment] = field(default_factory=list)
    rules: SayRules = field(init=False)

    def __post_init__(self) -> None:
        self.rules = rules_for(self.language)

    def prompt(self, *names: str) -> Phrase:
        """Named prompts, in order."""
        self.segments += [Segment.prompt(n) for n in names]
        return self

    def text(self, text: str) -> Phrase:
        """Free text (a name, a company greeting) spoken by speech synthesis."""
        if text.strip():
            self.segments.append(Segment.text(text.strip()))
        return self

    def number(self, n: int) -> Phrase:
        """A cardinal number ("three hundred forty two")."""
        self.segments += self.rules.number(n)
        return self

    def ordinal(self, n: int) -> Phrase:
        """An ordinal ("twenty first")."""
        self.segments += self.rules.ordinal(n)
        return self

    def digits(self, s: str) -> Phrase:
        """Digits one by one ("one, zero, zero")."""
        self.segments += self.rules.digits(s)
        return self

    def date(self, d: dt.date, *, weekday: bool = False, year: bool = False) -> Phrase:
        """A date ("December sixth"), optionally with the weekday and the year."""
        self.segments += self.rules.date(d, weekday=weekday, year=year)
        return self

    def time(self, t: dt.time | dt.datetime) -> Phrase:
        """A time of day ("ten forty two P M")."""
        self.segments += self.rules.time(t.time() if isinstance(t, dt.datetime) else t)
        return self

    def option(self, key: str, option: str | Phrase) -> Phrase:
        """A menu instruction ("For sales, press one"): ``option`` is a prompt name or a
        phrase of its own (a text, a recorded department name)."""
        said = option.segments if isinstance(option, Phrase) else [Segment.prompt(option)]
        self.segments += self.rules.menu_option(key, said)
        return self

    def count(self, n: int, forms: Mapping[PluralCategory, str], *adjectives: str) -> Phrase:
        """A count and its noun ("three new messages"): ``forms`` maps plural categories
        to noun prompts (:data:`MESSAGES`), ``adjectives`` are prompt names said with it."""
        self.segments += self.rules.count(n, forms, adjectives)
        return self
