"""Helpers of the portal's tests: logins with passwords, and a browser-like HTTP session
that signs in through the login form (its CSRF cookie and hidden field)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from softswitch.api.routes_logins import LoginIn, create_login
from tests.integration.apikit import LiveApi

PASSWORD = "correct horse battery"
_HIDDEN_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def add_login(live: LiveApi, name: str, role: str, totp: bool = False, **scope: Any) -> str | None:
    """Create a login with ``PASSWORD``; the TOTP secret when ``totp``."""
    assert live.switch is not None
    store, tenants = live.switch.store, {t.name: t for t in live.config.tenants}
    body = LoginIn(name=name, role=role, password=PASSWORD, totp=totp, **scope)  # type: ignore[arg-type]
    return live.call(create_login(store, tenants, body, None)).totp_secret


def csrf_of(page: str) -> str:
    found = _HIDDEN_CSRF.search(page)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def sign_in(
    live: LiveApi, name: str, password: str = PASSWORD, totp_code: str = ""
) -> tuple[httpx.Client, httpx.Response]:
    """A client that fetched the login form and posted it; the answer is not followed."""
    client = httpx.Client(base_url=live.url, timeout=30)
    form = client.get("/login")
    assert form.status_code == 200
    answer = client.post(
        "/login",
        data={
            "name": name,
            "password": password,
            "totp_code": totp_code,
            "csrf": csrf_of(form.text),
        },
    )
    return client, answer
