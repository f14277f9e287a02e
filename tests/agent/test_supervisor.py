"""The embedded LLM server is started again when it dies, after a growing backoff, and logged;
real processes (a small HTTP server standing in for vLLM, killed from outside)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.llm.server import ServerHandle, healthy
from agent.llm.supervisor import Supervisor
from tests.integration.conftest import free_port

STAND_IN = Path(__file__).resolve().parents[1] / "integration" / "misbehaving_llm.py"


def _wait(pred, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_server_is_started_again_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    starts: list[float] = []

    def start() -> ServerHandle:
        starts.append(time.monotonic())
        proc = subprocess.Popen(
            [sys.executable, str(STAND_IN), "--port", str(port), "--mode", "slow"], start_new_session=True
        )
        assert _wait(lambda: healthy(base, 0.5))
        return ServerHandle(proc, base, tmp_path / "vllm.log")

    sup = Supervisor(start, first_backoff_s=0.2, max_backoff_s=0.4, poll_s=0.05)
    with caplog.at_level(logging.ERROR, logger="agent.llm.supervisor"):
        thread = sup.run_in_background()
        try:
            assert _wait(lambda: sup.handle is not None and healthy(base, 0.5))
            for n in (1, 2, 3):
                victim = sup.handle
                assert victim is not None
                os.killpg(victim.process.pid, signal.SIGKILL)  # the OOM killer, say
                assert _wait(
                    lambda n=n, v=victim: sup.restarts == n and sup.handle is not v and healthy(base, 0.5)
                )
        finally:
            sup.stop()
            thread.join(10)
    assert len(starts) == 4 and not thread.is_alive()
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert gaps[1] >= 0.2 and gaps[2] >= 0.4  # backed off, then capped
    assert sup.handle is not None and not sup.handle.alive()  # stop() stops the server too
    lines = [r.getMessage() for r in caplog.records]
    assert sum("exited (code -9)" in m and "restart" in m for m in lines) == 3


def test_a_server_that_cannot_start_is_retried_without_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    tries: list[float] = []

    def start() -> ServerHandle:
        tries.append(time.monotonic())
        raise RuntimeError("the model is not provisioned")

    sup = Supervisor(start, first_backoff_s=0.05, max_backoff_s=0.1, poll_s=0.01)
    with caplog.at_level(logging.ERROR, logger="agent.llm.supervisor"):
        t = sup.run_in_background()
        assert _wait(lambda: len(tries) >= 3)
        sup.stop()
        t.join(5)
    assert not t.is_alive() and "not provisioned" in (sup.last_exit or "")
    assert any("did not start" in r.getMessage() for r in caplog.records)
