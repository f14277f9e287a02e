"""The web page end to end in headless Debian Chromium (Playwright): chat, then the support view."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Keys
from tests.integration.conftest import serve_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _need_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium missing in CI (scripts/test.sh installs Debian's chromium)")
        pytest.skip("Debian's chromium is not installed")


def _launch(p):  # type: ignore[no-untyped-def]
    return p.chromium.launch(
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


@pytest.fixture
def live(client_keys: tuple[TestClient, Keys]):  # type: ignore[no-untyped-def]
    _need_chromium()
    client, keys = client_keys
    base, server = serve_app(client.app)
    yield base + "/", keys
    server.stop()


def test_chat_and_support_views(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    url, keys = live
    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page()
        page.goto(url)
        page.fill("#key", keys.u1)
        page.fill("#chat-user", "u1")
        page.fill("#chat-input", "I want a museum, no coffee")
        page.click("#chat-send")
        page.wait_for_selector(".msg-bot[data-done]", timeout=30_000)
        reply = page.inner_text(".msg-bot")
        assert "Here are my suggestions" in reply and "avoiding coffee" in reply and "Museum" in reply
        assert "template reply" in reply  # the page says the template answered (the LLM is off here)
        # refinements that must not write feedback: an exclusion of a kind, an unclear "not that one"
        for n, message in enumerate(["no pizza please", "not that one"], start=2):
            page.fill("#chat-input", message)
            page.click("#chat-send")
            page.wait_for_function(f"document.querySelectorAll('.msg-bot[data-done]').length >= {n}")
        assert "Which one do you mean?" in page.locator(".msg-bot").nth(2).inner_text()
        stored = page.evaluate(
            "async () => (await (await fetch('/v1/users/u1/feedback', {headers: headers()})).json())"
        )
        assert stored["feedback"] == [], stored  # nothing stored on u1's behalf
        page.screenshot(path=str(tmp_path / "chat.png"))
        # "For you": explained recommendations, each saying who wrote it and that it was checked
        page.click("#tab-foryou")
        page.fill("#fy-user", "u1")
        page.click("#fy-go")
        page.wait_for_selector("#fy-list .rec", timeout=30_000)
        recs = page.inner_text("#fy-list")
        assert "fact-checked" in recs and "template (rules)" in recs  # the LLM is off here
        assert not re.search(r"\b(Place|place) \d", recs)  # readable labels, never a bare id
        assert page.locator("#fy-list .cite").count() >= 1  # the facts each explanation cites
        # u1 turns the first place down on the page; the next list hides it
        first = page.locator("#fy-list .rec").first.get_attribute("data-item")
        page.locator("#fy-list .rec").first.locator("[data-react=rejected]").click()
        page.wait_for_selector("#fy-list .rec[data-reacted=rejected]", timeout=10_000)
        assert "not shown to you again" in page.inner_text("#fy-list")
        page.click("#fy-go")
        page.wait_for_function(
            f"!document.getElementById('fy-list').innerHTML.includes('data-item=\"{first}\"')"
            " && document.querySelectorAll('#fy-list .rec').length > 0"
        )
        assert "hidden after an earlier rejection" in page.inner_text("#fy-status")
        # support view with a support key
        page.fill("#key", keys.support)
        page.click("#tab-support")
        page.fill("#sup-user", "u1")
        page.click("#sup-load")
        page.wait_for_selector("#sup-plots img", timeout=20_000)
        assert page.inner_text("#sup-text").strip()
        page.wait_for_selector("[data-rec]", timeout=20_000)
        page.click("[data-rec]")
        page.wait_for_selector("#sup-why:not(.hidden)", timeout=10_000)
        history = page.inner_text("#sup-feedback")
        assert "rejected" in history and first in history and "hidden from this user until" in history
        why = page.inner_text("#sup-why")
        assert f"item {first} hidden: rejected on" in why  # the newest trace says what feedback changed
        assert "Facts cited" in why and "found by:" in why and "template (rules)" in why
        assert "fact-checked" in why  # the checker's verdict on each served explanation
        assert not page.is_visible("#sup-trace")  # the raw JSON stays behind its toggle
        page.click("#sup-raw summary")
        assert '"ranker"' in page.inner_text("#sup-trace")
        page.screenshot(path=str(tmp_path / "support.png"), full_page=True)
        # a user key is refused another user's profile, and the page says so
        page.fill("#key", keys.u2)
        page.click("#sup-load")
        page.wait_for_function("document.getElementById('sup-status').textContent.startsWith('Error')")
        shutil.copy(tmp_path / "support.png", "/tmp/chronotope-support.png")
        browser.close()


def test_the_chat_page_shows_the_reply_as_it_streams(api_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The page renders the reply token by token. The model is a scripted stand-in that writes
    slowly (the real model's streaming is proven in tests/integration/test_chat_llm.py); the page
    must show the text growing before the turn is done, and say the model wrote it."""
    from playwright.sync_api import sync_playwright

    from api.app import create_app
    from api.auth import create_key
    from core.db import open_store
    from tests.agent.fakes import FakeChatLLM
    from tests.api.conftest import seed

    _need_chromium()
    s = api_settings.model_copy(update={"llm": api_settings.llm.model_copy(update={"enabled": True})})
    _, factory = open_store(s)
    seed(factory, s.data_dir)
    with factory() as sess:
        key = create_key(sess, "user", "u1")
        sess.commit()
    words = (
        "You could spend a quiet afternoon at the first Museum on the list, which is new to you and close by."
    )
    fake = FakeChatLLM(
        intents=[{"action": "recommend", "wish": "museum", "kinds": ["museum"]}],
        replies=[words],
        delay_s=0.25,
    )
    with TestClient(create_app(s, chat_client=fake)) as client:
        base, server = serve_app(client.app)
        url = base + "/"
        try:
            with sync_playwright() as p:
                browser = _launch(p)
                page = browser.new_page()
                page.goto(url)
                page.fill("#key", key)
                page.fill("#chat-user", "u1")
                page.fill("#chat-input", "I'd like to see a museum")
                page.click("#chat-send")
                # something moves before any reply text: a typing indicator, gone once text comes
                typing = page.wait_for_selector(".msg-bot .typing", timeout=5000)
                indicator = typing.inner_text() if typing else ""
                seen: list[str] = []
                for _ in range(300):
                    text = (
                        page.inner_text(".msg-bot .reply") if page.query_selector(".msg-bot .reply") else ""
                    )
                    if text and (not seen or seen[-1] != text):
                        seen.append(text)
                    if page.query_selector(".msg-bot[data-done]"):
                        break
                    page.wait_for_timeout(100)
                final = page.inner_text(".msg-bot")
                typing_left = page.query_selector(".msg-bot .typing")
                browser.close()
        finally:
            server.stop()
    assert page is not None
    partial = [x for x in seen if x != seen[-1]]
    assert seen[-1] == words  # the guard let it through: no reset, no template
    assert len(partial) >= 2 and all(words.startswith(x.strip()) for x in partial)
    assert "written by the language model" in final
    assert indicator.startswith(("thinking", "found", "writing")) and typing_left is None


def test_the_api_docs_render_without_internet(api_settings) -> None:  # type: ignore[no-untyped-def]
    """/docs in Chromium that can reach no host but the app: Swagger UI renders the operations from
    the packaged assets, and no request leaves for another host (a CDN)."""
    from playwright.sync_api import sync_playwright

    from api.app import create_app

    _need_chromium()
    base, server = serve_app(create_app(api_settings))  # the docs need no store: no lifespan
    requested: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    # every host name fails to resolve: a CDN script could not load
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                ],
            )
            page = browser.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.goto(base + "/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)  # rendered by the bundle
            assert page.inner_text(".swagger-ui .info .title").startswith("Chronotope")
            page.wait_for_selector(".opblock-summary-path[data-path='/v1/recommendations']", timeout=10_000)
            assert page.locator(".swagger-ui .opblock").count() >= 10
            browser.close()
    finally:
        server.stop()
    assert any(u.endswith("/swagger-ui-bundle.js") for u in requested)
    elsewhere = [u for u in requested if not u.startswith(base + "/")]
    assert not elsewhere, elsewhere
