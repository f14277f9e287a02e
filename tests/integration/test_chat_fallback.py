"""The chat with a broken LLM endpoint on a real socket, through the real OpenAI client: a server
that accepts and never answers, and one that answers garbage. The rules and the template answer
within the timeout, and the response says so."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_key
from core.db import open_store
from core.settings import Settings
from tests.api.conftest import seed
from tests.integration.conftest import free_port

pytestmark = [pytest.mark.integration]


@pytest.fixture
def hung_port() -> Iterator[int]:
    """Accepts connections and reads requests, never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(timeout=2)
    for c in conns:
        c.close()
    srv.close()


class Garbage(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        message = {"role": "assistant", "content": "I am not JSON at all"}
        body = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def _client(port: int, data_dir: Path) -> tuple[TestClient, str]:
    s = Settings(
        env="test",
        data_dir=data_dir,
        llm_base_url=f"http://127.0.0.1:{port}/v1",
        llm={"timeout_s": 2, "retries": 0},
        retrieval={"ranker": "heuristic"},
        chat={"understand_timeout_s": 2, "reply_timeout_s": 2, "turn_timeout_s": 8},
    )
    _, factory = open_store(s)
    seed(factory, s.data_dir)
    with factory() as sess:
        key = create_key(sess, "user", "u1")
        sess.commit()
    return TestClient(create_app(s)), key


def test_a_hung_llm_gets_the_rules_and_the_template_within_the_timeout(
    hung_port: int, data_dir: Path
) -> None:
    client, key = _client(hung_port, data_dir)
    with client as c:
        t0 = time.perf_counter()
        r = c.post(
            "/v1/chat",
            headers={"Authorization": f"Bearer {key}"},
            json={"user_id": "u1", "message": "I'd like a museum", "time": "2012-05-14T16:00:00Z"},
        )
        took = time.perf_counter() - t0
    assert r.status_code == 200
    out = r.json()
    assert out["understood_by"] == "rules" and out["reply_source"] == "template"
    assert out["items"] and all(i["category"] == "Museum" for i in out["items"])
    assert any("rules understood" in n for n in out["notes"])
    assert took < 8  # one understanding timeout (2 s), then no more waiting on that server


def test_garbage_from_the_llm_gets_the_rules(data_dir: Path) -> None:
    port = free_port()
    srv = ThreadingHTTPServer(("127.0.0.1", port), Garbage)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        client, key = _client(port, data_dir)
        with client as c:
            r = c.post(
                "/v1/chat",
                headers={"Authorization": f"Bearer {key}"},
                json={"user_id": "u1", "message": "a park", "time": "2012-05-14T16:00:00Z"},
            )
    finally:
        srv.shutdown()
    out = r.json()
    assert r.status_code == 200 and out["understood_by"] == "rules"
    assert any("could not be used" in n for n in out["notes"])  # the error itself: the stored turn
    assert out["reply_source"] == "template"  # the streamed "reply" was not a stream either
