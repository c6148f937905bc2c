"""The portal's users list with many users, in headless Chromium: time to first byte, to
first contentful paint and to interactive (DOMContentLoaded), and bytes transferred, for
the first page, a later page and a search by name.

    python -m bench.users_page --users 10000 [--repeat 5] [--database-url postgresql://...]

The switch runs as ``softswitch run`` (the API bench's seeded switch: users and a
registration each); the browser signs in with the bench's operator token as its session
cookie (the portal's session is the API token), so no form is timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.api_bench import api_switch
from bench.api_data import TENANT
from peers.browser import DESKTOP, Browser
from softswitch.api.paging import encode_cursor

__all__ = ["main", "measure"]

_TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const bytes = [nav, ...performance.getEntriesByType("resource")]
    .reduce((sum, e) => sum + (e.transferSize || 0), 0);
  return {
    ttfb_ms: nav.responseStart - nav.startTime,
    fcp_ms: paint ? paint.startTime : null,
    interactive_ms: nav.domContentLoadedEventEnd - nav.startTime,
    load_ms: nav.loadEventEnd - nav.startTime,
    bytes: bytes,
    rows: document.querySelectorAll("#users tr[data-user]").length,
  };
}"""

PAGES = {
    "first page": "/t/{t}/users",
    "a later page (after extension 5000)": "/t/{t}/users?cursor=" + encode_cursor("5000"),
    "search by name": "/t/{t}/users?q=zz",
    "search by extension": "/t/{t}/users?q=1999",
}


def measure(browser: Browser, url: str, repeat: int) -> dict[str, Any]:
    """Medians of ``repeat`` fresh loads of ``url`` (the browser cache off)."""
    page = browser.page
    assert page is not None
    samples = []
    for _ in range(repeat):
        page.goto("about:blank")
        page.goto(url, wait_until="load")
        samples.append(page.evaluate(_TIMING))
    figures: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples if s[key] is not None]
        if values:
            figures[key] = round(statistics.median(values), 1)
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default="")
    opts = parser.parse_args(argv)
    results: dict[str, Any] = {"users": opts.users}
    with tempfile.TemporaryDirectory(prefix="users-page-") as work:
        url = opts.database_url or f"sqlite:///{Path(work) / 'switch.db'}"
        with api_switch(Path(work), opts.users, 0, url) as switch, Browser(DESKTOP) as browser:
            assert browser.page is not None
            browser.page.context.add_cookies(
                [{"name": "softswitch_session", "value": switch.token, "url": switch.api_url}]
            )
            browser.page.route("**/*", lambda route: route.continue_())  # no cache
            for name, path in PAGES.items():
                results[name] = measure(
                    browser, switch.api_url + path.format(t=TENANT), opts.repeat
                )
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
