"""Voicemail mail through a real SMTP server (aiosmtpd on loopback): the message with its
WAV attached to several addresses, caller, time and length in the text; delete after email
only once the server accepted it; a reminder while the message stays new, stopped when it
is heard; the server down and then up (retried); a refused mail logged, never lost
silently."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ssl
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from structlog.testing import capture_logs

from config.smtp import SmtpSettings
from config.voicemail import EmailNotification
from peers.switchproc import free_port
from softswitch.notify.mail_notifier import MailNotifier
from softswitch.notify.mailer import Mailer
from softswitch.voicemail.events import MailboxAddress, MessageCounts, VoiceMessage
from tests.integration.tlskit import self_signed

pytestmark = pytest.mark.integration

BOX = MailboxAddress("acme", "101")


class Inbox:
    """An aiosmtpd handler keeping what it accepted; ``refuse`` answers RCPT with 550."""

    def __init__(self) -> None:
        self.mails: list[tuple[tuple[str, ...], email.message.EmailMessage]] = []
        self.refuse = False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse:
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.append((tuple(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 Message accepted"


class Mailboxes:
    """A MailboxDirectory test double holding one mailbox."""

    def __init__(self, settings: EmailNotification, new: tuple[VoiceMessage, ...]) -> None:
        self.settings = settings
        self.new = new
        self.deleted: list[str] = []

    def mailbox_of(self, tenant: str, user: str) -> MailboxAddress | None:
        return BOX

    def counts(self, box: MailboxAddress) -> MessageCounts:
        return MessageCounts(new=len(self.new))

    def has_new(self, tenant: str, mailbox: str) -> bool:
        return bool(self.new)

    def lamp_users(self, box: MailboxAddress) -> tuple[str, ...]:
        return ("101",)

    def email(self, box: MailboxAddress) -> EmailNotification | None:
        return self.settings

    def new_messages(self, box: MailboxAddress) -> tuple[VoiceMessage, ...]:
        return self.new

    async def delete(self, box: MailboxAddress, message_id: str) -> None:
        self.deleted.append(message_id)


@pytest.fixture
def smtp_port() -> int:
    return free_port(both=False)


@pytest.fixture
def inbox(smtp_port: int) -> Iterator[Inbox]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield handler
    controller.stop()


def settings(port: int, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": "voicemail@pbx.test",
        "timeout": 5,
        "retries": 3,
        "retry_delay": 0.2,
    }
    values.update(overrides)
    return SmtpSettings.model_validate(values)


def voice_message(tmp_path: Path, seconds: float = 3.0) -> VoiceMessage:
    path = tmp_path / "msg.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(range(256)) * int(8000 * 2 * seconds / 256))
    received = dt.datetime(2026, 12, 7, 9, 30, 5, tzinfo=dt.UTC)
    return VoiceMessage("m1", "0301234567", "Alice Caller", received, seconds, False, path)


async def wait_for(condition: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_mail_with_the_wav_to_several_addresses(
    inbox: Inbox, smtp_port: int, tmp_path: Path
) -> None:
    message = voice_message(tmp_path)
    notification = EmailNotification(to=("bob@example.test", "desk@example.test"))
    notifier = MailNotifier(Mailer(settings(smtp_port)), Mailboxes(notification, (message,)))
    notifier.message_left(BOX, message, MessageCounts(new=1))
    await wait_for(lambda: inbox.mails)
    recipients, mail = inbox.mails[0]
    assert set(recipients) == {"bob@example.test", "desk@example.test"}
    assert "Alice Caller (0301234567)" in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    content = text.get_content()
    assert "2026-12-07 09:30:05 UTC" in content and "0:03" in content
    attachments = list(mail.iter_attachments())
    assert len(attachments) == 1
    assert attachments[0].get_content_type() == "audio/wav"
    assert attachments[0].get_content() == message.audio.read_bytes()
    await notifier.stop()


async def test_without_audio_no_attachment(inbox: Inbox, smtp_port: int, tmp_path: Path) -> None:
    message = voice_message(tmp_path)
    notification = EmailNotification(to=("bob@example.test",), attach_audio=False)
    notifier = MailNotifier(Mailer(settings(smtp_port)), Mailboxes(notification, (message,)))
    notifier.message_left(BOX, message, MessageCounts(new=1))
    await wait_for(lambda: inbox.mails)
    assert list(inbox.mails[0][1].iter_attachments()) == []
    await notifier.stop()


async def test_delete_after_email_only_once_accepted(
    inbox: Inbox, smtp_port: int, tmp_path: Path
) -> None:
    message = voice_message(tmp_path)
    notification = EmailNotification(to=("bob@example.test",), delete_after_email=True)
    mailboxes = Mailboxes(notification, (message,))
    notifier = MailNotifier(Mailer(settings(smtp_port)), mailboxes)
    inbox.refuse = True  # a permanent refusal: the message must stay
    with capture_logs() as logs:
        notifier.message_left(BOX, message, MessageCounts(new=1))
        await wait_for(lambda: any(e["log_level"] == "error" for e in logs))
    assert mailboxes.deleted == []
    assert any(e["event"] == "mail_recipients_refused" for e in logs)
    inbox.refuse = False
    notifier.message_left(BOX, message, MessageCounts(new=1))
    await wait_for(lambda: mailboxes.deleted == ["m1"])
    assert len(inbox.mails) == 1
    await notifier.stop()


async def test_reminder_while_new_then_stopped_when_heard(
    inbox: Inbox, smtp_port: int, tmp_path: Path
) -> None:
    message = voice_message(tmp_path)
    notification = EmailNotification(to=("bob@example.test",), reminder_minutes=1)
    mailboxes = Mailboxes(notification, (message,))
    # A reminder "minute" of 0.3 s: the schedule is the mailbox's, the wait is shortened.
    notifier = MailNotifier(Mailer(settings(smtp_port)), mailboxes, minute=0.3)
    notifier.message_left(BOX, message, MessageCounts(new=1))
    await wait_for(lambda: notifier.reminders_sent >= 1)
    subjects = [mail["Subject"] for _, mail in inbox.mails]
    assert any(s.startswith("Reminder: 1 new voicemail message") for s in subjects)
    reminder = next(mail for _, mail in inbox.mails if mail["Subject"].startswith("Reminder"))
    body = reminder.get_body(preferencelist=("plain",))
    assert body is not None and "Alice Caller" in body.get_content()
    mailboxes.new = ()
    notifier.counts_changed(BOX, MessageCounts(old=1))
    await wait_for(lambda: not notifier._reminders)
    await notifier.stop()


async def test_server_down_then_up_is_retried(smtp_port: int, tmp_path: Path) -> None:
    message = voice_message(tmp_path)
    notification = EmailNotification(to=("bob@example.test",))
    mailer = Mailer(settings(smtp_port, retries=6))
    notifier = MailNotifier(mailer, Mailboxes(notification, (message,)))
    handler = Inbox()
    with capture_logs() as logs:
        notifier.message_left(BOX, message, MessageCounts(new=1))
        await wait_for(lambda: any(e["event"] == "mail_retry" for e in logs))
        controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        try:
            await wait_for(lambda: mailer.sent == 1, timeout=30)
        finally:
            controller.stop()
    sent = [e for e in logs if e["event"] == "mail_sent"]
    assert sent and sent[0]["attempts"] > 1
    assert mailer.sent == 1 and mailer.failed == 0
    await notifier.stop()


async def test_server_never_up_is_an_error_event(smtp_port: int, tmp_path: Path) -> None:
    message = voice_message(tmp_path)
    mailer = Mailer(settings(smtp_port, retries=1))
    notifier = MailNotifier(
        mailer, Mailboxes(EmailNotification(to=("bob@example.test",)), (message,))
    )
    with capture_logs() as logs:
        notifier.message_left(BOX, message, MessageCounts(new=1))
        await wait_for(lambda: mailer.failed == 1)
    lost = [e for e in logs if e["event"] == "mail_not_delivered"]
    assert lost and lost[0]["log_level"] == "error" and lost[0]["attempts"] == 2
    assert "voicemail acme/101/m1" in lost[0]["what"]
    await notifier.stop()


def server_context(directory: Path) -> ssl.SSLContext:
    """A server context with a throwaway certificate for 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*self_signed(directory))
    return context


class Logins:
    """An aiosmtpd authenticator that accepts one user and remembers who logged in."""

    def __init__(self) -> None:
        self.users: list[str] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"pbx",
            b"s3cret",
        )
        if ok:
            self.users.append("pbx")
        return AuthResult(success=ok)


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_and_login(security: str, smtp_port: int, tmp_path: Path) -> None:
    context = server_context(tmp_path)
    handler, logins = Inbox(), Logins()
    options: dict[str, Any] = {"authenticator": logins, "auth_require_tls": True}
    if security == "starttls":
        options |= {"tls_context": context, "require_starttls": True}
    else:
        # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is TLS throughout.
        options |= {"ssl_context": context, "auth_require_tls": False}
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port, **options)
    controller.start()
    try:
        mailer = Mailer(
            settings(
                smtp_port,
                security=security,
                username="pbx",
                password="s3cret",
                verify_certificate=False,  # the throwaway certificate is self-signed
            )
        )
        message = voice_message(tmp_path)
        notifier = MailNotifier(
            mailer, Mailboxes(EmailNotification(to=("bob@example.test",)), (message,))
        )
        notifier.message_left(BOX, message, MessageCounts(new=1))
        await wait_for(lambda: handler.mails or mailer.failed)
        assert handler.mails and logins.users == ["pbx"]
        await notifier.stop()
    finally:
        controller.stop()


async def test_wrong_login_is_not_retried(smtp_port: int, tmp_path: Path) -> None:
    context = server_context(tmp_path)
    controller = Controller(
        Inbox(),
        hostname="127.0.0.1",
        port=smtp_port,
        authenticator=Logins(),
        tls_context=context,
        require_starttls=True,
    )
    controller.start()
    try:
        mailer = Mailer(
            settings(
                smtp_port,
                username="pbx",
                password="wrong",
                verify_certificate=False,
            )
        )
        message = voice_message(tmp_path)
        notifier = MailNotifier(
            mailer, Mailboxes(EmailNotification(to=("bob@example.test",)), (message,))
        )
        with capture_logs() as logs:
            notifier.message_left(BOX, message, MessageCounts(new=1))
            await wait_for(lambda: mailer.failed == 1)
        lost = [e for e in logs if e["event"] == "mail_not_delivered"]
        assert lost and lost[0]["attempts"] == 1
        assert not [e for e in logs if e["event"] == "mail_retry"]
        await notifier.stop()
    finally:
        controller.stop()


async def test_reminders_resume_after_a_restart(
    inbox: Inbox, smtp_port: int, tmp_path: Path
) -> None:
    """A new notifier (the switch restarted) told of a mailbox with new messages reminds
    without a new message being left; a mailbox without reminders says so."""
    message = voice_message(tmp_path)
    mailboxes = Mailboxes(
        EmailNotification(to=("bob@example.test",), reminder_minutes=1), (message,)
    )
    notifier = MailNotifier(Mailer(settings(smtp_port)), mailboxes, minute=0.3)
    assert notifier.remind(BOX)
    await wait_for(lambda: notifier.reminders_sent >= 1)
    assert inbox.mails[0][1]["Subject"].startswith("Reminder")
    await notifier.stop()
    quiet = MailNotifier(
        Mailer(settings(smtp_port)),
        Mailboxes(EmailNotification(to=("bob@example.test",)), (message,)),
    )
    assert not quiet.remind(BOX)
