"""The API docs page (Swagger UI) and ReDoc load their scripts and styles from the app itself, not
from a CDN: they work on a machine without internet. The browser proves it in test_browser.py."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings

ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)


def test_docs_assets_are_served_locally(api_settings: Settings) -> None:
    c = TestClient(create_app(api_settings))  # no lifespan: the docs need no store
    for page, wanted in (("/docs", {".js", ".css"}), ("/redoc", {".js"})):
        r = c.get(page)
        assert r.status_code == 200 and "Chronotope" in r.text
        assets = ASSET.findall(r.text)
        assert {a[a.rfind(".") :] for a in assets} >= wanted, assets
        assert "cdn" not in r.text.lower() and "http://" not in r.text and "https://" not in r.text
        for url in assets:
            assert url.startswith("/") and not url.startswith("//"), url  # this server, no other host
            got = c.get(url)
            assert got.status_code == 200, url
            if url.endswith(".js"):
                assert "javascript" in got.headers["content-type"] and len(got.content) > 100_000
            if url.endswith(".css"):
                assert got.headers["content-type"].startswith("text/css") and ".swagger-ui" in got.text
    assert "SwaggerUIBundle" in c.get("/docs").text
    assert c.get("/openapi.json").json()["info"]["title"] == "Chronotope"
