"""Voicemail notification mail: the message itself (caller, time, duration, the WAV) and
reminders of messages still unheard. Pure composition; sending is softswitch.notify.mailer.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from config.smtp import SmtpSettings
from config.voicemail import EmailNotification
from softswitch.voicemail.events import MailboxAddress, MessageCounts, VoiceMessage

__all__ = ["duration_text", "message_mail", "reminder_mail"]


def duration_text(seconds: float) -> str:
    """``1:05`` for 65.2 seconds."""
    whole = max(0, round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def _caller(message: VoiceMessage) -> str:
    number = message.caller_number or "unknown number"
    return f"{message.caller_name} ({number})" if message.caller_name else number


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _envelope(smtp: SmtpSettings, email: EmailNotification, subject: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = formataddr((smtp.from_name, smtp.from_address))
    mail["To"] = ", ".join(email.to)
    mail["Subject"] = subject
    mail["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    mail["Message-ID"] = make_msgid(domain=smtp.from_address.rpartition("@")[2])
    return mail


def message_mail(
    smtp: SmtpSettings,
    email: EmailNotification,
    box: MailboxAddress,
    message: VoiceMessage,
    counts: MessageCounts,
    audio: bytes | None,
) -> EmailMessage:
    """The mail telling of ``message`` left in ``box``; ``audio`` (the WAV file's bytes)
    is attached when given."""
    urgent = "Urgent voicemail" if message.urgent else "New voicemail"
    subject = f"{urgent} from {_caller(message)}, {duration_text(message.duration)}"
    mail = _envelope(smtp, email, subject)
    lines = [
        f"Mailbox {box.mailbox} has a new message.",
        "",
        f"From:     {_caller(message)}",
        f"Received: {_time(message.received)}",
        f"Length:   {duration_text(message.duration)} ({message.duration:.1f} s)",
    ]
    if message.urgent:
        lines.append("Marked urgent by the caller.")
    lines += ["", f"Messages now: {counts.new} new, {counts.old} saved."]
    if audio is not None:
        lines.append("The message is attached as a WAV file.")
    mail.set_content("\n".join(lines) + "\n")
    if audio is not None:
        stamp = message.received.astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
        mail.add_attachment(
            audio, maintype="audio", subtype="wav", filename=f"voicemail-{stamp}-{message.id}.wav"
        )
    return mail


def reminder_mail(
    smtp: SmtpSettings,
    email: EmailNotification,
    box: MailboxAddress,
    messages: tuple[VoiceMessage, ...],
    counts: MessageCounts,
) -> EmailMessage:
    """A reminder that ``messages`` in ``box`` are still unheard."""
    count = counts.new or len(messages)
    plural = "message" if count == 1 else "messages"
    subject = f"Reminder: {count} new voicemail {plural} in mailbox {box.mailbox}"
    mail = _envelope(smtp, email, subject)
    lines = [f"Mailbox {box.mailbox} has {count} new {plural} not heard yet:", ""]
    for message in messages:
        lines.append(
            f"- {_time(message.received)}  {_caller(message)}  {duration_text(message.duration)}"
        )
    mail.set_content("\n".join(lines) + "\n")
    return mail
