"""A portal session: the API session token in a cookie, and the CSRF token derived from it.

The cookie holds the bearer token ``POST /v1/login`` issues (HttpOnly, SameSite=Strict,
Secure over TLS), so a session expires and is revoked exactly like an API session. The CSRF
token is an HMAC of the session token: a page embeds it in each form, and a request whose
form field or ``X-CSRF-Token`` header does not match is refused. Before login there is no
session yet, so the login form uses a random double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from softswitch.api.context import ApiContext
from softswitch.api.deps import principal_from_token
from softswitch.api.principal import Principal

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "PortalSession",
    "csrf_matches",
    "login_csrf",
    "session_of",
    "set_cookie",
]

SESSION_COOKIE = "softswitch_session"
LOGIN_CSRF_COOKIE = "softswitch_login_csrf"


class PortalSession:
    """The signed-in login of a request and its CSRF token."""

    __slots__ = ("csrf", "principal", "token")

    def __init__(self, principal: Principal, token: str) -> None:
        self.principal = principal
        self.token = token
        self.csrf = _csrf_of(token)


def _csrf_of(token: str) -> str:
    return hmac.new(token.encode(), b"softswitch-portal-csrf", hashlib.sha256).hexdigest()


async def session_of(ctx: ApiContext, request: Request) -> PortalSession | None:
    """The session of ``request``'s cookie, or None (none, expired, revoked, disabled)."""
    token = request.cookies.get(SESSION_COOKIE)
    principal = await principal_from_token(ctx, token)
    if principal is None or token is None:
        return None
    return PortalSession(principal, token)


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def login_csrf(request: Request) -> str:
    """The login form's token: the browser's double-submit cookie, or a new one."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Set a portal cookie: HttpOnly, SameSite=Strict, Secure when the page came over TLS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
