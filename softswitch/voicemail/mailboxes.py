"""The mailboxes of a switch: messages (audio files plus Store rows), greetings and PINs.

:class:`Mailboxes` is what the voicemail application, the CLI and the notifier use:

- a message being left is recorded under ``<directory>/<tenant>/<box>/incoming/`` beside
  a small JSON file saying who left it and when (:meth:`Mailboxes.begin_message`); once the
  caller is done it is filed (:meth:`Mailboxes.file_message`): leading and trailing silence
  trimmed, kept as an 8 kHz mono WAV when it is at least the minimum length, and stored.
  A recording the switch did not get to file (it stopped mid-message) is filed at the next
  start (:meth:`Mailboxes.start`), from the data written so far: nothing said is lost.
- every change calls the :class:`~softswitch.voicemail.events.MailboxListener` s
  (message-waiting lamps, email), and :class:`Mailboxes` answers the notifier as its
  :class:`~softswitch.voicemail.events.MailboxDirectory`; counts come from a cache of the
  Store's rows, loaded at start and kept with every change; changes made beside the
  running switch are read from the Store's change log (:meth:`Mailboxes.follow`).
- greetings are files ``greetings/<kind>.wav`` (uploaded, spoken from text, recorded by
  phone); a greeting given as text in the configuration is spoken when there is no file.
- a PIN is checked against the one changed by phone, else the mailbox's, else the tenant's
  default; ``pin_attempts`` wrong ones in a row lock the mailbox for ``lockout_minutes``
  (0: until ``softswitch voicemail unlock``).

Over 600 lines because messages, greetings and PINs share the cache and the Store rows of
one mailbox; split, each part would reach into the others' state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import structlog

from config.models import Tenant
from config.voicemail import EmailNotification, Greeting, Mailbox, VoicemailSettings
from media.convert import ConversionError, convert_file
from media.wav import write_wav
from softswitch.voicemail.audio import RATE, recorded_channel, said
from softswitch.voicemail.events import (
    MailboxAddress,
    MailboxDirectory,
    MailboxListener,
    MessageCounts,
    VoiceMessage,
)
from storage.base import Store
from storage.voicemail import MailboxState, StoredMessage

__all__ = ["Box", "Mailboxes", "PinCheck", "Recording", "VoicemailError", "recorded_channel"]

# The settings of a mailbox the configuration does not list (shared, never changed).
_DEFAULT_MAILBOX = Mailbox()

log = structlog.get_logger(__name__)


class VoicemailError(ValueError):
    """A mailbox request that cannot be carried out; the message says why."""


class PinCheck(StrEnum):
    """What a PIN entry came to."""

    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"  # wrong too often: no PIN is accepted until the lockout ends


@dataclass(frozen=True, slots=True)
class Box:
    """A mailbox and its settings, the tenant's defaults filled in."""

    address: MailboxAddress
    settings: Mailbox
    owner: str | None  # the user's extension; None for a shared mailbox
    pin: str | None
    max_messages: int
    max_seconds: int
    min_seconds: float
    operator: str | None

    @property
    def name(self) -> str:
        return self.settings.name


@dataclass(slots=True)
class Recording:
    """A message being left: its raw recording and its sidecar."""

    box: Box
    id: str
    path: Path  # the engine's 2-channel WAV being written
    sidecar: Path
    caller_number: str
    caller_name: str
    received: float
    urgent: bool = False


class Mailboxes:
    """See the module docstring; one per switch (``switch.voicemail``)."""

    def __init__(
        self,
        settings: VoicemailSettings,
        store: Store,
        tenants: list[Tenant],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(settings.directory)
        self.store = store
        self.clock = clock
        self.listeners: list[MailboxListener] = []
        self._tenants: dict[str, Tenant] = {}
        self._messages: dict[MailboxAddress, dict[str, StoredMessage]] = {}
        # (tenant, mailbox) of the mailboxes holding new messages, kept with every change the
        # listeners hear of: has_new() answers a REGISTER without counting.
        self._with_new: set[tuple[str, str]] = set()
        self._seen_change: int | None = None  # the Store's last change read (follow)
        self.update_tenants(tenants)

    # ------------------------------------------------------------------ configuration

    def update_tenants(self, tenants: list[Tenant]) -> None:
        """The tenants now (live provisioning changes)."""
        self._tenants = {t.name: t for t in tenants}

    def tenant(self, name: str) -> Tenant | None:
        return self._tenants.get(name)

    def box(self, tenant: str, extension: str) -> Box | None:
        """The mailbox of ``extension`` (a user's or a shared one); None when there is none."""
        t = self._tenants.get(tenant)
        if t is None:
            return None
        if not _has_mailbox(t, extension):
            return None
        vm = t.voicemail
        settings = vm.mailboxes.get(extension) or _DEFAULT_MAILBOX
        return Box(
            address=MailboxAddress(tenant, extension),
            settings=settings,
            owner=extension if t.user_by_extension(extension) is not None else None,
            pin=settings.pin or vm.default_pin,
            max_messages=settings.max_messages or vm.max_messages,
            max_seconds=settings.max_message_seconds or vm.max_message_seconds,
            min_seconds=vm.min_message_seconds,
            operator=settings.operator or vm.operator,
        )

    def boxes(self, tenant: str) -> list[Box]:
        """Every mailbox of a tenant."""
        t = self._tenants.get(tenant)
        if t is None:
            return []
        exts = sorted({u.extension for u in t.users} | set(t.routing.mailboxes))
        return [b for b in (self.box(tenant, e) for e in exts) if b is not None]

    def _dir(self, box: MailboxAddress) -> Path:
        for part in (box.tenant, box.mailbox):
            if not part or "/" in part or part.startswith("."):
                raise VoicemailError(f"{part!r} cannot name a mailbox directory")
        return self.root / box.tenant / box.mailbox

    # ------------------------------------------------------------------ listeners

    def add_listener(self, listener: MailboxListener) -> None:
        """Call ``listener`` on every change of any mailbox."""
        self.listeners.append(listener)

    def remove_listener(self, listener: MailboxListener) -> None:
        with contextlib.suppress(ValueError):
            self.listeners.remove(listener)

    def _note(self, box: MailboxAddress, counts: MessageCounts) -> None:
        key = (box.tenant, box.mailbox)
        if counts.waiting:
            self._with_new.add(key)
        else:
            self._with_new.discard(key)

    def _changed(self, box: MailboxAddress) -> None:
        counts = self.counts(box)
        self._note(box, counts)
        for listener in list(self.listeners):
            try:
                listener.counts_changed(box, counts)
            except Exception:
                log.exception("mailbox_listener_failed", tenant=box.tenant, mailbox=box.mailbox)

    def _left(self, box: MailboxAddress, message: VoiceMessage) -> None:
        counts = self.counts(box)
        self._note(box, counts)
        for listener in list(self.listeners):
            try:
                listener.message_left(box, message, counts)
            except Exception:
                log.exception("mailbox_listener_failed", tenant=box.tenant, mailbox=box.mailbox)

    # ------------------------------------------------------------------ the directory

    def mailbox_of(self, tenant: str, user: str) -> MailboxAddress | None:
        t = self._tenants.get(tenant)
        if t is None:
            return None
        found = t.user_by_extension(user) or t.user_by_username(user)
        ext = found.extension if found is not None else user
        # Asked for every REGISTER that adds a contact: the address only, no settings built.
        return MailboxAddress(tenant, ext) if _has_mailbox(t, ext) else None

    def counts(self, box: MailboxAddress) -> MessageCounts:
        new = old = urgent_new = urgent_old = 0
        for m in self._messages.get(box, {}).values():
            if m.folder == "new":
                new += 1
                urgent_new += m.urgent
            elif m.folder == "saved":
                old += 1
                urgent_old += m.urgent
        return MessageCounts(new, old, urgent_new, urgent_old)

    def has_new(self, tenant: str, mailbox: str) -> bool:
        return (tenant, mailbox) in self._with_new

    def lamp_users(self, box: MailboxAddress) -> tuple[str, ...]:
        found = self.box(box.tenant, box.mailbox)
        if found is None:
            return ()
        owner = (found.owner,) if found.owner else ()
        return owner + tuple(u for u in found.settings.lamp_users if u != found.owner)

    def email(self, box: MailboxAddress) -> EmailNotification | None:
        found = self.box(box.tenant, box.mailbox)
        return found.settings.email if found is not None else None

    def new_messages(self, box: MailboxAddress) -> tuple[VoiceMessage, ...]:
        return tuple(self.voice_message(m) for m in self.messages(box, "new"))

    async def delete(self, box: MailboxAddress, message_id: str) -> None:
        """Delete a message for good (file and row); no error when it is gone."""
        stored = self._messages.get(box, {}).pop(message_id, None)
        await self.store.delete_voice_message(message_id)
        if stored is not None:
            with contextlib.suppress(FileNotFoundError):
                self.audio_path(stored).unlink()
            log.info("voicemail_deleted", tenant=box.tenant, mailbox=box.mailbox, id=message_id)
            self._changed(box)

    # ------------------------------------------------------------------ messages

    def messages(self, box: MailboxAddress, *folders: str) -> list[StoredMessage]:
        """A mailbox's messages in ``folders`` (all when none), oldest first."""
        found = self._messages.get(box, {}).values()
        return sorted(
            (m for m in found if not folders or m.folder in folders),
            key=lambda m: (m.received, m.id),
        )

    async def reload(self, box: MailboxAddress) -> None:
        """Read a mailbox's messages from the Store again (a command changed them beside
        the running switch); the listeners hear of a difference."""
        before = self.counts(box)
        rows = await self.store.voice_messages(box.tenant, box.mailbox)
        self._messages[box] = {m.id: m for m in rows}
        after = self.counts(box)
        self._note(box, after)
        if after != before:
            self._changed(box)

    async def follow(self) -> int:
        """Reload the mailboxes changed in the Store since the last look (by a command, the
        admin API or another node; the switch's own changes reload to the same counts), so
        the listeners (message-waiting lamps) hear of it; how many were reloaded. Called by
        the provisioning runtime's change loop."""
        last, changed = await self.store.voicemail_changes(self._seen_change)
        self._seen_change = last
        for tenant, mailbox in changed:
            await self.reload(MailboxAddress(tenant, mailbox))
        return len(changed)

    def message(self, box: MailboxAddress, message_id: str) -> StoredMessage | None:
        return self._messages.get(box, {}).get(message_id)

    def audio_path(self, message: StoredMessage) -> Path:
        return self.root / message.audio

    def voice_message(self, m: StoredMessage) -> VoiceMessage:
        return VoiceMessage(
            id=m.id,
            caller_number=m.caller_number,
            caller_name=m.caller_name,
            received=dt.datetime.fromtimestamp(m.received, dt.UTC),
            duration=m.duration,
            urgent=m.urgent,
            audio=self.audio_path(m),
        )

    def full(self, box: Box) -> bool:
        """The mailbox holds its quota of messages (deleted ones count until purged)."""
        return len(self._messages.get(box.address, {})) >= box.max_messages

    async def move(self, box: MailboxAddress, message_id: str, folder: str) -> None:
        """Put a message in ``new``, ``saved`` or ``deleted`` (undone until purged)."""
        stored = self._messages.get(box, {}).get(message_id)
        if stored is None:
            raise VoicemailError(f"no message {message_id} in mailbox {box.mailbox}")
        if stored.folder == folder:
            return
        await self.store.move_voice_message(message_id, folder)
        self._messages[box][message_id] = dataclasses.replace(stored, folder=folder)
        log.info(
            "voicemail_moved", tenant=box.tenant, mailbox=box.mailbox, id=message_id, to=folder
        )
        self._changed(box)

    async def purge_deleted(self, box: MailboxAddress) -> int:
        """Delete for good what was deleted in an inbox session that ended."""
        gone = [m.id for m in self.messages(box, "deleted")]
        for message_id in gone:
            await self.delete(box, message_id)
        return len(gone)

    async def copy(self, message: StoredMessage, to: Box) -> StoredMessage:
        """Forward a copy of a message to another mailbox (as a new message there)."""
        if self.full(to):
            raise VoicemailError(f"mailbox {to.address.mailbox} is full")
        copy_id = _new_id()
        target = self._dir(to.address) / f"{copy_id}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, self.audio_path(message), target)
        stored = StoredMessage(
            copy_id,
            to.address.tenant,
            to.address.mailbox,
            "new",
            message.caller_number,
            message.caller_name,
            message.received,
            message.duration,
            message.urgent,
            target.relative_to(self.root).as_posix(),
        )
        await self._add(stored)
        return stored

    async def _add(self, stored: StoredMessage) -> None:
        try:
            await self.store.add_voice_message(stored)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                self.audio_path(stored).unlink()
            raise
        box = MailboxAddress(stored.tenant, stored.mailbox)
        self._messages.setdefault(box, {})[stored.id] = stored
        log.info(
            "voicemail_left",
            tenant=box.tenant,
            mailbox=box.mailbox,
            id=stored.id,
            caller=stored.caller_number,
            seconds=round(stored.duration, 2),
        )
        self._left(box, self.voice_message(stored))

    # ------------------------------------------------------------------ leaving a message

    def begin_message(
        self, box: Box, caller_number: str, caller_name: str, *, urgent: bool = False
    ) -> Recording:
        """Where to record a message for ``box``; the sidecar is written now, so that the
        recording is filed at the next start if this process does not get to it."""
        message_id = _new_id()
        incoming = self._dir(box.address) / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        rec = Recording(
            box,
            message_id,
            incoming / f"{message_id}.wav",
            incoming / f"{message_id}.json",
            caller_number,
            caller_name,
            self.clock(),
            urgent,
        )
        _write_sidecar(rec)
        return rec

    def mark_urgent(self, rec: Recording) -> None:
        rec.urgent = True
        _write_sidecar(rec)

    async def file_message(self, rec: Recording) -> StoredMessage | None:
        """File a finished recording; None when it is shorter than the minimum (nothing is
        kept: the caller hung up without saying anything worth a message)."""
        samples = await asyncio.to_thread(said, rec.path)
        return await self._file(
            rec.box.address,
            rec.id,
            samples,
            rec.caller_number,
            rec.caller_name,
            rec.received,
            rec.urgent,
            rec.box.min_seconds,
            (rec.path, rec.sidecar),
        )

    async def discard(self, rec: Recording) -> None:
        for path in (rec.path, rec.sidecar):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def _file(
        self,
        box: MailboxAddress,
        message_id: str,
        samples: npt.NDArray[np.int16],
        caller_number: str,
        caller_name: str,
        received: float,
        urgent: bool,
        min_seconds: float,
        leftovers: tuple[Path, ...],
    ) -> StoredMessage | None:
        seconds = len(samples) / RATE
        stored = None
        if seconds >= max(min_seconds, 0.1):
            target = self._dir(box) / f"{message_id}.wav"
            await asyncio.to_thread(write_wav, target, samples)
            stored = StoredMessage(
                message_id,
                box.tenant,
                box.mailbox,
                "new",
                caller_number,
                caller_name,
                received,
                seconds,
                urgent,
                target.relative_to(self.root).as_posix(),
            )
            await self._add(stored)
        else:
            log.info(
                "voicemail_too_short",
                tenant=box.tenant,
                mailbox=box.mailbox,
                caller=caller_number,
                seconds=round(seconds, 2),
            )
        for path in leftovers:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return stored

    # ------------------------------------------------------------------ start

    async def start(self, *, recover: bool = True) -> int:
        """Load the messages and (``recover``) file the recordings a stop left unfiled; how
        many were filed. Commands beside a running switch do not recover: it records."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._messages.clear()
        self._seen_change, _ = await self.store.voicemail_changes(None)
        for m in await self.store.voice_messages():
            self._messages.setdefault(MailboxAddress(m.tenant, m.mailbox), {})[m.id] = m
        self._with_new = {(b.tenant, b.mailbox) for b in self._messages if self.counts(b).waiting}
        filed = 0
        if not recover:
            return 0
        for box in list(self._messages):  # deleted in an inbox session a stop cut short
            await self.purge_deleted(box)
        for sidecar in sorted(self.root.glob("*/*/incoming/*.json")):
            filed += await self._recover(sidecar)
        return filed

    async def _recover(self, sidecar: Path) -> int:
        try:
            meta = json.loads(sidecar.read_text("utf-8"))
            box = MailboxAddress(str(meta["tenant"]), str(meta["mailbox"]))
            message_id = str(meta["id"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("voicemail_orphan_unreadable", path=str(sidecar), error=str(exc))
            return 0
        wav = sidecar.with_suffix(".wav")
        if message_id in self._messages.get(box, {}):  # filed just before the stop
            for path in (wav, sidecar):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            return 0
        samples = await asyncio.to_thread(said, wav) if wav.exists() else np.zeros(0, np.int16)
        found = self.box(box.tenant, box.mailbox)
        stored = await self._file(
            box,
            message_id,
            samples,
            str(meta.get("caller_number", "")),
            str(meta.get("caller_name", "")),
            float(meta.get("received", self.clock())),
            bool(meta.get("urgent", False)),
            found.min_seconds if found is not None else 0.0,
            (wav, sidecar),
        )
        if stored is not None:
            log.info("voicemail_recovered", tenant=box.tenant, mailbox=box.mailbox, id=message_id)
        return int(stored is not None)

    # ------------------------------------------------------------------ greetings

    def greeting_file(self, box: MailboxAddress, kind: Greeting) -> Path:
        return self._dir(box) / "greetings" / f"{kind.value}.wav"

    def greeting(self, box: Box, kind: Greeting) -> Path | str | None:
        """The recorded greeting, else its text (spoken by TTS), else None."""
        path = self.greeting_file(box.address, kind)
        if path.is_file():
            return path
        return box.settings.greetings.get(kind)

    async def set_greeting(self, box: MailboxAddress, kind: Greeting, source: Path) -> Path:
        """Convert ``source`` (any audio a prompt may be) into the greeting."""
        target = self.greeting_file(box, kind)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            await asyncio.to_thread(convert_file, source, target)
        except ConversionError as exc:
            raise VoicemailError(str(exc)) from None
        log.info("voicemail_greeting_set", tenant=box.tenant, mailbox=box.mailbox, kind=kind.value)
        return target

    def remove_greeting(self, box: MailboxAddress, kind: Greeting) -> bool:
        try:
            self.greeting_file(box, kind).unlink()
        except FileNotFoundError:
            return False
        return True

    # ------------------------------------------------------------------ PIN

    async def check_pin(self, box: Box, entered: str) -> PinCheck:
        """Check a PIN entry, counting wrong ones towards the lockout."""
        state = await self.store.mailbox_state(box.address.tenant, box.address.mailbox)
        now = self.clock()
        if state.locked_until > now:
            return PinCheck.LOCKED
        pin = state.pin or box.pin
        if pin is not None and entered == pin:
            if state.failures or state.locked_until:
                await self.store.save_mailbox_state(_state(state, failures=0, locked_until=0.0))
            return PinCheck.OK
        t = self._tenants[box.address.tenant].voicemail
        failures = state.failures + 1
        locked = 0.0
        if failures >= t.pin_attempts:
            locked = now + t.lockout_minutes * 60 if t.lockout_minutes else math.inf
            failures = 0
            log.warning(
                "voicemail_locked",
                tenant=box.address.tenant,
                mailbox=box.address.mailbox,
                minutes=t.lockout_minutes or "until unlocked",
            )
        await self.store.save_mailbox_state(_state(state, failures=failures, locked_until=locked))
        return PinCheck.LOCKED if locked else PinCheck.WRONG

    async def has_pin(self, box: Box) -> bool:
        state = await self.store.mailbox_state(box.address.tenant, box.address.mailbox)
        return (state.pin or box.pin) is not None

    async def locked(self, box: Box) -> bool:
        state = await self.store.mailbox_state(box.address.tenant, box.address.mailbox)
        return state.locked_until > self.clock()

    async def unlock(self, box: MailboxAddress) -> None:
        """Lift a lockout (and forget wrong entries)."""
        state = await self.store.mailbox_state(box.tenant, box.mailbox)
        await self.store.save_mailbox_state(_state(state, failures=0, locked_until=0.0))

    async def change_pin(self, box: MailboxAddress, pin: str) -> None:
        if not ((pin.isascii() and pin.isdigit()) and 4 <= len(pin) <= 12):
            raise VoicemailError("a PIN is 4 to 12 digits")
        state = await self.store.mailbox_state(box.tenant, box.mailbox)
        await self.store.save_mailbox_state(
            MailboxState(state.tenant, state.mailbox, pin, state.failures, state.locked_until)
        )


def _has_mailbox(tenant: Tenant, extension: str) -> bool:
    """Every user has a mailbox unless their routing turns it off; any other extension
    has one when the tenant's routing names it a shared mailbox."""
    if tenant.user_by_extension(extension) is not None:
        routing = tenant.routing.users.get(extension)
        return routing is None or routing.voicemail
    return extension in tenant.routing.mailboxes


def _state(s: MailboxState, *, failures: int, locked_until: float) -> MailboxState:
    return MailboxState(s.tenant, s.mailbox, s.pin, failures, locked_until)


def _new_id() -> str:
    return uuid.uuid4().hex


def _write_sidecar(rec: Recording) -> None:
    meta = {
        "id": rec.id,
        "tenant": rec.box.address.tenant,
        "mailbox": rec.box.address.mailbox,
        "caller_number": rec.caller_number,
        "caller_name": rec.caller_name,
        "received": rec.received,
        "urgent": rec.urgent,
    }
    tmp = rec.sidecar.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta), "utf-8")
    os.replace(tmp, rec.sidecar)


if TYPE_CHECKING:

    def _is_a_directory(boxes: Mailboxes) -> MailboxDirectory:
        return boxes  # mypy checks that Mailboxes is the notifier's MailboxDirectory
