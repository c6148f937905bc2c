"""Mail out through the configured SMTP server (``[smtp]``), without blocking the loop.

The standard library's smtplib runs in a worker thread (``asyncio.to_thread``): it speaks
SMTP, ESMTP AUTH, STARTTLS and implicit TLS as every relay expects, needs no dependency, and
a notification mail is rare enough that a thread per send costs nothing. A temporary
failure (the server unreachable, a 4xx answer, a dropped connection) is retried with
doubling waits; what still fails is logged as an error event naming the mail, never lost
silently.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

import structlog

from config.smtp import SmtpSettings

__all__ = ["Delivery", "Mailer"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a mail ended: ``accepted`` by the server for every recipient, else why not."""

    accepted: bool
    refused: tuple[str, ...] = ()
    error: str = ""
    attempts: int = 0


class _Temporary(Exception):
    pass


class Mailer:
    """Hands mail to the SMTP server of ``settings``."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.sent = 0
        self.failed = 0

    async def send(self, mail: EmailMessage, *, what: str) -> Delivery:
        """Send ``mail``, retrying temporary failures; ``what`` names it in the log."""
        settings = self.settings
        delay = settings.retry_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                refused = await asyncio.to_thread(self._send_now, mail)
            except _Temporary as error:
                if attempt > settings.retries:
                    return self._lost(mail, what, f"gave up: {error}", attempt)
                log.warning(
                    "mail_retry", what=what, attempt=attempt, error=str(error), wait_s=delay
                )
                await asyncio.sleep(delay)
                delay *= 2
                continue
            except (smtplib.SMTPException, ssl.SSLError, OSError, ValueError) as error:
                return self._lost(mail, what, str(error) or type(error).__name__, attempt)
            if refused:
                self.failed += 1
                log.error(
                    "mail_recipients_refused", what=what, refused=sorted(refused), attempts=attempt
                )
                return Delivery(False, tuple(sorted(refused)), "recipients refused", attempt)
            self.sent += 1
            log.info("mail_sent", what=what, to=mail["To"], attempts=attempt)
            return Delivery(True, attempts=attempt)

    def _lost(self, mail: EmailMessage, what: str, error: str, attempts: int) -> Delivery:
        self.failed += 1
        log.error("mail_not_delivered", what=what, to=mail["To"], error=error, attempts=attempts)
        return Delivery(False, error=error, attempts=attempts)

    def _send_now(self, mail: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """One attempt (in a worker thread); the recipients refused, by address."""
        settings = self.settings
        context = ssl.create_default_context()
        if not settings.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            client: smtplib.SMTP
            if settings.security == "tls":
                client = smtplib.SMTP_SSL(
                    settings.host, settings.port, timeout=settings.timeout, context=context
                )
            else:
                client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            with client:
                if settings.security == "starttls":
                    client.starttls(context=context)
                if settings.username is not None and settings.password is not None:
                    client.login(settings.username, settings.password.get_secret_value())
                return client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            if codes and all(400 <= code < 500 for code in codes):
                raise _Temporary(f"recipients deferred: {codes}") from error
            return dict(error.recipients)
        except smtplib.SMTPResponseException as error:
            if 400 <= error.smtp_code < 500:
                raise _Temporary(f"{error.smtp_code} {error.smtp_error!r}") from error
            raise
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError) as error:
            raise _Temporary(str(error) or type(error).__name__) from error
        except TimeoutError as error:
            raise _Temporary("timed out") from error
        except (ssl.SSLError, smtplib.SMTPException):
            raise  # a certificate, a login, an extension the server lacks: not a retry
        except OSError as error:  # refused, unreachable: the server may be back soon
            raise _Temporary(str(error)) from error
