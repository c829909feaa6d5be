"""The API's documentation pages work on an intranet: every asset they load is served by the service itself."""

from __future__ import annotations

import re

from tests.http.support import client_for


def assets_of(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"""url: ?["']([^"']+)["']""", html)


def test_the_docs_and_redoc_pages_load_every_asset_from_the_service_not_a_cdn(tmp_path):
    with client_for(str(tmp_path / "e.db"), tmp_path) as client:
        for page in ("/docs", "/redoc"):
            r = client.get(page)
            assert r.status_code == 200, page
            urls = assets_of(r.text)
            assert urls, page
            for url in urls:
                assert url.startswith("/"), f"{page} loads {url} from outside the service"
                got = client.get(url)
                assert got.status_code == 200 and len(got.content) > 100, url
        assert "SwaggerUIBundle" in client.get("/docs").text
        assert client.get("/static/swagger-ui/swagger-ui-bundle.js").headers["content-type"].startswith(
            ("application/javascript", "text/javascript"))
