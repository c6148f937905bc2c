"""The API's docs pages load nothing from the Internet: /docs (Swagger UI) and /redoc refer
only to same-origin scripts, styles and icons, and the switch serves each of them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest

from tests.integration.apikit import LiveApi, live_api

pytestmark = pytest.mark.integration

# What each kind of asset must be served as.
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    yield from live_api(request, tmp_path_factory)


class _References(HTMLParser):
    """Every URL a page makes the browser load: src and href attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    # URLs the page's own script hands Swagger UI / ReDoc ('/openapi.json', the redirect).
    parser.urls += re.findall(r"""(?:url|oauth2RedirectUrl)['"]?\s*[:=]\s*['"]([^'"]+)""", html)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_same_origin_assets(live: LiveApi, page: str) -> None:
    with live.client() as anonymous:
        answer = anonymous.get(page)
        assert answer.status_code == 200
        html = answer.text
        assert "/openapi.json" in html
        # No absolute URL anywhere in the page: nothing from a CDN or a font service.
        assert not re.search(r"(?:https?:)?//[a-z0-9]", html, re.I), html
        urls = _references(html)
        assets = [u for u in urls if u.startswith("/docs-assets/")]
        assert assets, urls
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
        for url in assets:
            served = anonymous.get(url)
            assert served.status_code == 200, url
            assert len(served.content) > 100, url
            suffix = url[url.rfind(".") :]
            assert CONTENT_TYPES[suffix] in served.headers["content-type"], url


def test_swagger_ui_is_the_local_bundle_and_no_validator_is_called(live: LiveApi) -> None:
    with live.client() as anonymous:
        html = anonymous.get("/docs").text
        assert "/docs-assets/swagger-ui-bundle.js" in html
        assert "/docs-assets/swagger-ui.css" in html
        # Swagger UI would otherwise ask validator.swagger.io for a badge.
        assert re.search(r'"validatorUrl":\s*null', html), html
        bundle = anonymous.get("/docs-assets/swagger-ui-bundle.js").text
        assert "SwaggerUIBundle" in bundle
        assert anonymous.get("/docs-assets/no-such-file.js").status_code == 404
