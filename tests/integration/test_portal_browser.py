"""The portal in a real headless Chromium: an office manager signs in through the form and
watches a SIPp call appear on the live-calls page and go again without a reload; a basic
user is refused another user's history. Screenshots of the main pages at 1366x768 and
390x844 go to results/portal/."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.models import SwitchConfig
from peers.browser import DESKTOP, PHONE, Browser, BrowserMissing
from peers.sipp import SippResult, run_sipp
from peers.switchproc import free_port
from tests.integration.apikit import TENANT_A, LiveApi, api_config, cdr
from tests.integration.callkit import (
    BackgroundSipp,
    caller_injection,
    register_endpoint,
    wait_until_listening,
)
from tests.integration.portalkit import PASSWORD, add_login

pytestmark = pytest.mark.integration

SHOTS = Path(__file__).resolve().parents[2] / "results" / "portal"
DOMAIN = "acme.test"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    # One tenant only: SIPp addresses the switch by IP, which a single tenant owns.
    two = api_config(f"sqlite:///{tmp_path_factory.mktemp('portal')}/switch.db")
    one = SwitchConfig.model_validate(
        {**two.model_dump(), "tenants": [two.tenants[0].model_dump()]}
    )
    api = LiveApi(one).start()
    try:
        add_login(api, "manager", "office_manager", tenants=[TENANT_A])
        add_login(api, "u101", "user", tenants=[TENANT_A], extension="101")
        api.add_cdrs([cdr("other-call", TENANT_A, "102", "103", start=time.time() - 60)])
        yield api
    finally:
        api.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    try:
        with Browser(DESKTOP) as b:
            yield b
    except BrowserMissing as exc:
        pytest.skip(str(exc))


def _sign_in(b: Browser, live: LiveApi, name: str) -> None:
    page = b.page
    assert page is not None
    page.goto(f"{live.url}/login")
    page.get_by_label("Login name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def _shots(b: Browser, name: str) -> None:
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        b.resize(size)
        b.screenshot(SHOTS / f"{name}-{label}.png")
    b.resize(DESKTOP)


def test_live_calls_appear_and_go_without_reload(
    live: LiveApi, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page
    assert page is not None
    _sign_in(browser, live, "manager")
    assert page.url.endswith(f"/t/{TENANT_A}")
    assert page.get_by_role("heading", name="Registered devices").is_visible()
    _shots(browser, "dashboard")
    page.get_by_role("link", name="Live calls").first.click()
    page.wait_for_url(f"**/t/{TENANT_A}/calls")
    page.evaluate("window.portalTestMarker = 'same page'")  # gone if the page reloads

    port = free_port()
    register_endpoint(tmp_path, live.sip_port, "102", "pw102", port, domain=DOMAIN)
    phone = BackgroundSipp("ring_uas.xml", live.sip_port, calls=1, local_port=port, timeout=30)
    wait_until_listening()
    caller: list[SippResult] = []
    calling = threading.Thread(
        target=lambda: caller.append(
            run_sipp(
                "cancel_uac.xml",
                f"127.0.0.1:{live.sip_port}",
                calls=1,
                rate=1,
                injection=caller_injection(tmp_path, "100", "pw100", domain=DOMAIN),
                extra=["-s", "102", "-d", "4000"],  # rings 4 s, then the caller gives up
                timeout=30,
            )
        ),
        daemon=True,
    )
    calling.start()
    row = page.locator("#live-calls tr[data-call]")
    row.first.wait_for(state="visible", timeout=15_000)
    assert "100" in row.first.inner_text() and "102" in row.first.inner_text()
    _shots(browser, "live-calls")
    row.first.wait_for(state="detached", timeout=20_000)
    assert page.get_by_text("No call in progress.").is_visible()
    assert page.evaluate("window.portalTestMarker") == "same page"
    calling.join(30)
    assert caller and caller[0].ok, caller[0].errors if caller else "SIPp caller did not end"
    assert phone.result(30).ok
    page.get_by_role("link", name="Disaster plans").click()
    page.wait_for_url(f"**/t/{TENANT_A}/disaster-plans")
    page.get_by_role("link", name="Execute").first.click()
    assert page.get_by_role("button", name="Yes, execute the plan").is_visible()
    _shots(browser, "disaster-confirm")
    page.get_by_role("link", name="Cancel").click()
    _shots(browser, "disaster-plans")


def test_a_basic_user_cannot_reach_another_users_history(live: LiveApi, browser: Browser) -> None:
    page = browser.page
    assert page is not None
    _sign_in(browser, live, "u101")
    assert page.url.endswith(f"/t/{TENANT_A}/users/101/history")
    _shots(browser, "my-history")
    answer = page.goto(f"{live.url}/t/{TENANT_A}/users/102/history")
    assert answer is not None and answer.status == 403
    assert page.get_by_role("alert").inner_text().startswith("not permitted")
    assert "103" not in page.content()
    # The API refuses it too, to the same session (the cookie's token is its bearer token).
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "softswitch_session")
    api = live.client(token)
    assert api.get(f"/v1/tenants/{TENANT_A}/cdrs/other-call").status_code == 404
    assert api.get(f"/v1/tenants/{TENANT_A}/cdrs", params={"user": "102"}).json()["items"] == []
