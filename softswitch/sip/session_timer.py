"""RFC 4028 session timers: what a request or 2xx says, and what the dialog layer answers.

Pure functions over messages; the dialog layer (softswitch.sip.dialog_layer) keeps the
timers themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from softswitch.sip.message import SipMessage, SipRequest, SipResponse

__all__ = [
    "MIN_SE",
    "SessionExpires",
    "add_session_timer",
    "expiry_delay",
    "keep_session_timer",
    "session_expires",
    "supports_timer",
    "too_short",
]

#: The smallest session interval RFC 4028 (section 4) allows, and our default Min-SE.
MIN_SE = 90


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A Session-Expires header: ``interval`` seconds, ``refresher`` "uac"/"uas" or ""."""

    interval: int
    refresher: str


def session_expires(message: SipMessage) -> SessionExpires | None:
    """The Session-Expires (or its compact form ``x``) of a message; None when absent or
    unreadable (a header we cannot read is as good as no timer)."""
    value = message.get("Session-Expires")
    if value is None:
        return None
    number, _, params = value.partition(";")
    number = number.strip()
    if not (number.isascii() and number.isdigit()) or len(number) > 9:
        return None
    refresher = ""
    for param in params.split(";"):
        name, _, text = param.partition("=")
        if name.strip().lower() == "refresher":
            refresher = text.strip().lower()
    return SessionExpires(int(number), refresher if refresher in ("uac", "uas") else "")


def supports_timer(message: SipMessage) -> bool:
    """Whether a message lists the ``timer`` option in Supported or Require."""
    return any(
        token.strip().lower() == "timer"
        for name in ("Supported", "Require")
        for token in message.get_all(name)
    )


def too_short(request: SipRequest, min_se: int) -> bool:
    """Whether ``request`` asks for a session interval below ``min_se`` (answer 422 with
    Min-SE, RFC 4028 6)."""
    expires = session_expires(request)
    return expires is not None and expires.interval < min_se


def add_session_timer(request: SipRequest, response: SipResponse) -> None:
    """RFC 4028 9: a UAS that supports the timer answers the request's one in its 2xx, and
    names the refresher when the request left it open (the UAC: it asked). A 2xx that
    already has Session-Expires is left alone."""
    if response.get("Session-Expires") is not None:
        return
    expires = session_expires(request)
    if expires is None or not supports_timer(request):
        return
    refresher = expires.refresher or "uac"
    response.add("Session-Expires", f"{expires.interval};refresher={refresher}")
    response.add("Require", "timer")


def keep_session_timer(response: SipResponse, interval: int, we_refresh: bool) -> None:
    """A 2xx to a refresh that named no interval keeps the dialog's (RFC 4028 9): we answer
    it as the UAS, so the refresher is ``uas`` when it is us. Left alone when the 2xx
    already has Session-Expires."""
    if response.get("Session-Expires") is not None:
        return
    response.add("Session-Expires", f"{interval};refresher={'uas' if we_refresh else 'uac'}")
    response.add("Require", "timer")


def expiry_delay(interval: int) -> float:
    """When the side that does not refresh gives up: before the session really expires,
    by a third of the interval or 32 s, whichever is less (RFC 4028 10)."""
    return interval - min(32.0, interval / 3)
