"""The live pages in a real headless Chromium, on a switch that anchors media: a supervisor
clicks "Listen" on a SIPp call in progress and the switch rings their phone (a SIPp UAS),
which answers and stays until the call is hung up from the same page; a SIPp caller joins a
conference bridge, appears on the conferences page without a reload, is muted and removed
(after the confirmation), and their call ends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.models import SwitchConfig
from peers.browser import DESKTOP, Browser, BrowserMissing
from peers.sipp import SippResult, run_sipp
from peers.switchproc import free_port
from tests.integration.apikit import TENANT_A, LiveApi
from tests.integration.callkit import (
    BackgroundSipp,
    caller_injection,
    register_endpoint,
    wait_until_listening,
)
from tests.integration.portalkit import PASSWORD, add_login
from tests.integration.portalopskit import ops_config

pytestmark = pytest.mark.integration

SHOTS = Path(__file__).resolve().parents[2] / "results" / "portal"
DOMAIN = "acme.test"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    tmp = tmp_path_factory.mktemp("ops-monitor")
    base = ops_config(f"sqlite:///{tmp}/switch.db", free_port(), tmp / "recordings").model_dump()
    base["media"] = {**base["media"], "anchor": "always", "address": "127.0.0.1"}
    base["tenants"][0]["trunks"] = []  # loopback callers are phones here, not the carrier
    api = LiveApi(SwitchConfig.model_validate(base)).start()
    try:
        add_login(api, "sup", "office_manager", tenants=[TENANT_A])
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


def _sign_in(browser: Browser, live: LiveApi) -> None:
    page = browser.page
    assert page is not None
    page.context.clear_cookies()
    page.goto(f"{live.url}/login")
    page.get_by_label("Login name").fill("sup")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def test_listen_rings_the_supervisors_phone(
    live: LiveApi, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page
    assert page is not None
    _sign_in(browser, live)
    page.goto(f"{live.url}/t/{TENANT_A}/calls?supervisor=100")

    agent_port, supervisor_port = free_port(), free_port()
    register_endpoint(tmp_path / "a", live.sip_port, "102", "pw102", agent_port, domain=DOMAIN)
    register_endpoint(tmp_path / "s", live.sip_port, "100", "pw100", supervisor_port, domain=DOMAIN)
    agent = BackgroundSipp(
        "call_uas.xml", live.sip_port, calls=1, local_port=agent_port, timeout=40
    )
    supervisor = BackgroundSipp(
        "call_uas.xml", live.sip_port, calls=1, local_port=supervisor_port, timeout=40
    )
    wait_until_listening()
    caller: list[SippResult] = []
    calling = threading.Thread(
        target=lambda: caller.append(
            run_sipp(
                "hungup_uac.xml",  # stays on the call until the switch hangs up
                f"127.0.0.1:{live.sip_port}",
                calls=1,
                rate=1,
                injection=caller_injection(tmp_path / "c", "101", "pw101", domain=DOMAIN),
                extra=["-s", "102"],
                timeout=40,
            )
        ),
        daemon=True,
    )
    calling.start()
    rows = page.locator("#live-calls tr[data-call]")
    answered = rows.filter(has_text="answered")
    answered.first.wait_for(state="visible", timeout=15_000)
    answered.first.get_by_role("button", name="Listen").click()
    status = page.locator("#monitor-status")
    status.filter(has_text="rings").wait_for(timeout=10_000)
    assert "your phone (100) rings" in status.inner_text()
    deadline = time.monotonic() + 15
    while rows.count() < 2 and time.monotonic() < deadline:  # the supervisor's leg too
        time.sleep(0.2)
    assert rows.count() == 2, "the supervisor's phone was not rung and answered"
    browser.screenshot(SHOTS / "live-calls-monitor-desktop.png")
    rows.filter(has_text="102").first.get_by_role("button", name="Hang up").click()
    rows.first.wait_for(state="detached", timeout=20_000)
    calling.join(45)
    assert caller and caller[0].ok, caller[0].errors if caller else "SIPp caller did not end"
    assert agent.result(45).ok
    assert supervisor.result(45).ok  # listening ended with the call: BYE to the supervisor


def test_conference_participant_appears_is_muted_and_removed(
    live: LiveApi, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page
    assert page is not None
    _sign_in(browser, live)
    page.goto(f"{live.url}/t/{TENANT_A}/conferences")
    page.evaluate("window.portalTestMarker = 'same page'")
    caller: list[SippResult] = []
    calling = threading.Thread(
        target=lambda: caller.append(
            run_sipp(
                "hungup_uac.xml",
                f"127.0.0.1:{live.sip_port}",
                calls=1,
                rate=1,
                injection=caller_injection(tmp_path / "c", "103", "pw103", domain=DOMAIN),
                extra=["-s", "190"],  # the "standup" bridge
                timeout=40,
            )
        ),
        daemon=True,
    )
    calling.start()
    room = page.locator('[data-room="standup"]')
    person = room.locator("tr[data-participant]")
    person.first.wait_for(state="visible", timeout=15_000)  # refreshed in place
    assert page.evaluate("window.portalTestMarker") == "same page"
    assert "103" in person.first.inner_text()
    person.first.get_by_role("button", name="Mute").click()
    page.wait_for_url(f"**/t/{TENANT_A}/conferences")
    assert "muted" in room.locator("tr[data-participant]").first.inner_text()
    browser.screenshot(SHOTS / "conference-live-desktop.png")
    room.locator("tr[data-participant]").first.get_by_role("link", name="Remove").click()
    page.get_by_role("button", name="Yes, remove them").click()
    page.wait_for_url(f"**/t/{TENANT_A}/conferences")
    calling.join(45)
    assert caller and caller[0].ok, caller[0].errors if caller else "SIPp caller did not end"
    room.locator("tr[data-participant]").first.wait_for(state="detached", timeout=10_000)
