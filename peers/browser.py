"""A headless Chromium driven by Playwright, for the portal's end-to-end tests.

The browser is Debian's ``chromium`` (``make test`` installs it), never a download of
Playwright's own: ``executable_path`` points at the system binary. Each ``Browser`` runs on
a fresh user-data directory (no profile, cookies or cache left from another run) with the
switches that keep it from calling home (component updates, sync, background networking).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

__all__ = ["CHROMIUM", "DESKTOP", "PHONE", "Browser", "BrowserMissing"]

CHROMIUM = "/usr/bin/chromium"
DESKTOP = (1366, 768)  # a common laptop screen
PHONE = (390, 844)  # a common phone, portrait
_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


class BrowserMissing(RuntimeError):
    """The system Chromium is not installed (Debian package ``chromium``)."""


class Browser:
    """One headless Chromium with one tab (``page``); a context manager that stops it."""

    def __init__(self, size: tuple[int, int] = DESKTOP, timeout_ms: float = 10_000) -> None:
        if not Path(CHROMIUM).exists():
            raise BrowserMissing(f"{CHROMIUM} not found: apt-get install chromium")
        self._size = size
        self._timeout_ms = timeout_ms
        self._profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self._playwright: Playwright | None = None
        self._context: BrowserContext | None = None
        self.page: Page | None = None

    def __enter__(self) -> Browser:
        self._playwright = sync_playwright().start()
        try:
            self._context = self._playwright.chromium.launch_persistent_context(
                str(self._profile),
                executable_path=CHROMIUM,
                headless=True,
                args=list(_ARGS),
                viewport={"width": self._size[0], "height": self._size[1]},
                timeout=30_000,
            )
            self._context.set_default_timeout(self._timeout_ms)
            pages = self._context.pages
            self.page = pages[0] if pages else self._context.new_page()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def resize(self, size: tuple[int, int]) -> None:
        assert self.page is not None
        self.page.set_viewport_size({"width": size[0], "height": size[1]})

    def screenshot(self, path: Path) -> Path:
        """The whole page as a PNG at ``path`` (folders made as needed)."""
        assert self.page is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
        shutil.rmtree(self._profile, ignore_errors=True)
