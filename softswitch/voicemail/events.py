"""What the voicemail application tells the rest of the switch, and what it answers.

Two parts of the switch build on mailboxes without knowing how messages are stored: the
message-waiting lamps (SUBSCRIBE/NOTIFY ``message-summary``, RFC 3842) and email
notification. The voicemail package calls a :class:`MailboxListener` on every change and
implements :class:`MailboxDirectory` for them to read from; the notifier implements the
listener. Neither side imports the other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from config.voicemail import EmailNotification

__all__ = [
    "MailboxAddress",
    "MailboxDirectory",
    "MailboxListener",
    "MessageCounts",
    "VoiceMessage",
]


@dataclass(frozen=True, slots=True)
class MailboxAddress:
    """A mailbox: its tenant's name and its number (a user's extension or a shared box)."""

    tenant: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class MessageCounts:
    """What a message-waiting lamp shows (RFC 3842 ``Voice-Message: new/old (urgent)``)."""

    new: int = 0
    old: int = 0
    urgent_new: int = 0
    urgent_old: int = 0

    @property
    def waiting(self) -> bool:
        return self.new > 0


@dataclass(frozen=True, slots=True)
class VoiceMessage:
    """One message as left by a caller."""

    id: str
    caller_number: str
    caller_name: str
    received: dt.datetime  # UTC, timezone-aware
    duration: float  # seconds of audio
    urgent: bool
    audio: Path  # 8 kHz 16-bit mono WAV


class MailboxListener(Protocol):
    """Told of every change of a mailbox (called on the switch's event loop; must not block)."""

    def message_left(
        self, box: MailboxAddress, message: VoiceMessage, counts: MessageCounts
    ) -> None:
        """A caller left ``message``; ``counts`` are the mailbox's counts after it."""

    def counts_changed(self, box: MailboxAddress, counts: MessageCounts) -> None:
        """Messages were heard, saved, deleted or undeleted; the counts now."""


class MailboxDirectory(Protocol):
    """What the notifier may read of the mailboxes."""

    def mailbox_of(self, tenant: str, user: str) -> MailboxAddress | None:
        """The mailbox whose lamp a user's phones show (``user``: an extension or a SIP
        user name of the tenant); None when the user has no mailbox."""

    def counts(self, box: MailboxAddress) -> MessageCounts:
        """The mailbox's counts now (unknown mailbox: all zero)."""

    def has_new(self, tenant: str, mailbox: str) -> bool:
        """Whether mailbox ``mailbox`` (an extension) of ``tenant`` holds new messages: one
        set lookup, asked for every REGISTER that adds a contact."""

    def lamp_users(self, box: MailboxAddress) -> tuple[str, ...]:
        """Extensions whose registered phones light their lamp for this mailbox."""

    def email(self, box: MailboxAddress) -> EmailNotification | None:
        """The mailbox's email settings, None when it sends no mail."""

    def new_messages(self, box: MailboxAddress) -> tuple[VoiceMessage, ...]:
        """The messages not heard yet (for reminders), oldest first."""

    async def delete(self, box: MailboxAddress, message_id: str) -> None:
        """Delete a message for good (delete after email); no error when it is gone."""
