"""`chronotope serve --workers 2` as a real process: events posted through one worker are served
by every worker within the state poll, and traces written in batches are readable from any."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from core.db import open_store
from core.settings import Settings
from tests.integration.conftest import SERVE_ADMIN, served
from tests.retrieval.conftest import store_events, world

pytestmark = pytest.mark.integration
ADMIN = SERVE_ADMIN


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    ev, _ = world(n_users=12, days=30)
    settings = Settings(env="test", data_dir=tmp_path / "data")
    _, factory = open_store(settings)
    store_events(factory, ev)
    with served(settings.data_dir, tmp_path / "serve.log", workers=2) as (base, proc):
        yield base, proc


def _ready(base: str) -> dict:  # type: ignore[type-arg]
    # a new connection each time, so the kernel spreads the calls over the workers
    return httpx.get(f"{base}/readyz", headers={"Connection": "close"}, timeout=10).json()


def _versions_by_worker(base: str, tries: int = 60) -> dict[int, int]:
    seen: dict[int, int] = {}
    for _ in range(tries):
        r = _ready(base)["serving"]
        seen[r["worker_pid"]] = r["state"]["version"]
    return seen


def test_events_posted_to_one_worker_are_served_by_all(
    two_workers: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, _ = two_workers
    auth = {"Authorization": f"Bearer {ADMIN}", "Connection": "close"}
    deadline = time.monotonic() + 120
    seen: dict[int, int] = {}
    while len(seen) < 2 and time.monotonic() < deadline:  # both workers up and answering
        try:
            seen.update(_versions_by_worker(base, 10))
        except httpx.HTTPError:
            time.sleep(0.5)
    assert len(seen) == 2, f"expected two workers, saw {seen}"
    when = datetime(2012, 5, 2, 20, 0, tzinfo=UTC)
    event = {
        "event_id": "brand-new-visit",
        "user_id": "u3",
        "item_id": "brand-new-place",
        "timestamp": when.isoformat(),
        "lat": 40.76,
        "lon": -73.97,
        "category": "Ramen Restaurant",
        "item_name": "Brand-new ramen",
    }
    r = httpx.post(f"{base}/v1/events", json={"events": [event]}, headers=auth, timeout=30)
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    t0 = time.monotonic()
    body = {
        "user_id": "u3",
        "k": 20,
        "explain": False,
        "use_llm": False,
        "context": {"time": (when + timedelta(hours=1)).isoformat(), "lat": 40.76, "lon": -73.97},
    }
    # every worker must serve the new place within a few seconds
    ok_by_worker: dict[int, bool] = {}
    while time.monotonic() - t0 < 10 and not (len(ok_by_worker) == 2 and all(ok_by_worker.values())):
        state = _ready(base)["serving"]
        rec = httpx.post(f"{base}/v1/recommendations", json=body, headers=auth, timeout=30)
        assert rec.status_code == 200, rec.text
        ok_by_worker[state["worker_pid"]] = state["state"]["version"] > seen[state["worker_pid"]]
    assert len(ok_by_worker) == 2 and all(ok_by_worker.values()), ok_by_worker
    # after both moved on, every answer (whichever worker) has the new place
    for _ in range(10):
        rec = httpx.post(f"{base}/v1/recommendations", json=body, headers=auth, timeout=30).json()
        assert "brand-new-place" in [i["item_id"] for i in rec["items"]]
        trace = httpx.get(f"{base}/v1/recommendations/{rec['recommendation_id']}", headers=auth, timeout=30)
        assert trace.status_code == 200 and trace.json()["items"] == [i["item_id"] for i in rec["items"]]


def test_a_killed_worker_is_replaced_and_serves(two_workers: tuple[str, subprocess.Popen[bytes]]) -> None:
    base, _ = two_workers
    deadline = time.monotonic() + 120
    seen: dict[int, int] = {}
    while len(seen) < 2 and time.monotonic() < deadline:
        try:
            seen.update(_versions_by_worker(base, 10))
        except httpx.HTTPError:
            time.sleep(0.5)
    assert len(seen) == 2
    victim = min(seen)
    os.kill(victim, signal.SIGKILL)
    auth = {"Authorization": f"Bearer {ADMIN}", "Connection": "close"}
    body = {"user_id": "u1", "k": 5, "explain": True, "use_llm": False}
    fresh: set[int] = set()
    while time.monotonic() < deadline + 60 and not fresh:
        try:
            pid = _ready(base)["serving"]["worker_pid"]
        except httpx.HTTPError:
            continue
        if pid not in seen:
            fresh.add(pid)
    assert fresh, "no replacement worker appeared"
    # the survivor and the replacement both answer
    codes = {
        httpx.post(f"{base}/v1/recommendations", json=body, headers=auth, timeout=30).status_code
        for _ in range(10)
    }
    assert codes == {200}
