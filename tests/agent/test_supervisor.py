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

from agent.llm.server import ServerHandle, group_members, healthy, stop_stale_server
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


def test_a_dead_servers_engine_processes_are_stopped_before_the_restart(tmp_path: Path) -> None:
    """vLLM's engine runs in child processes: killing only the API process left them holding
    7.1 GB. The supervisor stops the dead server's whole process group, then starts another."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"

    def start() -> ServerHandle:
        proc = subprocess.Popen(
            [sys.executable, str(STAND_IN), "--port", str(port), "--mode", "slow", "--engine"],
            start_new_session=True,
        )
        assert _wait(lambda: healthy(base, 0.5) and len(group_members(proc.pid)) == 2)
        return ServerHandle(proc, base, tmp_path / "vllm.log")

    sup = Supervisor(start, first_backoff_s=0.2, max_backoff_s=0.4, poll_s=0.05)
    thread = sup.run_in_background()
    try:
        assert _wait(lambda: sup.handle is not None and healthy(base, 0.5))
        victim = sup.handle
        assert victim is not None
        old_group = victim.process.pid
        engine = [p for p in group_members(old_group) if p != old_group]
        assert len(engine) == 1
        os.kill(old_group, signal.SIGKILL)  # only the API process, as the OOM killer would
        assert _wait(lambda: sup.restarts == 1 and sup.handle is not victim and healthy(base, 0.5))
        assert group_members(old_group) == []  # the engine child went with it
        new = sup.handle
        assert new is not None and len(group_members(new.process.pid)) == 2
    finally:
        sup.stop()
        thread.join(10)
    assert group_members(new.process.pid) == []  # and on shutdown, the whole group


def test_a_server_left_by_a_killed_chronotope_is_stopped_at_the_next_start(tmp_path: Path) -> None:
    pgid_file = tmp_path / "vllm-8001.pgid"
    stale = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", "vllm.entrypoints.openai.api_server"],
        start_new_session=True,
    )
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        pgid_file.write_text(str(other.pid))
        assert stop_stale_server(pgid_file) == 0  # not a vLLM group: left alone
        assert other.poll() is None
        pgid_file.write_text(str(stale.pid))
        said: list[str] = []
        assert stop_stale_server(pgid_file, said.append) == 1
        assert stale.wait(10) is not None and "earlier embedded LLM server" in said[0]
        assert not pgid_file.exists()
    finally:
        for p in (stale, other):
            p.kill()
            p.wait()
