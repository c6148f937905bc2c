"""Email notification of voicemail: a mail per new message, reminders while messages stay
new, delete after email.

A :class:`MailboxListener` of the voicemail: ``message_left`` mails the message per the
mailbox's :class:`EmailNotification` (to each address, the WAV attached or not) and, when
the mailbox deletes after email, deletes the message through the directory once the
server accepted the mail for every address (never before, never after a failure: then
the message stays in the mailbox). While new messages stay, a reminder goes out every
``reminder_minutes``; counts with nothing new cancel it. All of it runs in tasks on the
loop; the SMTP conversation itself in a worker thread (softswitch.notify.mailer).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import structlog

from softswitch.notify.mail import message_mail, reminder_mail
from softswitch.notify.mailer import Mailer
from softswitch.voicemail.events import (
    MailboxAddress,
    MailboxDirectory,
    MessageCounts,
    VoiceMessage,
)

__all__ = ["MailNotifier"]

log = structlog.get_logger(__name__)


class MailNotifier:
    """Mails voicemail (see the module docstring). ``minute`` is the length of a reminder
    minute in seconds (60; tests shorten it)."""

    def __init__(self, mailer: Mailer, mailboxes: MailboxDirectory, *, minute: float = 60.0):
        self.mailer = mailer
        self.mailboxes = mailboxes
        self.minute = minute
        self._tasks: set[asyncio.Task[None]] = set()
        self._reminders: dict[MailboxAddress, asyncio.Task[None]] = {}
        self.reminders_sent = 0

    # ----------------------------------------------------------------- MailboxListener
    def message_left(
        self, box: MailboxAddress, message: VoiceMessage, counts: MessageCounts
    ) -> None:
        email = self.mailboxes.email(box)
        if email is None:
            return
        self._spawn(self._mail_message(box, message, counts), f"voicemail-mail-{message.id}")
        if counts.waiting:
            self.remind(box)

    def remind(self, box: MailboxAddress) -> bool:
        """Start ``box``'s reminders if its settings ask for them and none run (the
        voicemail calls this at start-up for mailboxes with new messages, so reminders
        outlive a restart); True when they run."""
        email = self.mailboxes.email(box)
        if email is None or not email.reminder_minutes:
            return False
        if box not in self._reminders:
            task = self._spawn(self._remind(box), f"voicemail-reminder-{box.mailbox}")
            self._reminders[box] = task
        return True

    def counts_changed(self, box: MailboxAddress, counts: MessageCounts) -> None:
        if not counts.waiting:
            task = self._reminders.pop(box, None)
            if task is not None:
                task.cancel()

    # ----------------------------------------------------------------- the work
    async def _mail_message(
        self, box: MailboxAddress, message: VoiceMessage, counts: MessageCounts
    ) -> None:
        email = self.mailboxes.email(box)
        if email is None:
            return
        what = f"voicemail {box.tenant}/{box.mailbox}/{message.id}"
        audio = None
        if email.attach_audio:
            try:
                audio = await asyncio.to_thread(Path(message.audio).read_bytes)
            except OSError as error:
                log.error("voicemail_audio_unreadable", what=what, error=str(error))
        mail = message_mail(self.mailer.settings, email, box, message, counts, audio)
        delivery = await self.mailer.send(mail, what=what)
        if delivery.accepted and email.delete_after_email and audio is not None:
            await self.mailboxes.delete(box, message.id)
            log.info("voicemail_deleted_after_email", what=what)

    async def _remind(self, box: MailboxAddress) -> None:
        try:
            while True:
                email = self.mailboxes.email(box)
                if email is None or not email.reminder_minutes:
                    return
                await asyncio.sleep(email.reminder_minutes * self.minute)
                counts = self.mailboxes.counts(box)
                email = self.mailboxes.email(box)
                if not counts.waiting or email is None:
                    return
                messages = self.mailboxes.new_messages(box)
                mail = reminder_mail(self.mailer.settings, email, box, messages, counts)
                delivery = await self.mailer.send(
                    mail, what=f"voicemail reminder {box.tenant}/{box.mailbox}"
                )
                if delivery.accepted:
                    self.reminders_sent += 1
        finally:
            if self._reminders.get(box) is asyncio.current_task():
                del self._reminders[box]

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("voicemail_mail_failed", task=task.get_name(), error=repr(task.exception()))

    async def stop(self, grace: float = 10.0) -> None:
        """Cancel reminders; give mails being sent ``grace`` seconds, then log each one
        still unsent as an error (they are not lost silently)."""
        for task in list(self._reminders.values()):
            task.cancel()
        pending = [t for t in self._tasks if not t.get_name().startswith("voicemail-reminder")]
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                log.error("mail_not_delivered", what=task.get_name(), error="switch stopping")
                task.cancel()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
