"""Message-waiting lamps: the ``message-summary`` event package (RFC 3842).

Counts come from the voicemail's :class:`MailboxDirectory`; every change the voicemail
reports (it calls this :class:`MailboxListener`) is NOTIFYed to the mailbox's subscribers,
and, as Asterisk and FreeSWITCH do for phones set up that way, sent unsolicited (a NOTIFY
outside any dialog) to the registered phones of the mailbox's lamp users that hold no
subscription of their own.
"""

from __future__ import annotations

import structlog

from softswitch.directory import Domain, Subscriber
from softswitch.location import LocationService
from softswitch.notify.subscriptions import Notifier, SubscriptionRefused
from softswitch.sip.address import Address
from softswitch.sip.dialog import uri_address
from softswitch.sip.message import SipParseError, make_request, new_call_id, new_tag
from softswitch.sip.subscription import EventPackage, Subscription
from softswitch.voicemail.events import (
    MailboxAddress,
    MailboxDirectory,
    MessageCounts,
    VoiceMessage,
)
from storage.base import Binding

__all__ = ["MWI_PACKAGE", "MessageWaiting", "message_summary"]

log = structlog.get_logger(__name__)

MWI_PACKAGE = EventPackage(
    "message-summary", "application/simple-message-summary", default_expires=3600
)


def message_summary(counts: MessageCounts, account: str) -> bytes:
    """The RFC 3842 body for ``counts`` of the mailbox at ``account`` (a SIP URI)."""
    return (
        f"Messages-Waiting: {'yes' if counts.waiting else 'no'}\r\n"
        f"Message-Account: {account}\r\n"
        f"Voice-Message: {counts.new}/{counts.old} ({counts.urgent_new}/{counts.urgent_old})\r\n"
    ).encode()


class MessageWaiting:
    """The message-summary package and the voicemail's listener for it."""

    package = MWI_PACKAGE

    def __init__(
        self,
        notifier: Notifier,
        location: LocationService,
        mailboxes: MailboxDirectory,
        *,
        unsolicited: bool = True,
    ) -> None:
        self.notifier = notifier
        self.location = location
        self.mailboxes = mailboxes
        self.unsolicited = unsolicited
        self.unsolicited_sent = 0
        # Contacts per AOR already told at registration (a re-REGISTER tells nothing new).
        self._known: dict[str, set[str]] = {}

    # ----------------------------------------------------------------- the package
    def resource(self, domain: Domain, subscriber: Subscriber, name: str) -> str:
        """The mailbox whose lamp ``name`` shows: the subscriber's own, or one whose lamp
        they are among the users of."""
        tenant = domain.tenant.name
        box = self.mailboxes.mailbox_of(tenant, name)
        if box is None:
            raise SubscriptionRefused(404, "No Such Mailbox")
        user = subscriber.user
        own = name in (user.extension, user.username)
        if not own and user.extension not in self.mailboxes.lamp_users(box):
            raise SubscriptionRefused(403, "Forbidden")
        return _key(box)

    def body(self, sub: Subscription) -> bytes:
        tenant, _, mailbox = sub.resource.partition("/")
        box = MailboxAddress(tenant, mailbox)
        return message_summary(self.mailboxes.counts(box), self._account(box))

    def _account(self, box: MailboxAddress) -> str:
        tenant = self.notifier.tenants.get(box.tenant)
        return f"sip:{box.mailbox}@{tenant.domain if tenant is not None else box.tenant}"

    # ----------------------------------------------------------------- MailboxListener
    def message_left(
        self, box: MailboxAddress, message: VoiceMessage, counts: MessageCounts
    ) -> None:
        self.counts_changed(box, counts)

    def counts_changed(self, box: MailboxAddress, counts: MessageCounts) -> None:
        self.notifier.publish(self.package.name, _key(box))
        if self.unsolicited:
            self.notify_phones(box, counts)

    def notify_phones(
        self,
        box: MailboxAddress,
        counts: MessageCounts | None = None,
        *,
        only: tuple[str, set[str]] | None = None,
    ) -> int:
        """Unsolicited NOTIFYs to the lamp users' registered phones that do not
        subscribe (``only``: to these contacts of this AOR); returns how many were sent."""
        tenant = self.notifier.tenants.get(box.tenant)
        if tenant is None:
            return 0
        if counts is None:
            counts = self.mailboxes.counts(box)
        body = message_summary(counts, self._account(box))
        sent = 0
        for extension in self.mailboxes.lamp_users(box):
            aor = f"sip:{extension}@{tenant.domain}"
            if only is not None and only[0] != aor:
                continue
            subscriptions = self.notifier.subscribed(self.package.name, aor)
            bindings = self.location.bindings(aor)
            if only is None:
                # Every phone now shows the state: a later REGISTER tells only new ones
                # (phone_registered skips an AOR's phones while its mailbox has nothing new).
                self._known[aor] = {b.contact for b in bindings}
            for binding in bindings:
                if only is not None and binding.contact not in only[1]:
                    continue
                dest = self._destination(binding)
                if dest is None or any(
                    sub.peer == dest or sub.dialog.remote_target == binding.contact
                    for sub in subscriptions
                ):
                    continue
                try:
                    request = make_request(
                        "NOTIFY",
                        binding.contact,
                        via=self.notifier.via(dest),
                        from_=f"<{self._account(box)}>;tag={new_tag()}",
                        to=f"<{aor}>",
                        call_id=new_call_id(),
                        cseq=1,
                        routes=binding.path,
                        headers=(
                            ("Event", self.package.name),
                            ("Subscription-State", "active"),
                        ),
                        body=body,
                        content_type=self.package.content_type,
                    )
                    self.notifier.send_request(request, dest)
                except (SipParseError, ValueError, OSError) as error:
                    log.warning("mwi_not_sent", contact=binding.contact, error=str(error))
                    continue
                sent += 1
        self.unsolicited_sent += sent
        return sent

    def phone_registered(self, tenant: str, domain: str, user: str) -> int:
        """A user's REGISTER was accepted: a phone that newly appeared among their
        contacts gets its lamp lit unsolicited (unless it subscribes) when the mailbox has
        new messages; returns how many NOTIFYs went out. A lamp is dark until told
        otherwise, so an empty mailbox sends nothing: devices that never asked for
        message waiting (trunk-facing gateways, test agents) see no NOTIFY they did not
        expect."""
        # Most mailboxes hold no new message: one set lookup settles those (the rest of
        # this runs for every phone that registers anew, hundreds a second at a restart).
        if not self.unsolicited or not self.mailboxes.has_new(tenant, user):
            return 0
        box = self.mailboxes.mailbox_of(tenant, user)
        if box is None:
            return 0
        aor = f"sip:{user}@{domain}"
        contacts = {b.contact for b in self.location.bindings(aor)}
        known = self._known.get(aor, set())
        self._known[aor] = contacts
        fresh = contacts - known
        if not fresh or not self.mailboxes.counts(box).waiting:
            return 0
        return self.notify_phones(box, only=(aor, fresh))

    def _destination(self, binding: Binding) -> Address | None:
        try:
            if binding.path:
                first = binding.path[0]
                start, end = first.find("<"), first.find(">")
                return uri_address(first[start + 1 : end] if 0 <= start < end else first)
            source = self.location.source(binding)
            return source if source is not None else uri_address(binding.contact)
        except SipParseError:
            return None


def _key(box: MailboxAddress) -> str:
    return f"{box.tenant}/{box.mailbox}"
