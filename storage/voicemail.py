"""Voicemail's rows: messages and mailbox state, the same SQL on both backends.

The audio of a message is a file (``audio``, relative to ``[voicemail] directory``); the
store keeps what the inbox needs to list, count and move messages. Each backend gives this
mixin two primitives (:meth:`VoicemailRows._vm_fetch`, :meth:`VoicemailRows._vm_execute`)
and the statements are written once, with ``?`` placeholders that PostgreSQL gets numbered.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.errors import StorageError

__all__ = ["FOLDERS", "MailboxState", "StoredMessage", "VoicemailRows", "numbered"]

#: Where a message is: not heard yet, kept, or deleted (until the inbox session ends).
FOLDERS = ("new", "saved", "deleted")

_COLUMNS = (
    "id, tenant, mailbox, folder, caller_number, caller_name, received, duration, urgent, audio"
)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A voice message as stored (``received``: epoch seconds)."""

    id: str
    tenant: str
    mailbox: str
    folder: str
    caller_number: str
    caller_name: str
    received: float
    duration: float
    urgent: bool
    audio: str

    def row(self) -> tuple[Any, ...]:
        for name in ("id", "tenant", "mailbox", "audio"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > 512:
                raise StorageError(f"voice message {name}: must be 1-512 characters")
        if self.folder not in FOLDERS:
            raise StorageError(f"voice message folder: {self.folder!r} is not one of {FOLDERS}")
        for name in ("received", "duration"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise StorageError(f"voice message {name}: must be a finite number >= 0")
        return (
            self.id,
            self.tenant,
            self.mailbox,
            self.folder,
            self.caller_number[:128],
            self.caller_name[:128],
            float(self.received),
            float(self.duration),
            int(bool(self.urgent)),
            self.audio,
        )

    @staticmethod
    def from_row(row: Sequence[Any]) -> StoredMessage:
        i, t, m, f, num, name, received, duration, urgent, audio = row
        return StoredMessage(
            str(i), str(t), str(m), str(f), str(num), str(name),
            float(received), float(duration), bool(urgent), str(audio),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MailboxState:
    """A mailbox's own state: a PIN changed by phone (None: the configured one), wrong PINs
    entered in a row, and until when it is locked (epoch seconds; inf: until unlocked)."""

    tenant: str
    mailbox: str
    pin: str | None = None
    failures: int = 0
    locked_until: float = 0.0


_PLACEHOLDER = re.compile(r"\?")


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    count = iter(range(1, 1000))
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)


def _check(name: str, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 512:
        raise StorageError(f"{name} must be 1-512 characters, got {value!r}")
    return value


class VoicemailRows(ABC):
    """Voicemail messages and mailbox state (migration 0008); mixed into every Store."""

    @abstractmethod
    async def _vm_fetch(self, what: str, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows of a query (``?`` placeholders)."""

    @abstractmethod
    async def _vm_execute(self, what: str, sql: str, args: Sequence[Any]) -> int:
        """Run a statement in its own transaction; rows affected."""

    async def add_voice_message(self, message: StoredMessage) -> None:
        """Store a new message (its audio file is in place already)."""
        await self._vm_execute(
            "add_voice_message",
            f"INSERT INTO voicemail_messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            message.row(),
        )

    async def voice_messages(
        self, tenant: str | None = None, mailbox: str | None = None
    ) -> list[StoredMessage]:
        """Messages of a mailbox (or a tenant's, or all), oldest first."""
        where, args = [], []
        if tenant is not None:
            where.append("tenant = ?")
            args.append(_check("tenant", tenant))
        if mailbox is not None:
            where.append("mailbox = ?")
            args.append(_check("mailbox", mailbox))
        sql = f"SELECT {_COLUMNS} FROM voicemail_messages"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self._vm_fetch("voice_messages", sql + " ORDER BY received, id", args)
        return [StoredMessage.from_row(r) for r in rows]

    async def voice_message(self, message_id: str) -> StoredMessage | None:
        """One message by id."""
        rows = await self._vm_fetch(
            "voice_message",
            f"SELECT {_COLUMNS} FROM voicemail_messages WHERE id = ?",
            (_check("message id", message_id),),
        )
        return StoredMessage.from_row(rows[0]) if rows else None

    async def move_voice_message(self, message_id: str, folder: str) -> bool:
        """Put a message in ``folder``; False when there is no such message."""
        if folder not in FOLDERS:
            raise StorageError(f"folder must be one of {FOLDERS}, got {folder!r}")
        changed = await self._vm_execute(
            "move_voice_message",
            "UPDATE voicemail_messages SET folder = ? WHERE id = ?",
            (folder, _check("message id", message_id)),
        )
        return changed > 0

    async def delete_voice_message(self, message_id: str) -> bool:
        """Forget a message (its file is the caller's to remove); False when gone."""
        changed = await self._vm_execute(
            "delete_voice_message",
            "DELETE FROM voicemail_messages WHERE id = ?",
            (_check("message id", message_id),),
        )
        return changed > 0

    async def voicemail_changes(
        self, after: int | None, keep: int = 100_000
    ) -> tuple[int, list[tuple[str, str]]]:
        """The mailboxes (tenant, mailbox) whose messages changed after change ``after``
        (migration 0015's triggers record every writer's), and the last change's number;
        ``after`` None: only that number. Changes older than the last ``keep`` are forgotten."""
        rows = await self._vm_fetch(
            "voicemail_changes", "SELECT COALESCE(MAX(seq), 0) FROM voicemail_changes", ()
        )
        last = int(rows[0][0]) if rows else 0
        if after is None or last <= after:
            return last, []
        changed = await self._vm_fetch(
            "voicemail_changes",
            "SELECT DISTINCT tenant, mailbox FROM voicemail_changes WHERE seq > ? AND seq <= ?",
            (after, last),
        )
        if last // 1000 != after // 1000:  # now and then, not on every change
            await self._vm_execute(
                "voicemail_changes", "DELETE FROM voicemail_changes WHERE seq <= ?", (last - keep,)
            )
        return last, [(str(t), str(m)) for t, m in changed]

    async def mailbox_state(self, tenant: str, mailbox: str) -> MailboxState:
        """The mailbox's own state (defaults when it has none)."""
        rows = await self._vm_fetch(
            "mailbox_state",
            "SELECT pin, failures, locked_until FROM voicemail_boxes "
            "WHERE tenant = ? AND mailbox = ?",
            (_check("tenant", tenant), _check("mailbox", mailbox)),
        )
        if not rows:
            return MailboxState(tenant, mailbox)
        pin, failures, locked_until = rows[0]
        return MailboxState(
            tenant, mailbox, None if pin is None else str(pin), int(failures), float(locked_until)
        )

    async def save_mailbox_state(self, state: MailboxState) -> None:
        """Insert or replace a mailbox's state."""
        if state.pin is not None and not (
            (state.pin.isascii() and state.pin.isdigit()) and 4 <= len(state.pin) <= 12
        ):
            raise StorageError("mailbox pin must be 4-12 digits")
        if state.failures < 0 or math.isnan(state.locked_until):
            raise StorageError("mailbox failures must be >= 0 and locked_until a time")
        locked = state.locked_until if math.isfinite(state.locked_until) else 1e300
        await self._vm_execute(
            "save_mailbox_state",
            "INSERT INTO voicemail_boxes (tenant, mailbox, pin, failures, locked_until) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, mailbox) DO UPDATE SET "
            "pin = excluded.pin, failures = excluded.failures, "
            "locked_until = excluded.locked_until",
            (
                _check("tenant", state.tenant),
                _check("mailbox", state.mailbox),
                state.pin,
                int(state.failures),
                float(locked),
            ),
        )
