"""The LLM endpoint misbehaves under concurrent recommendation requests (a real socket, the real
OpenAI client, the server in its own process): hung, slow, garbage, labels that do not exist, and
killed mid-load. Every request answers 200 within the LLM deadline plus a second, with the feature
ranker's order and template explanations, and says so; none waits longer because others did (the
bounded LLM queue sheds the surplus at once)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.db import open_store
from core.settings import Settings
from tests.api.conftest import seed
from tests.integration.conftest import free_port, serve_app, wait_answering

pytestmark = pytest.mark.integration
ADMIN = "ck_test_admin_key_for_llm_faults"
TIMEOUT_S = 2.0
SLACK_S = 1.0  # "no request slower than its configured timeout plus a second"
SERVER = Path(__file__).with_name("misbehaving_llm.py")


def _llm(mode: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", str(port), "--mode", mode, "--delay", "6"]
    )
    wait_answering(f"http://127.0.0.1:{port}/v1/models")
    return proc, port


def _app(llm_port: int, data_dir: Path) -> Iterator[str]:
    s = Settings(
        env="test",
        data_dir=data_dir,
        llm_base_url=f"http://127.0.0.1:{llm_port}/v1",
        llm={
            "timeout_s": TIMEOUT_S,
            "retries": 1,
            "warm_up": False,
            "max_in_flight": 2,
            "max_waiting": 4,
            "rerank_when": "with_text",  # the default is off: these requests carry text to exercise it
        },
        retrieval={"ranker": "heuristic"},
        api={"bootstrap_admin_key": ADMIN, "rate_limit_per_s": 0, "remine_after_events": False},
    )
    _, factory = open_store(s)
    seed(factory, s.data_dir)
    from fastapi.testclient import TestClient

    with TestClient(create_app(s)) as c:  # runs the lifespan; uvicorn below serves the same app
        base, server = serve_app(c.app)
        yield base
        server.stop()


def _burst(base: str, n: int, during: Any = None) -> list[dict[str, Any]]:
    """n concurrent recommendation requests with the LLM on; ``during`` runs while they are in flight."""
    out: list[dict[str, Any]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        # with text, so the LLM reranks too (without it only the explanations would call it)
        context = {"time": "2012-05-14T16:00:00Z", "text": "somewhere to eat"}
        body = {"user_id": f"u{i % 8}", "k": 5, "use_llm": True, "context": context}
        t0 = time.monotonic()
        r = httpx.post(
            f"{base}/v1/recommendations", json=body, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
        )
        with lock:
            out.append({"status": r.status_code, "took": time.monotonic() - t0, "body": r.json()})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    if during is not None:
        during()
    for t in threads:
        t.join(90)
    return out


def _fell_back_in_time(answers: list[dict[str, Any]]) -> None:
    assert len(answers) and all(a["status"] == 200 for a in answers), [
        a["body"] for a in answers if a["status"] != 200
    ][:2]
    slowest = max(a["took"] for a in answers)
    assert slowest <= TIMEOUT_S + SLACK_S, f"slowest {slowest:.2f} s"
    for a in answers:
        b = a["body"]
        assert b["items"]  # the feature ranker's places, always
        llm_used = b["ranker"].startswith("llm") and not any("language model" in n for n in b["notes"])
        assert not llm_used, b["ranker"]
        assert b["notes"], "a fallback must say so"
        assert all(i["explained_by"] == "template" for i in b["items"])


@pytest.mark.parametrize("mode", ["hung", "slow", "garbage", "labels"])
def test_a_misbehaving_llm_under_concurrent_requests(mode: str, data_dir: Path) -> None:
    proc, port = _llm(mode)
    try:
        for base in _app(port, data_dir):
            first = _burst(base, 8)
            _fell_back_in_time(first)
            # 8 at once: 2 in flight, 4 waiting, the rest served at once without waiting
            busy = [a for a in first if any("language model is busy" in n for n in a["body"]["notes"])]
            print(mode, sorted(round(a["took"], 2) for a in first))
            # "busy" is also the note of a waiting request whose deadline came before a slot did
            # (the held slots free up at about that moment: a race), so the shed ones are the
            # busy ones answered at once; every answer came in time (_fell_back_in_time above)
            shed = [a for a in busy if a["took"] < SLACK_S]
            if mode in ("hung", "slow"):  # the LLM holds its slots: the surplus must have been shed
                assert len(shed) >= 2, sorted(round(a["took"], 2) for a in busy)
            _fell_back_in_time(_burst(base, 4))  # and again, with the breaker's view of the server
    finally:
        proc.kill()


def test_the_llm_killed_mid_load(data_dir: Path) -> None:
    proc, port = _llm("slow")
    try:
        for base in _app(port, data_dir):
            answers = _burst(base, 6, during=lambda: (time.sleep(0.5), proc.kill()))
            print("killed", sorted(round(a["took"], 2) for a in answers))
            _fell_back_in_time(answers)
            _fell_back_in_time(_burst(base, 4))  # nothing listens any more: refused at once
    finally:
        proc.kill()
