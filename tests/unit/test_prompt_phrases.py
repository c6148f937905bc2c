"""The phrase builder: numbers, ordinals, digits, dates, times and counts, in English."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from softswitch.prompts import MESSAGES, MINUTES, Phrase, Segment
from softswitch.prompts.english import ENGLISH
from softswitch.prompts.phrases import rules_for


def words(phrase: Phrase | list[Segment]) -> str:
    """What a listener hears: each prompt's English text (free text as is)."""
    segments = phrase.segments if isinstance(phrase, Phrase) else phrase
    return " ".join(ENGLISH.texts[s.value] if s.kind == "prompt" else s.value for s in segments)


_VALUES = {
    w: n
    for n, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
} | {
    w: 10 * (i + 2)
    for i, w in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    )
}


def parse(text: str) -> int:
    """An independent reading of English number words back into an int."""
    total = current = 0
    for word in text.split():
        if word in _VALUES:
            current += _VALUES[word]
        elif word == "hundred":
            current *= 100
        elif word == "thousand":
            total += current * 1000
            current = 0
        elif word == "million":
            total += current * 1_000_000
            current = 0
        else:
            raise AssertionError(f"unexpected word {word!r} in {text!r}")
    return total + current


def test_numbers_from_0_to_999999_read_back() -> None:
    # every number below 20,000, then a stride through the rest and every round thousand
    numbers = [*range(20_000), *range(20_000, 1_000_000, 97), *range(0, 1_000_000, 1000)]
    for n in [*numbers, 999_999]:
        segments = ENGLISH.number(n)
        assert all(s.value in ENGLISH.texts for s in segments)
        assert parse(words(segments)) == n, n


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (40, "forty"),
        (42, "forty two"),
        (100, "one hundred"),
        (342, "three hundred forty two"),
        (1000, "one thousand"),
        (1005, "one thousand five"),
        (20_019, "twenty thousand nineteen"),
        (999_999, "nine hundred ninety nine thousand nine hundred ninety nine"),
        (1_000_000, "one million"),
        (-12, "minus twelve"),
    ],
)
def test_numbers(n: int, said: str) -> None:
    assert words(Phrase().number(n)) == said


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty first"),
        (30, "thirtieth"),
        (100, "one hundredth"),
        (101, "one hundred first"),
        (1000, "one thousandth"),
        (2024, "two thousand twenty fourth"),
    ],
)
def test_ordinals(n: int, said: str) -> None:
    assert words(Phrase().ordinal(n)) == said


def test_refusals() -> None:
    with pytest.raises(ValueError, match="ordinals start at 1"):
        Phrase().ordinal(0)
    with pytest.raises(ValueError, match="too large"):
        Phrase().number(10**9)
    with pytest.raises(ValueError, match="cannot say 'a' as a digit"):
        Phrase().digits("1a")
    with pytest.raises(ValueError, match="cannot count"):
        Phrase().count(-1, MESSAGES)
    with pytest.raises(ValueError, match="not a language tag"):
        Phrase("english!")


def test_digits_one_by_one() -> None:
    assert words(Phrase().digits("1007*#")) == "one zero zero seven star pound"


@pytest.mark.parametrize(
    ("when", "said"),
    [
        (dt.time(22, 42), "ten forty two P M"),
        (dt.time(10, 5), "ten oh five A M"),
        (dt.time(0, 0), "twelve o'clock A M"),
        (dt.time(12, 30), "twelve thirty P M"),
        (dt.time(23, 59), "eleven fifty nine P M"),
    ],
)
def test_times(when: dt.time, said: str) -> None:
    assert words(Phrase().time(when)) == said


@pytest.mark.parametrize(
    ("day", "kw", "said"),
    [
        (dt.date(2026, 12, 6), {}, "December sixth"),
        (dt.date(2026, 12, 6), {"weekday": True}, "Sunday December sixth"),
        (dt.date(2026, 7, 4), {"year": True}, "July fourth twenty twenty six"),
        (dt.date(2009, 3, 22), {"year": True}, "March twenty second two thousand nine"),
        (dt.date(1900, 1, 31), {"year": True}, "January thirty first nineteen hundred"),
        (dt.date(1905, 5, 1), {"year": True}, "May first nineteen oh five"),
    ],
)
def test_dates(day: dt.date, kw: dict[str, bool], said: str) -> None:
    assert words(Phrase().date(day, **kw)) == said


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (0, "You have no new messages"),
        (1, "You have one new message"),
        (2, "You have two new messages"),
        (3, "You have three new messages"),
        (21, "You have twenty one new messages"),
    ],
)
def test_counts_take_singular_and_plural(n: int, said: str) -> None:
    assert words(Phrase().prompt("vm-you-have").count(n, MESSAGES, "vm-new")) == said


def test_the_voicemail_sentence() -> None:
    received = dt.datetime(2026, 12, 6, 22, 42)
    phrase = (
        Phrase("en-us")
        .prompt("vm-you-have")
        .count(3, MESSAGES, "vm-new")
        .prompt("vm-received")
        .date(received.date())
        .prompt("vm-at")
        .time(received)
    )
    assert words(phrase) == (
        "You have three new messages Received December sixth at ten forty two P M"
    )
    assert all(s.kind == "prompt" for s in phrase.segments)


def test_free_text_and_queue_phrases() -> None:
    phrase = Phrase().text("  Acme  Widgets ").prompt("queue-estimated-wait").count(1, MINUTES)
    assert phrase.segments[0] == Segment.text("Acme  Widgets")
    assert words(phrase) == "Acme  Widgets The estimated wait time is one minute"


def test_languages_fall_back_to_their_base_then_english() -> None:
    assert rules_for("en-GB") is ENGLISH
    assert rules_for("en_us") is ENGLISH
    assert rules_for("de") is ENGLISH  # no German rules yet: English is always complete


def test_plural_categories() -> None:
    assert [ENGLISH.plural(n) for n in (0, 1, 2, 11)] == ["other", "one", "other", "other"]
    sample = random.Random(7).sample(range(2, 10_000), 50)
    assert {ENGLISH.plural(n) for n in sample} == {"other"}


def test_menu_instructions() -> None:
    phrase = Phrase().option("1", "vm-new").option("#", Phrase().text("Sales"))
    assert words(phrase) == "For new press one For Sales press pound"
