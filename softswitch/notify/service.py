"""The switch's notifications in one place: the notifier with its packages (busy lamps
always; message waiting once the voicemail hands over its mailboxes) and voicemail mail.

The voicemail wires itself in with :meth:`Notifications.attach_mailboxes`, which returns
the :class:`MailboxListener` to call on every mailbox change.
"""

from __future__ import annotations

from config.smtp import SmtpSettings, SubscriptionSettings
from softswitch.directory import Subscriber
from softswitch.location import LocationService
from softswitch.notify.lamps import LAMP_WINDOW, LampBoard
from softswitch.notify.mail_notifier import MailNotifier
from softswitch.notify.mailer import Mailer
from softswitch.notify.mwi import MessageWaiting
from softswitch.notify.subscriptions import Notifier
from softswitch.voicemail.events import (
    MailboxAddress,
    MailboxDirectory,
    MailboxListener,
    MessageCounts,
    VoiceMessage,
)

__all__ = ["Notifications"]


class Notifications:
    """Busy lamps, message-waiting lamps and voicemail mail (see the module docstring);
    itself the mailbox listener :meth:`attach_mailboxes` hands out."""

    def __init__(
        self,
        notifier: Notifier,
        location: LocationService,
        subscriptions: SubscriptionSettings,
        smtp: SmtpSettings | None,
    ) -> None:
        self.notifier = notifier
        self.location = location
        self.subscriptions = subscriptions
        self.smtp = smtp
        self.lamps = LampBoard(notifier, LAMP_WINDOW)
        notifier.serve(self.lamps)
        self.mailboxes: MailboxDirectory | None = None
        self.message_waiting: MessageWaiting | None = None
        self.mail: MailNotifier | None = None

    def attach_mailboxes(self, mailboxes: MailboxDirectory) -> MailboxListener:
        """Serve message-summary from ``mailboxes`` and mail per their settings (when
        ``[smtp]`` is configured); returns the listener the voicemail calls."""
        self.mailboxes = mailboxes
        self.message_waiting = MessageWaiting(
            self.notifier,
            self.location,
            mailboxes,
            unsolicited=self.subscriptions.unsolicited_mwi,
        )
        self.notifier.serve(self.message_waiting)
        if self.smtp is not None:
            self.mail = MailNotifier(Mailer(self.smtp), mailboxes)
        return self

    def contact_added(self, subscriber: Subscriber, domain: str) -> None:
        """A REGISTER added a contact (the dispatcher's hook): message waiting for new
        phones."""
        mwi = self.message_waiting
        if mwi is not None:
            mwi.phone_registered(subscriber.tenant.name, domain, subscriber.user.extension)

    # ----------------------------------------------------------------- MailboxListener
    def message_left(
        self, box: MailboxAddress, message: VoiceMessage, counts: MessageCounts
    ) -> None:
        if self.message_waiting is not None:
            self.message_waiting.message_left(box, message, counts)
        if self.mail is not None:
            self.mail.message_left(box, message, counts)

    def counts_changed(self, box: MailboxAddress, counts: MessageCounts) -> None:
        if self.message_waiting is not None:
            self.message_waiting.counts_changed(box, counts)
        if self.mail is not None:
            self.mail.counts_changed(box, counts)

    def remind(self, box: MailboxAddress) -> None:
        """Resume email reminders for a mailbox with new messages (after a restart)."""
        mail, mailboxes = self.mail, self.mailboxes
        if mail is not None and mailboxes is not None and mailboxes.counts(box).waiting:
            mail.remind(box)

    async def stop(self) -> None:
        """Subscribers told the switch is going; mail in flight given a moment."""
        self.notifier.stop()
        if self.mail is not None:
            await self.mail.stop()
