"""The portal's operations pages in a real headless Chromium, on SQLite and on PostgreSQL:
an operator creates a disaster plan, adds a number, executes it after the confirmation, and
the next SIPp call from the carrier to that number is forwarded to the plan's outside
number (a SIPp UAS as the carrier's gateway); reverting puts it back. An office manager
reads the dashboard's charts, filters the call history, opens a call's flow and asks why a
phone did not ring. Screenshots at 1366x768 and 390x844 go to results/portal/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from peers.browser import DESKTOP, PHONE, Browser, BrowserMissing
from peers.sipp import run_sipp
from peers.switchproc import free_port
from tests.integration.apikit import TENANT_A, LiveApi, pg_schema
from tests.integration.callkit import BackgroundSipp, wait_until_listening
from tests.integration.portalkit import PASSWORD, add_login
from tests.integration.portalopskit import DID, add_history, add_queue_events, ops_config

pytestmark = pytest.mark.integration

SHOTS = Path(__file__).resolve().parents[2] / "results" / "portal"
FORWARD = "+12125550188"


class Setup:
    def __init__(self, live: LiveApi, gateway: int, backend: str) -> None:
        self.live, self.gateway, self.backend = live, gateway, backend


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("ops-browser")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp}/switch.db"
    else:
        # In a thread: Playwright's sync API keeps an event loop running in this one.
        dsn = request.getfixturevalue("pg_dsn")
        with ThreadPoolExecutor(1) as pool:
            url = pool.submit(pg_schema, dsn).result(60)
    gateway = free_port()
    live = LiveApi(ops_config(url, gateway, tmp / "recordings")).start()
    try:
        add_login(live, "op", "operator")
        add_login(live, "manager", "office_manager", tenants=[TENANT_A])
        add_history(live, tmp / "recordings")
        add_queue_events(live)
        yield Setup(live, gateway, request.param)
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        with Browser(DESKTOP) as b:
            yield b
    except BrowserMissing as exc:
        pytest.skip(str(exc))


def _sign_in(b: Browser, live: LiveApi, name: str) -> None:
    page = b.page
    assert page is not None
    page.context.clear_cookies()
    page.goto(f"{live.url}/login")
    page.get_by_label("Login name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def _shots(b: Browser, setup: Setup, name: str) -> None:
    if setup.backend != "sqlite":
        return  # the same pages: one set of pictures
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        b.resize(size)
        b.screenshot(SHOTS / f"{name}-{label}.png")
    b.resize(DESKTOP)


def test_operator_executes_a_disaster_plan_and_the_next_call_is_forwarded(
    setup: Setup, browser: Browser
) -> None:
    live, page = setup.live, browser.page
    assert page is not None
    _sign_in(browser, live, "op")
    page.get_by_role("link", name=TENANT_A, exact=True).click()
    page.get_by_role("link", name="Disaster plans").click()
    page.get_by_label("Plan name").fill("Storm")
    page.get_by_label("Region").fill("US West")
    page.get_by_role("button", name="Create plan").click()
    page.wait_for_url("**/disaster-plans/Storm")
    page.get_by_role("textbox", name="Number (E.164, from your numbers)").fill(
        "+1 415 555 0199"
    )  # not one of the tenant's
    page.get_by_role("textbox", name="Forward to (outside number)").fill(FORWARD)
    page.get_by_role("button", name="Add number").click()
    assert "not in the number inventory" in page.locator("#add-number-error").inner_text()
    page.locator("#add-number").fill(DID)
    page.get_by_role("button", name="Add number").click()
    page.wait_for_url("**/disaster-plans/Storm")
    assert FORWARD in page.locator("#plan-numbers").inner_text()
    page.get_by_role("link", name="Execute").click()
    page.get_by_role("button", name="Yes, execute the plan").click()
    page.wait_for_url("**/disaster-plans/Storm")
    assert "enabled" in page.locator("#plan-status").inner_text()
    assert "execute" in page.locator("#plan-history").inner_text()
    _shots(browser, setup, "disaster-plan")

    # The carrier's next call to the number goes to the plan's outside number, out through
    # the carrier's gateway (the SIPp UAS), with no restart.
    gateway = BackgroundSipp(
        "call_uas.xml", live.sip_port, calls=1, local_port=setup.gateway, timeout=30
    )
    wait_until_listening()
    carrier = run_sipp(
        "trunk_uac.xml",
        f"127.0.0.1:{live.sip_port}",
        calls=1,
        rate=1,
        extra=["-s", DID, "-d", "200"],
        timeout=30,
    )
    assert carrier.ok, carrier.errors
    assert gateway.result(30).ok  # the forwarded call reached the gateway and was answered
    page.goto(f"{live.url}/t/{TENANT_A}/history?dialled={DID[1:]}&direction=inbound")
    rows = page.locator("#history tr[data-call]")
    deadline = time.monotonic() + 10
    while rows.count() < 2 and time.monotonic() < deadline:  # the seeded call, and this one
        time.sleep(0.3)  # the CDR is written as the call ends
        page.reload()
    row = rows.first  # newest first
    assert row.get_attribute("data-call") != "in-1"
    row.get_by_role("link", name="Call flow").click()
    assert FORWARD in page.locator("#call-flow").inner_text() + page.locator("#legs").inner_text()
    _shots(browser, setup, "call-flow")

    page.goto(f"{live.url}/t/{TENANT_A}/disaster-plans/Storm")
    page.get_by_role("link", name="Revert").click()
    page.get_by_role("button", name="Yes, revert the plan").click()
    page.wait_for_url("**/disaster-plans/Storm")
    assert "enabled" not in page.locator("#plan-status").inner_text()
    history = page.locator("#plan-history").inner_text()
    assert "revert" in history and "execute" in history


def test_manager_reads_charts_filters_history_and_asks_why(setup: Setup, browser: Browser) -> None:
    live, page = setup.live, browser.page
    assert page is not None
    _sign_in(browser, live, "manager")
    assert page.url.endswith(f"/t/{TENANT_A}")
    hourly = page.locator("#volume-hourly")
    assert hourly.get_by_role("img").count() == 1
    assert hourly.locator("rect.bar").count() == 24
    hourly.get_by_text("Data table").click()  # the chart's numbers as a table
    assert hourly.locator("table").is_visible()
    assert page.locator("#trunk-figures").get_by_text("carrier").is_visible()
    _shots(browser, setup, "dashboard-charts")

    page.get_by_role("link", name="Call history").click()
    page.get_by_label("Disposition").select_option("NO ANSWER")
    page.get_by_role("button", name="Search").click()
    assert page.locator("#history tr[data-call]").count() == 1
    page.get_by_label("From (UTC)").fill("not a date")
    page.get_by_role("button", name="Search").click()
    assert page.locator("#e-from").is_visible()
    page.get_by_role("link", name="Clear").click()
    _shots(browser, setup, "history")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename == f"calls-{TENANT_A}.csv"
    page.goto(f"{live.url}/t/{TENANT_A}/history/rec-call")
    assert page.get_by_role("link", name="Download recording 1").is_visible()
    assert page.locator("audio").count() == 1

    page.get_by_role("link", name="Why no ring?").click()
    page.get_by_label("Number or extension called").fill("102")
    page.get_by_role("button", name="Explain").click()
    assert page.locator("#callflow li.taken").count() >= 1
    assert page.locator("#path").inner_text().startswith("The call:")
    _shots(browser, setup, "explain")

    page.get_by_role("link", name="Queue board").click()
    waiting = page.locator('[data-queue="support"] tr[data-call]')
    assert waiting.count() == 1
    _shots(browser, setup, "queue-board")
    page.get_by_role("link", name="Block lists").click()
    page.get_by_label("Lists of").select_option("102")
    page.get_by_role("button", name="Show").click()
    page.get_by_label("Blocked callers").fill("+1900*\nnot a number")
    page.get_by_role("button", name="Save lists").click()
    assert "line 2" in page.locator("#l-blocked-error").inner_text()
    page.get_by_label("Blocked callers").fill("+1900*")
    page.get_by_role("button", name="Save lists").click()
    assert page.locator("#lists-saved").is_visible()
    _shots(browser, setup, "block-lists")
    page.get_by_role("link", name="Conferences").click()
    assert page.locator('[data-room="standup"]').is_visible()
    _shots(browser, setup, "conferences")
