"""The inbox by phone as a sans-I/O state machine: keys and timeouts in, actions out.

:class:`InboxMenu` knows the menus (main, message, mailbox options, temporary greeting),
the order messages are played in and what each key does under a tenant's
:class:`~config.voicemail.InboxKeys`; the voicemail application carries out the actions it
returns (say a phrase, play a message, move it to a folder, record a greeting...) and feeds
the caller's keys back. The layout follows Asterisk's ``VoiceMailMain``: 1 new messages,
2 saved, 0 mailbox options; after a message 5 repeats, 4 and 6 go back and on, 7 deletes
(or undeletes), 9 saves, 8 forwards, 3 says the envelope, 2 calls back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from config.voicemail import Greeting, InboxKeys
from softswitch.prompts.phrases import MESSAGES, Phrase
from storage.voicemail import StoredMessage

__all__ = [
    "Action",
    "CallBack",
    "ChangePin",
    "Forward",
    "Hangup",
    "InboxMenu",
    "Move",
    "PlayMessage",
    "RecordGreeting",
    "RemoveGreeting",
    "Say",
]

MAX_TIMEOUTS = 3  # menus repeated without a key before the call ends


@dataclass(frozen=True, slots=True)
class Say:
    """Say a phrase (a key interrupts it)."""

    phrase: Phrase


@dataclass(frozen=True, slots=True)
class PlayMessage:
    """Play a message's audio (a key interrupts it)."""

    message: StoredMessage


@dataclass(frozen=True, slots=True)
class Move:
    """Put a message in a folder (``saved``, ``deleted``; undelete is ``saved``)."""

    message_id: str
    folder: str


@dataclass(frozen=True, slots=True)
class Forward:
    """Ask for a mailbox number and copy the message there."""

    message: StoredMessage


@dataclass(frozen=True, slots=True)
class CallBack:
    """Call the message's caller."""

    number: str


@dataclass(frozen=True, slots=True)
class RecordGreeting:
    """Record a greeting (with review) and keep it."""

    kind: Greeting


@dataclass(frozen=True, slots=True)
class RemoveGreeting:
    kind: Greeting


@dataclass(frozen=True, slots=True)
class ChangePin:
    """Ask for a new PIN twice and keep it."""


@dataclass(frozen=True, slots=True)
class Hangup:
    """Say goodbye and end the call."""


Action = (
    Say | PlayMessage | Move | Forward | CallBack | RecordGreeting | RemoveGreeting | ChangePin
    | Hangup
)  # fmt: skip


@dataclass
class InboxMenu:
    """One logged-in caller's way through their mailbox (see the module docstring)."""

    keys: InboxKeys
    messages: list[StoredMessage]  # the mailbox's messages at login, oldest first
    newest_first: bool = False
    language: str = "en"
    zone: str = "UTC"
    temporary: bool = False  # a temporary greeting is set
    state: str = "main"
    folder: str = "new"
    index: int = 0
    folders: dict[str, str] = field(default_factory=dict)  # message id -> folder now
    timeouts: int = 0

    def __post_init__(self) -> None:
        self.folders = {m.id: m.folder for m in self.messages}

    # ------------------------------------------------------------------ phrases

    def _phrase(self) -> Phrase:
        return Phrase(self.language)

    def _count(self, folder: str) -> int:
        return sum(1 for f in self.folders.values() if f == folder)

    def _listing(self) -> list[StoredMessage]:
        """The messages of the folder being listened to, in the caller's order; a message
        deleted or saved meanwhile stays in its place until the folder is chosen again."""
        chosen = [m for m in self.messages if m.folder == self.folder]
        return list(reversed(chosen)) if self.newest_first else chosen

    def intro(self) -> list[Action]:
        """What the caller hears on login: the counts, then the main menu."""
        p = self._phrase().prompt("vm-you-have").count(self._count("new"), MESSAGES, "vm-new")
        p.prompt("vm-and").count(self._count("saved"), MESSAGES, "vm-saved")
        return [Say(p), *self._menu()]

    def _menu(self) -> list[Action]:
        k, p = self.keys, self._phrase()
        if self.state == "main":
            p.option(k.new, "vm-opt-new").option(k.saved, "vm-opt-saved")
            p.option(k.options, "vm-opt-options").option(k.exit, "vm-opt-exit")
        elif self.state == "message":
            p.option(k.repeat, "vm-opt-repeat").option(k.next, "vm-opt-next")
            p.option(k.previous, "vm-opt-previous").option(k.save, "vm-opt-save")
            p.option(k.delete, "vm-opt-delete").option(k.forward, "vm-opt-forward")
            p.option(k.envelope, "vm-opt-envelope").option(k.callback, "vm-opt-callback")
            p.option(k.main_menu, "vm-opt-main")
        elif self.state == "options":
            p.option(k.unavailable, "vm-opt-unavailable").option(k.busy, "vm-opt-busy")
            p.option(k.name, "vm-opt-name").option(k.temporary, "vm-opt-temporary")
            p.option(k.password, "vm-opt-password").option(k.back, "vm-opt-main")
        else:  # temporary greeting set: record a new one or remove it
            p.prompt("vm-temporary-active").option("1", "vm-opt-record").option(
                "2", "vm-opt-remove"
            )
        return [Say(p)]

    def envelope(self, m: StoredMessage) -> Phrase:
        """ "Received December sixth at ten forty two P M from 1 2 3 ..."."""
        when = dt.datetime.fromtimestamp(m.received, ZoneInfo(self.zone))
        p = self._phrase().prompt("vm-received").date(when.date()).prompt("vm-at").time(when)
        p.prompt("vm-from")
        if m.caller_number:
            p.digits(
                "".join(c for c in m.caller_number if (c.isascii() and c.isdigit()) or c in "*#")
            )
        else:
            p.prompt("vm-unknown-caller")
        return p

    # ------------------------------------------------------------------ messages

    def _play(self) -> list[Action]:
        listing = self._listing()
        if not 0 <= self.index < len(listing):
            self.state = "main"
            return [Say(self._phrase().prompt("vm-no-more-messages")), *self._menu()]
        m = listing[self.index]
        out: list[Action] = []
        if self.index == 0:
            out.append(Say(self._phrase().prompt("vm-first", "vm-message")))
        elif self.index == len(listing) - 1:
            out.append(Say(self._phrase().prompt("vm-last", "vm-message")))
        else:
            out.append(Say(self._phrase().prompt("vm-message").number(self.index + 1)))
        out.append(PlayMessage(m))
        if self.folders.get(m.id) == "new":  # heard: it is an old message now
            self.folders[m.id] = "saved"
            out.append(Move(m.id, "saved"))
        return [*out, *self._menu()]

    def _current(self) -> StoredMessage | None:
        listing = self._listing()
        return listing[self.index] if 0 <= self.index < len(listing) else None

    # ------------------------------------------------------------------ input

    def timeout(self) -> list[Action]:
        """No key within the menu's time: say it again, or give up."""
        self.timeouts += 1
        if self.timeouts >= MAX_TIMEOUTS:
            return [Hangup()]
        return self._menu()

    def key(self, key: str) -> list[Action]:
        """The caller pressed ``key``."""
        self.timeouts = 0
        handler = {
            "main": self._main,
            "message": self._message,
            "options": self._options,
            "temporary": self._temporary,
        }[self.state]
        return handler(key)

    def _invalid(self) -> list[Action]:
        return [Say(self._phrase().prompt("menu-invalid")), *self._menu()]

    def _main(self, key: str) -> list[Action]:
        k = self.keys
        if key in (k.new, k.saved):
            self.folder = "new" if key == k.new else "saved"
            # The folder as it is now: what was heard since login is saved by now.
            self.messages = [replace(m, folder=self.folders[m.id]) for m in self.messages]
            self.index = 0
            if not self._listing():
                p = self._phrase().prompt("vm-you-have")
                p.count(0, MESSAGES, "vm-new" if self.folder == "new" else "vm-saved")
                return [Say(p), *self._menu()]
            self.state = "message"
            return self._play()
        if key == k.options:
            self.state = "options"
            return self._menu()
        if key == k.exit:
            return [Hangup()]
        return self._invalid()

    def _message(self, key: str) -> list[Action]:
        k, m = self.keys, self._current()
        if m is None or key == k.main_menu:
            self.state = "main"
            return self._menu()
        if key == k.repeat:
            return self._play()
        if key == k.next:
            self.index += 1
            return self._play()
        if key == k.previous:
            self.index = max(0, self.index - 1)
            return self._play()
        if key == k.delete:
            if self.folders.get(m.id) == "deleted":
                self.folders[m.id] = "saved"
                p = self._phrase().prompt("vm-message-undeleted")
                return [Move(m.id, "saved"), Say(p), *self._menu()]
            self.folders[m.id] = "deleted"
            p = self._phrase().prompt("vm-message-deleted")
            return [Move(m.id, "deleted"), Say(p), *self._advance()]
        if key == k.save:
            self.folders[m.id] = "saved"
            p = self._phrase().prompt("vm-message-saved")
            return [Move(m.id, "saved"), Say(p), *self._advance()]
        if key == k.forward:
            return [Forward(m), *self._menu()]
        if key == k.envelope:
            return [Say(self.envelope(m)), *self._menu()]
        if key == k.callback:
            if not m.caller_number:
                return [Say(self._phrase().prompt("vm-unknown-caller")), *self._menu()]
            return [CallBack(m.caller_number), *self._menu()]
        return self._invalid()

    def _advance(self) -> list[Action]:
        self.index += 1
        return self._play()

    def _options(self, key: str) -> list[Action]:
        k = self.keys
        kinds = {
            k.unavailable: Greeting.UNAVAILABLE,
            k.busy: Greeting.BUSY,
            k.name: Greeting.NAME,
        }
        if key in kinds:
            return [RecordGreeting(kinds[key]), *self._menu()]
        if key == k.temporary:
            if self.temporary:
                self.state = "temporary"
                return self._menu()
            self.temporary = True
            return [RecordGreeting(Greeting.TEMPORARY), *self._menu()]
        if key == k.password:
            return [ChangePin(), *self._menu()]
        if key == k.back:
            self.state = "main"
            return self._menu()
        return self._invalid()

    def _temporary(self, key: str) -> list[Action]:
        self.state = "options"
        if key == "1":
            return [RecordGreeting(Greeting.TEMPORARY), *self._menu()]
        if key == "2":
            self.temporary = False
            p = self._phrase().prompt("vm-temporary-removed")
            return [RemoveGreeting(Greeting.TEMPORARY), Say(p), *self._menu()]
        return self._menu()
