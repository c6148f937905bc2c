"""The web portal over real HTTP: signing in (password, TOTP, CSRF, the cookie's flags),
signing out, role-aware navigation and the API's scopes on pages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing

import httpx
import pyotp
import pytest

from tests.integration.apikit import TENANT_A, LiveApi, cdr, live_api
from tests.integration.portalkit import PASSWORD, add_login, csrf_of, sign_in

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    api_gen = live_api(request, tmp_path_factory)
    api = next(api_gen)
    add_login(api, "manager", "office_manager", tenants=[TENANT_A])
    add_login(api, "op", "operator")
    add_login(api, "sup", "supervisor", tenants=[TENANT_A])
    add_login(api, "u101", "user", tenants=[TENANT_A], extension="101")
    now = time.time()
    api.add_cdrs(
        [
            cdr("own-call", TENANT_A, "101", "102", start=now - 600),
            cdr("other-call", TENANT_A, "102", "103", start=now - 500),
        ]
    )
    yield api
    next(api_gen, None)


def test_sign_in_sets_a_strict_http_only_cookie_and_lands_on_the_tenant(live: LiveApi) -> None:
    client, answer = sign_in(live, "manager")
    with closing(client):
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = next(
            h for h in answer.headers.get_list("set-cookie") if h.startswith("softswitch_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback; over TLS it is Secure
        home = client.get("/")
        assert home.headers["location"] == f"/t/{TENANT_A}"
        page = client.get(f"/t/{TENANT_A}")
        assert page.status_code == 200
        assert "registered devices" in page.text and "live calls" in page.text
        assert 'href="/tenants"' not in page.text  # an office manager has one tenant
        assert client.get("/t/globex").status_code == 404  # another tenant: not found


def test_wrong_password_and_stale_form_are_refused(live: LiveApi) -> None:
    client, answer = sign_in(live, "op", password="wrong")
    with closing(client):
        assert answer.status_code == 401 and "Wrong name, password or code" in answer.text
        assert "softswitch_session" not in client.cookies
    with httpx.Client(base_url=live.url, timeout=30) as client:
        forged = client.post("/login", data={"name": "op", "password": PASSWORD, "csrf": "made-up"})
        assert forged.status_code == 403 and "softswitch_session" not in client.cookies
        assert client.get("/t/acme").headers["location"] == "/login"  # no session: sign in


def test_totp_login_needs_the_current_code(live: LiveApi) -> None:
    secret = add_login(live, "secure", "office_manager", totp=True, tenants=[TENANT_A])
    assert secret is not None
    client, answer = sign_in(live, "secure")
    client.close()
    assert answer.status_code == 401
    client, answer = sign_in(live, "secure", totp_code=pyotp.TOTP(secret).now())
    with closing(client):
        assert answer.status_code == 303 and client.get(f"/t/{TENANT_A}").status_code == 200


def test_forms_need_the_csrf_token_and_sign_out_revokes_the_session(live: LiveApi) -> None:
    client, _ = sign_in(live, "op")
    with closing(client):
        tenants = client.get("/tenants")
        assert tenants.status_code == 200 and f'href="/t/{TENANT_A}"' in tenants.text
        assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
        token = client.cookies["softswitch_session"]
        out = client.post("/logout", data={"csrf": csrf_of(tenants.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        # The session token is revoked, not only forgotten by the browser.
        api = live.client(token).get("/v1/me")
        assert api.status_code == 401


def test_navigation_follows_the_role(live: LiveApi) -> None:
    client, _ = sign_in(live, "sup")
    with closing(client):
        assert client.get("/").headers["location"] == f"/t/{TENANT_A}/calls"
        calls = client.get(f"/t/{TENANT_A}/calls")
        assert calls.status_code == 200 and "No call in progress" in calls.text
        assert "Hang up" not in calls.text  # a supervisor may not hang up
        assert client.get(f"/t/{TENANT_A}/calls.json").json() == {"calls": []}


def test_a_basic_user_reaches_only_their_own_history(live: LiveApi) -> None:
    client, _ = sign_in(live, "u101")
    with closing(client):
        start = client.get("/")
        assert start.headers["location"] == f"/t/{TENANT_A}/users/101/history"
        own = client.get(f"/t/{TENANT_A}/users/101/history")
        assert own.status_code == 200 and "102" in own.text
        other = client.get(f"/t/{TENANT_A}/users/102/history")
        assert other.status_code == 403 and "not permitted" in other.text
        assert "103" not in other.text
        assert client.get(f"/t/{TENANT_A}/history").status_code == 403
        # The API, with the same session's token, gives nothing of extension 102 either.
        api = live.client(client.cookies["softswitch_session"])
        records = api.get(f"/v1/tenants/{TENANT_A}/cdrs", params={"user": "102"}).json()
        assert records["items"] == []
        assert api.get(f"/v1/tenants/{TENANT_A}/cdrs/other-call").status_code == 404


def test_disaster_plan_execute_and_revert_after_confirmation(live: LiveApi) -> None:
    client, _ = sign_in(live, "manager")
    plans_path = f"/t/{TENANT_A}/disaster-plans"
    with closing(client):
        listing = client.get(plans_path)
        assert listing.status_code == 200 and "Office outage" in listing.text
        assert "saved" in listing.text and "Execute" in listing.text
        confirm_path = f"{plans_path}/Office%20outage/execute"
        confirm = client.get(confirm_path)
        assert confirm.status_code == 200 and "+12125550199" in confirm.text
        # Without the form's CSRF token nothing changes.
        assert client.post(confirm_path, data={"csrf": "stale"}).status_code == 403
        assert "Execute" in client.get(plans_path).text
        done = client.post(confirm_path, data={"csrf": csrf_of(confirm.text)})
        assert done.status_code == 303
        api = live.client(client.cookies["softswitch_session"])
        plan = api.get(f"/v1/tenants/{TENANT_A}/disaster-plans/Office outage").json()
        assert plan["status"] == "enabled" and plan["last_event"]["by"] == "api:manager"
        revert_path = f"{plans_path}/Office%20outage/revert"
        revert = client.get(revert_path)
        assert "ring as usual" in revert.text
        reverted = client.post(revert_path, data={"csrf": csrf_of(revert.text)})
        assert reverted.status_code == 303, reverted.text
        plan = api.get(f"/v1/tenants/{TENANT_A}/disaster-plans/Office outage").json()
        assert plan["status"] != "enabled" and plan["last_event"]["action"] == "revert"
