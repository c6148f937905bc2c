"""The users and answering-rules pages in a real headless Chromium (issue 18's end-to-end
test): an office manager signs in, adds a user (a bad caller ID is refused at its field
first, and nothing is saved), sets the user's forward-on-busy, and a SIPp call to that user
while their phone answers busy reaches the forward target. Screenshots of the pages at
1366x768 and 390x844 go to results/portal/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.models import SwitchConfig
from peers.browser import DESKTOP, PHONE, Browser, BrowserMissing
from peers.sipp import run_sipp
from peers.switchproc import free_port
from tests.integration.apikit import TENANT_A, LiveApi, api_config
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
    two = api_config(f"sqlite:///{tmp_path_factory.mktemp('portal-users')}/switch.db")
    one = SwitchConfig.model_validate(
        {**two.model_dump(), "tenants": [two.tenants[0].model_dump()]}
    )
    api = LiveApi(one).start()
    try:
        add_login(api, "manager", "office_manager", tenants=[TENANT_A])
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        with Browser(DESKTOP) as b:
            yield b
    except BrowserMissing as exc:
        pytest.skip(str(exc))


def _shots(b: Browser, name: str) -> None:
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        b.resize(size)
        b.screenshot(SHOTS / f"{name}-{label}.png")
    b.resize(DESKTOP)


def test_office_manager_adds_a_user_whose_busy_calls_forward(
    live: LiveApi, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page
    assert page is not None
    page.goto(f"{live.url}/login")
    page.get_by_label("Login name").fill("manager")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)

    page.get_by_role("link", name="Users").first.click()
    page.wait_for_url(f"**/t/{TENANT_A}/users")
    _shots(browser, "users")
    page.get_by_role("link", name="Add user").click()
    page.get_by_label("Extension").fill("150")
    page.get_by_label("Name", exact=True).fill("Ann Lee")
    page.get_by_label("Caller ID number").fill("+1 415 555")
    page.get_by_role("button", name="Add user").click()
    # Refused at the field, what was typed kept, nothing saved.
    caller_id = page.get_by_label("Caller ID number")
    assert caller_id.get_attribute("aria-invalid") == "true"
    message = page.locator("#e-caller_id")
    assert message.is_visible() and "phone number" in message.inner_text()
    assert page.get_by_label("Name", exact=True).input_value() == "Ann Lee"
    _shots(browser, "user-add-error")
    assert live.client(_token(browser)).get(f"/v1/tenants/{TENANT_A}/users/150").status_code == 404

    caller_id.fill("+14155550150")
    page.get_by_role("button", name="Add user").click()
    password = page.locator("#sip-password").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9]{16}", password)
    _shots(browser, "user-welcome")

    page.get_by_role("link", name="Back to the user").click()
    page.get_by_role("link", name="Answering rules").click()
    page.get_by_role("link", name="Edit the default rule").click()
    page.get_by_label("Forward when busy", exact=True).select_option("user")
    page.get_by_label("Forward when busy: to").fill("102")
    _shots(browser, "rule-edit")
    page.get_by_role("button", name="Save rule").click()
    page.wait_for_url(f"**/t/{TENANT_A}/users/150/rules")
    assert "forward when busy to user 102" in page.locator("#rule-default").inner_text()
    _shots(browser, "rules")

    # The user's phone answers busy; the forward target (102) answers.
    sipp = tmp_path / "sipp"
    busy_port, target_port = free_port(), free_port()
    register_endpoint(sipp, live.sip_port, "150", password, busy_port, domain=DOMAIN)
    register_endpoint(sipp, live.sip_port, "102", "pw102", target_port, domain=DOMAIN)
    phones = [
        BackgroundSipp("busy_uas.xml", live.sip_port, calls=1, local_port=busy_port, timeout=30),
        BackgroundSipp("call_uas.xml", live.sip_port, calls=1, local_port=target_port, timeout=30),
    ]
    wait_until_listening()
    call = run_sipp(
        "call_uac.xml",
        f"127.0.0.1:{live.sip_port}",
        calls=1,
        rate=1,
        injection=caller_injection(sipp, "100", "pw100", domain=DOMAIN),
        extra=["-s", "150", "-d", "200"],
        timeout=30,
    )
    assert call.ok, call.errors  # answered: by the forward target
    for phone in phones:
        result = phone.result(30)
        assert result.ok, result.errors

    # The user's page shows the registered phone, its User-Agent and address.
    page.goto(f"{live.url}/t/{TENANT_A}/users/150")
    devices = page.locator("#devices").inner_text()
    assert "127.0.0.1" in devices and "registered" in devices
    _shots(browser, "user-edit")


def test_time_frames_week_view_and_a_refused_overlap(live: LiveApi, browser: Browser) -> None:
    page = browser.page
    assert page is not None
    page.goto(f"{live.url}/t/{TENANT_A}/users/150/time-frames")
    page.get_by_role("link", name="Add time frame").click()
    page.get_by_label("Name", exact=True).fill("office hours")
    page.get_by_label("Monday").fill("09:00-12:00, 11:30-17:00")
    page.get_by_role("button", name="Save time frame").click()
    assert page.get_by_label("Monday").get_attribute("aria-invalid") == "true"
    assert "overlaps" in page.locator("#e-day_mon").inner_text()
    _shots(browser, "time-frame-error")
    page.get_by_label("Monday").fill("09:00-12:00, 13:00-17:00")
    for day in ("Tuesday", "Wednesday", "Thursday", "Friday"):
        page.get_by_label(day).fill("09:00-17:00")
    page.get_by_role("button", name="Save time frame").click()
    page.wait_for_url(f"**/t/{TENANT_A}/users/150/time-frames")
    assert page.locator(".week .slot").count() == 6
    _shots(browser, "time-frames")
    # A rule on the frame, switched off with the keyboard alone.
    page.get_by_role("link", name="Answering rules of 150").click()
    page.get_by_role("link", name="Add rule").click()
    page.get_by_label("Time frame", exact=True).select_option("office hours")
    page.get_by_label("Forward always", exact=True).select_option("offnet")
    page.get_by_label("Forward always: to").fill("+14155550199")
    page.get_by_role("button", name="Save rule").click()
    page.wait_for_url("**/users/150/rules")
    disable = page.get_by_role("button", name="Disable rule 1 (office hours)")
    disable.focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Enable rule 1 (office hours)").wait_for(timeout=10_000)
    assert "off" in page.locator("#rule-1").inner_text()
    # The other pages, for the reviewer's eyes.
    for name, link in (("numbers", "Numbers"), ("admins", "Admins"), ("audit", "Audit log")):
        page.get_by_role("link", name=link).first.click()
        page.wait_for_url(f"**/t/{TENANT_A}/{name}")
        _shots(browser, name)


def _token(browser: Browser) -> str:
    assert browser.page is not None
    cookies = browser.page.context.cookies()
    return next(c["value"] for c in cookies if c["name"] == "softswitch_session")
