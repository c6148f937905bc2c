"""Portal page performance (issue 18, "Performance"): the largest pages in a real headless
Chromium, over the admin API's bench switch (bench/api_bench.py's seeding: `--users`
(10,000) users with a registration each and `--cdrs` (1,000,000) calls of history, the
switch as its own process).

Per page, `--samples` loads in a fresh browser context (no cache): time to first byte,
first contentful paint, DOM interactive (the page usable: our script is deferred and
small), load event, and the bytes transferred (document and assets, from the Resource
Timing entries), median and worst. The operator's session is a machine token in the
portal's cookie, as a signed-in browser holds its session token.

    .venv/bin/python -m bench.portal_bench                         # full size, both backends
    .venv/bin/python -m bench.portal_bench --users 1000 --cdrs 100000 --databases sqlite
    .venv/bin/python -m bench.portal_bench --page dashboard       # one page only

Pages that a branch not yet merged provides (the users list) are reported as absent when
the switch answers 404. Figures go to bench/results/portal-*.json; not part of make test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from bench.api_bench import api_switch, databases, quiet_logs
from peers.browser import CHROMIUM, DESKTOP

__all__ = ["PAGES", "main", "measure_page"]

TENANT = "test"  # bench/api_bench.py's switch (peers.switchproc's tenant)
PAGES = {
    "call history": f"/t/{TENANT}/history",
    "call history, filtered": f"/t/{TENANT}/history?direction=inbound&disposition=BUSY",
    "users list": f"/t/{TENANT}/users",
    "dashboard": f"/t/{TENANT}",  # last: its analytics read the whole month of calls
}
COOKIE = "softswitch_session"

_TIMING = """async () => {
  const paints = await new Promise((done) => {
    new PerformanceObserver((list) => done(list.getEntries()))
      .observe({ type: "paint", buffered: true });
    setTimeout(() => done([]), 2000);
  });
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = paints.find((p) => p.name === "first-contentful-paint");
  const resources = performance.getEntriesByType("resource");
  return {
    ttfb_ms: nav.responseStart - nav.startTime,
    document_ms: nav.responseEnd - nav.startTime,
    fcp_ms: paint ? paint.startTime - nav.startTime : null,
    interactive_ms: nav.domInteractive - nav.startTime,
    dom_content_loaded_ms: nav.domContentLoadedEventEnd - nav.startTime,
    load_ms: nav.loadEventEnd - nav.startTime,
    document_bytes: nav.transferSize,
    html_bytes: nav.decodedBodySize,
    bytes: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
    requests: 1 + resources.length,
  };
}"""


def measure_page(
    browser: Any, base: str, token: str, path: str, samples: int, timeout_s: float
) -> dict[str, Any]:
    """``samples`` cold loads of ``path``; the first, median and worst of each figure (the
    first dashboard load after seeding adds up the whole history into its rollup, as the
    first one after an upgrade does)."""
    runs: list[dict[str, float]] = []
    status = None
    for _ in range(samples):
        context = browser.new_context(
            viewport={"width": DESKTOP[0], "height": DESKTOP[1]}, base_url=base
        )
        try:
            context.add_cookies([{"name": COOKIE, "value": token, "url": base}])
            page = context.new_page()
            page.set_default_timeout(timeout_s * 1000)
            started = time.perf_counter()
            try:
                answer = page.goto(path, wait_until="load", timeout=timeout_s * 1000)
            except PlaywrightTimeout:
                # A page that does not load within the limit: say so and stop sampling it.
                return {"path": path, "timed_out_after_s": timeout_s, "samples": len(runs)}
            wall = (time.perf_counter() - started) * 1000
            status = answer.status if answer is not None else None
            if status == 404:
                return {"path": path, "status": 404, "absent": True}
            figures = page.evaluate(_TIMING)
            figures["wall_ms"] = wall
            runs.append(figures)
        finally:
            context.close()
    out: dict[str, Any] = {"path": path, "status": status, "samples": len(runs)}
    for key in runs[0]:
        values = [r[key] for r in runs if r[key] is not None]
        if values:
            out[key] = {
                "first": None if runs[0][key] is None else round(runs[0][key], 1),
                "median": round(statistics.median(values), 1),
                "worst": round(max(values), 1),
            }
    return out


def run(
    users: int,
    cdrs: int,
    backends: list[str],
    samples: int,
    timeout_s: float,
    log: Callable[[str], None] = print,
    pages: dict[str, str] = PAGES,
) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    figures: dict[str, Any] = {}
    try:
        with databases(work, backends, log) as found:
            for name, url in found:
                log(f"{name}: seeding {users} users, {cdrs} calls ...")
                with api_switch(work / name, users, cdrs, url) as switch:
                    measured: dict[str, Any] = {"seeding": switch.seeding}
                    log(f"  seeded: {switch.seeding}")
                    with sync_playwright() as pw:
                        browser = pw.chromium.launch(
                            executable_path=CHROMIUM,
                            headless=True,
                            args=[
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-background-networking",
                            ],
                        )
                        try:
                            for label, path in pages.items():
                                log(f"  {label} ({path})")
                                measured[label] = measure_page(
                                    browser, switch.api_url, switch.token, path, samples, timeout_s
                                )
                                log(f"    {_line(measured[label])}")
                        finally:
                            browser.close()
                    figures[name] = measured
    finally:
        if os.environ.get("SOFTSWITCH_KEEP_BENCH") is None:
            shutil.rmtree(work, ignore_errors=True)
    return figures


def _line(page: dict[str, Any]) -> str:
    if page.get("absent"):
        return "absent (404)"
    if "timed_out_after_s" in page:
        return f"did not load within {page['timed_out_after_s']:.0f} s"

    def med(key: str) -> str:
        value = page.get(key)
        return "-" if value is None else f"{value['median']:,.0f}"

    first = page.get("ttfb_ms", {}).get("first") or 0.0
    return (
        f"status {page['status']}  first byte {med('ttfb_ms')} ms (first load {first:,.0f})"
        f"  first paint {med('fcp_ms')} ms"
        f"  interactive {med('interactive_ms')} ms  load {med('load_ms')} ms"
        f"  {med('bytes')} bytes in {med('requests')} requests"
    )


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.portal_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=10_000, help="provisioned users")
    parser.add_argument("--cdrs", type=int, default=1_000_000, help="calls of history")
    parser.add_argument("--samples", type=int, default=3, help="cold loads per page")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one load may take")
    parser.add_argument(
        "--databases", type=_csv, default=["sqlite", "postgresql"], help="sqlite,postgresql"
    )
    parser.add_argument(
        "--page",
        action="append",
        choices=list(PAGES),
        help="measure only this page (repeatable; default: every page)",
    )
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    if args.users < 1 or args.cdrs < 0 or args.samples < 1:
        parser.error("--users and --samples must be >= 1, --cdrs >= 0")
    unknown = set(args.databases) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"--databases: unknown {', '.join(sorted(unknown))}")
    if not Path(CHROMIUM).exists():
        parser.error(f"{CHROMIUM} not found: apt-get install chromium")
    quiet_logs()
    started = dt.datetime.now(dt.UTC)
    pages = {label: PAGES[label] for label in args.page or PAGES}
    figures = run(args.users, args.cdrs, args.databases, args.samples, args.timeout, pages=pages)
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_at_end": os.getloadavg()},
        "options": {k: str(v) for k, v in vars(args).items()},
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"portal-{started:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps({"meta": meta, "portal": figures}, indent=2, default=str))
    print(f"\nwrote {path}")
    return {"json": path, "portal": figures}


if __name__ == "__main__":
    main()
