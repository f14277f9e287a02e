"""The web page end to end in headless Debian Chromium (Playwright): chat, then the support view."""

from __future__ import annotations

import os
import shutil
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Keys
from tests.integration.conftest import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def live(client_keys: tuple[TestClient, Keys]):  # type: ignore[no-untyped-def]
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium missing in CI (scripts/test.sh installs Debian's chromium)")
        pytest.skip("Debian's chromium is not installed")
    import uvicorn

    client, keys = client_keys
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(client.app, host="127.0.0.1", port=port, log_level="warning"))
    server.config.lifespan = "off"  # the TestClient already ran the lifespan; reuse its state
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/", keys
    server.should_exit = True
    t.join(timeout=10)


def test_chat_and_support_views(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    url, keys = live
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.goto(url)
        page.fill("#key", keys.u1)
        page.fill("#chat-user", "u1")
        page.fill("#chat-input", "I want a museum, no coffee")
        page.click("#chat-send")
        page.wait_for_selector(".msg-bot", timeout=20_000)
        reply = page.inner_text(".msg-bot")
        assert "Here are my suggestions" in reply and "avoiding coffee" in reply and "Museum" in reply
        page.screenshot(path=str(tmp_path / "chat.png"))
        # support view with a support key
        page.fill("#key", keys.support)
        page.click("#tab-support")
        page.fill("#sup-user", "u1")
        page.click("#sup-load")
        page.wait_for_selector("#sup-plots img", timeout=20_000)
        assert page.inner_text("#sup-text").strip()
        page.wait_for_selector("[data-rec]", timeout=20_000)
        page.click("[data-rec]")
        page.wait_for_selector("#sup-trace:not(.hidden)", timeout=10_000)
        assert '"ranker"' in page.inner_text("#sup-trace")
        page.screenshot(path=str(tmp_path / "support.png"), full_page=True)
        # a user key is refused another user's profile, and the page says so
        page.fill("#key", keys.u2)
        page.click("#sup-load")
        page.wait_for_function("document.getElementById('sup-status').textContent.startsWith('Error')")
        shutil.copy(tmp_path / "support.png", "/tmp/chronotope-support.png")
        browser.close()
