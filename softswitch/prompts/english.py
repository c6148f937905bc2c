"""English (US): how numbers, dates, times and counts are said, and the system prompts' texts.

Numbers are composed the way American speakers read them and the way Asterisk's English
``say.c`` does: ``digits/3 digits/hundred digits/40 digits/2`` for 342 (no "and"), the
teens and tens as prompts of their own, ``thousand`` and ``million`` as multipliers.
Ordinals end in an ordinal prompt (``digits/20 digits/h-1``: "twenty first").  Times are
12-hour: "ten oh five A M", "ten o'clock P M"; dates "December sixth", with the weekday
and the year ("twenty twenty six", "two thousand nine") when asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from softswitch.prompts.phrases import LANGUAGES, PluralCategory, Segment

__all__ = ["ENGLISH", "English"]

_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen",
]  # fmt: skip
_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy",
         80: "eighty", 90: "ninety"}  # fmt: skip
_UNIT_ORDINALS = [
    "zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
    "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
    "sixteenth", "seventeenth", "eighteenth", "nineteenth",
]  # fmt: skip
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]  # fmt: skip
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

# Prompts of the voicemail, auto attendant and queue applications that the phrases here
# and those applications use; each is spoken from this text unless a tenant replaces it.
_APPLICATION_TEXTS = {
    "vm-you-have": "You have",
    "vm-no": "no",
    "vm-new": "new",
    "vm-saved": "saved",
    "vm-message": "message",
    "vm-messages": "messages",
    "vm-and": "and",
    "vm-received": "Received",
    "vm-at": "at",
    "vm-from": "From",
    "vm-unknown-caller": "an unknown caller",
    "vm-enter-mailbox": "Please enter your mailbox number, followed by pound.",
    "vm-enter-password": "Please enter your password, followed by pound.",
    "vm-incorrect": "That password is incorrect.",
    "vm-not-available": "The person you are calling is not available.",
    "vm-busy": "The person you are calling is on the phone.",
    "vm-record-after-tone": "Please leave your message after the tone. "
    "When you are done, hang up, or press pound.",
    "vm-message-saved": "Your message has been saved.",
    "vm-message-deleted": "Message deleted.",
    "vm-no-more-messages": "There are no more messages.",
    "vm-first": "First",
    "vm-next": "Next",
    "vm-main-menu": "To listen to your messages, press 1. To change your greeting, press 3. "
    "For mailbox options, press 0.",
    "vm-message-menu": "To replay this message, press 1. To delete it, press 7. "
    "To save it, press 9. For the next message, press 6.",
    "vm-goodbye": "Goodbye.",
    # voicemail (softswitch.apps.voicemail, softswitch.voicemail.menu)
    "vm-is-not-available": "is not available.",
    "vm-is-busy": "is on the phone.",
    "vm-extension": "The person at extension",
    "vm-mailbox-full": "The mailbox is full and cannot take any more messages. Goodbye.",
    "vm-review": "To send your message, press 1. To mark it urgent, press star. "
    "To record it again, press 3.",
    "vm-marked-urgent": "Marked urgent.",
    "vm-locked": "This mailbox is locked after too many wrong passwords. Goodbye.",
    "vm-no-mailbox": "There is no such mailbox.",
    "vm-last": "Last",
    "vm-message-undeleted": "Message undeleted.",
    "vm-opt-new": "new messages",
    "vm-opt-saved": "saved messages",
    "vm-opt-options": "mailbox options",
    "vm-opt-exit": "to exit",
    "vm-opt-repeat": "to replay the message",
    "vm-opt-next": "the next message",
    "vm-opt-previous": "the previous message",
    "vm-opt-save": "to save it",
    "vm-opt-delete": "to delete or undelete it",
    "vm-opt-forward": "to forward it to another mailbox",
    "vm-opt-envelope": "the time and the caller",
    "vm-opt-callback": "to call back",
    "vm-opt-main": "the main menu",
    "vm-opt-unavailable": "to record your unavailable greeting",
    "vm-opt-busy": "to record your busy greeting",
    "vm-opt-name": "to record your name",
    "vm-opt-temporary": "your temporary greeting",
    "vm-opt-password": "to change your password",
    "vm-opt-record": "to record a new one",
    "vm-opt-remove": "to remove it",
    "vm-temporary-active": "Your temporary greeting is active.",
    "vm-temporary-removed": "Your temporary greeting was removed.",
    "vm-greeting-review": "To keep it, press 1. To listen to it, press 2. "
    "To record it again, press 3.",
    "vm-enter-new-password": "Please enter your new password, followed by pound.",
    "vm-reenter-password": "Please enter it again, followed by pound.",
    "vm-password-changed": "Your password has been changed.",
    "vm-passwords-differ": "The passwords did not match.",
    "vm-forward-to": "Please enter the mailbox to forward to, followed by pound.",
    "vm-forwarded": "Message forwarded.",
    "menu-press": "press",
    "menu-for": "For",
    "menu-to": "To",
    "menu-invalid": "That is not a valid option.",
    "menu-try-again": "Please try again.",
    "menu-no-input": "We did not receive your selection.",
    "menu-dial-extension": "If you know your party's extension, you may dial it at any time.",
    "menu-transferring": "Please hold while your call is transferred.",
    "menu-goodbye": "Thank you for calling. Goodbye.",
    "menu-unavailable": "That destination is not available.",
    "dir-last-name": "Please enter the first three letters of the person's last name.",
    "dir-first-name": "Please enter the first three letters of the person's first name.",
    "dir-either-name": "Please enter the first three letters of the person's first or last name.",
    "dir-no-match": "There is nobody by that name.",
    "dir-confirm": "To call this person, press 1. For the next name, press 2.",
    "dir-no-more": "There are no more names.",
    "screen-say-name": "Please say your name after the tone.",
    "screen-call-from": "You have a call from",
    "screen-accept": "To accept the call, press 1. To send it on, press 2.",
    "confirm-accept": "You have a call. To accept it, press 1.",
    "queue-position": "You are caller number",
    "queue-in-line": "in line.",
    "queue-wait": "Your call is important to us. Please stay on the line.",
    "queue-estimated-wait": "The estimated wait time is",
    "queue-minute": "minute",
    "queue-minutes": "minutes",
    "record-after-tone": "Please record after the tone, and press pound when done.",
    "record-saved": "Your recording has been saved.",
    "prompt-enter-number": "Please enter the prompt number, followed by pound.",
}


def _texts() -> dict[str, str]:
    texts = {f"digits/{n}": w for n, w in enumerate(_UNITS)}
    texts |= {f"digits/{n}": w for n, w in _TENS.items()}
    texts |= {f"digits/h-{n}": w for n, w in enumerate(_UNIT_ORDINALS) if n}
    texts |= {f"digits/h-{n}": w[:-1] + "ieth" for n, w in _TENS.items()}
    texts |= {
        "digits/hundred": "hundred",
        "digits/thousand": "thousand",
        "digits/million": "million",
        "digits/h-hundred": "hundredth",
        "digits/h-thousand": "thousandth",
        "digits/h-million": "millionth",
        "digits/minus": "minus",
        "digits/oh": "oh",
        "digits/star": "star",
        "digits/pound": "pound",
        "digits/oclock": "o'clock",
        "digits/a-m": "A M",
        "digits/p-m": "P M",
    }
    texts |= {f"months/{m}": m.capitalize() for m in _MONTHS}
    texts |= {f"days/{d}": d.capitalize() for d in _DAYS}
    return texts | _APPLICATION_TEXTS


def _p(name: str) -> Segment:
    return Segment.prompt(name)


class English:
    """The English :class:`~softswitch.prompts.phrases.SayRules`."""

    code = "en"

    def __init__(self) -> None:
        self.texts: Mapping[str, str] = _texts()

    def _below_thousand(self, n: int, ordinal: bool) -> list[Segment]:
        out: list[Segment] = []
        hundreds, rest = divmod(n, 100)
        if hundreds:
            out.append(_p(f"digits/{hundreds}"))
            out.append(_p("digits/h-hundred" if ordinal and not rest else "digits/hundred"))
        if rest >= 20:
            tens, units = divmod(rest, 10)
            if units:
                out.append(_p(f"digits/{tens * 10}"))
                out.append(_p(f"digits/h-{units}" if ordinal else f"digits/{units}"))
            else:
                out.append(_p(f"digits/h-{rest}" if ordinal else f"digits/{rest}"))
        elif rest:
            out.append(_p(f"digits/h-{rest}" if ordinal else f"digits/{rest}"))
        return out

    def _say(self, n: int, ordinal: bool) -> list[Segment]:
        if n < 0:
            if ordinal:
                raise ValueError(f"no ordinal of a negative number ({n})")
            return [_p("digits/minus"), *self._say(-n, False)]
        if n == 0:
            return [_p("digits/0")]
        if n >= 1_000_000_000:
            raise ValueError(f"number too large to say: {n}")
        out: list[Segment] = []
        millions, rest = divmod(n, 1_000_000)
        thousands, units = divmod(rest, 1000)
        if millions:
            out += self._below_thousand(millions, False)
            out.append(_p("digits/h-million" if ordinal and not rest else "digits/million"))
        if thousands:
            out += self._below_thousand(thousands, False)
            out.append(_p("digits/h-thousand" if ordinal and not units else "digits/thousand"))
        out += self._below_thousand(units, ordinal)
        return out

    def number(self, n: int) -> list[Segment]:
        """Cardinal: 342 -> three hundred forty two."""
        return self._say(n, False)

    def ordinal(self, n: int) -> list[Segment]:
        """Ordinal: 21 -> twenty first; 100 -> one hundredth."""
        if n <= 0:
            raise ValueError(f"ordinals start at 1, not {n}")
        return self._say(n, True)

    def digits(self, s: str) -> list[Segment]:
        """Each digit, star and pound on its own; anything else is refused."""
        names = {"*": "digits/star", "#": "digits/pound"}
        out = []
        for c in s:
            if c.isascii() and c.isdigit():
                out.append(_p(f"digits/{c}"))
            elif c in names:
                out.append(_p(names[c]))
            else:
                raise ValueError(f"cannot say {c!r} as a digit in {s!r}")
        return out

    def year(self, y: int) -> list[Segment]:
        """2026 -> twenty twenty six; 2009 -> two thousand nine; 1900 -> nineteen hundred."""
        if not 1000 <= y <= 9999 or 2000 <= y <= 2009:
            return self.number(y)
        high, low = divmod(y, 100)
        if low == 0:
            return [*self.number(high), _p("digits/hundred")]
        if low < 10:
            return [*self.number(high), _p("digits/oh"), *self.number(low)]
        return [*self.number(high), *self.number(low)]

    def date(self, d: dt.date, *, weekday: bool, year: bool) -> list[Segment]:
        """[Sunday] December sixth [twenty twenty six]."""
        out = [_p(f"days/{_DAYS[d.weekday()]}")] if weekday else []
        out += [_p(f"months/{_MONTHS[d.month - 1]}"), *self.ordinal(d.day)]
        if year:
            out += self.year(d.year)
        return out

    def time(self, t: dt.time) -> list[Segment]:
        """10:42 PM -> ten forty two P M; 10:05 -> ten oh five; 10:00 -> ten o'clock."""
        hour = t.hour % 12 or 12
        out = self.number(hour)
        if t.minute == 0:
            out.append(_p("digits/oclock"))
        elif t.minute < 10:
            out += [_p("digits/oh"), *self.number(t.minute)]
        else:
            out += self.number(t.minute)
        out.append(_p("digits/a-m" if t.hour < 12 else "digits/p-m"))
        return out

    def plural(self, n: int) -> PluralCategory:
        """English has two categories: one, and everything else (zero included)."""
        return "one" if n == 1 else "other"

    def menu_option(self, key: str, option: Sequence[Segment]) -> list[Segment]:
        """For <option>, press <key>."""
        return [_p("menu-for"), *option, _p("menu-press"), *self.digits(key)]

    def count(
        self, n: int, forms: Mapping[PluralCategory, str], adjectives: Sequence[str] = ()
    ) -> list[Segment]:
        """3 -> three [new] <other form>; 1 -> one <one form>; 0 -> no <other form>."""
        if n < 0:
            raise ValueError(f"cannot count {n} things")
        noun = forms.get(self.plural(n)) or forms["other"]
        spoken = [_p("vm-no")] if n == 0 else self.number(n)
        return [*spoken, *(_p(a) for a in adjectives), _p(noun)]


ENGLISH = English()
LANGUAGES["en"] = ENGLISH
