"""A short mixed load on `chronotope serve --workers 2`: recommendations, chat turns, event batches
and feedback at 16 connections; afterwards nothing acknowledged is missing from the store, every
served recommendation has its trace, and no request got a server error. The 60 s run is
benchmarks/mixed_load.py."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from core.db import open_store
from core.settings import Settings
from evaluation.mixed_load import audit, run_load
from jobs.mine import mine_users
from tests.integration.conftest import SERVE_ADMIN, served
from tests.retrieval.conftest import store_events, world

pytestmark = pytest.mark.integration
SECONDS = float(os.environ.get("CHRONOTOPE_TEST_LOAD_S", "8"))


def test_a_mixed_load_loses_nothing(tmp_path: Path) -> None:
    ev, items = world(n_users=20, days=30)
    settings = Settings(env="test", data_dir=tmp_path / "data")
    _, factory = open_store(settings)
    store_events(factory, ev)
    mine_users(factory, data_dir=settings.data_dir, workers=1)
    users = sorted(ev["user_id"].unique())
    with served(settings.data_dir, tmp_path / "serve.log", workers=2) as (base, _):
        result = asyncio.run(
            run_load(base, SERVE_ADMIN, users, list(items["item_id"]), seconds=SECONDS, connections=16)
        )
        found = audit(factory, result)
    summary = result.summary()
    print(summary, found)
    assert result.server_errors == 0 and result.transport_errors == 0, summary["statuses"]
    assert all(op in result.requests for op in ("recommend", "chat", "events", "feedback"))
    assert found["events"]["acknowledged"] > 0 and found["events"]["missing"] == 0
    assert found["events"]["duplicated"] == 0
    assert found["feedback"]["acknowledged"] > 0 and found["feedback"]["missing"] == 0
    assert found["traces"]["served"] > 0 and found["traces"]["missing"] == 0
    assert set(summary["statuses"]) <= {"recommend 200", "chat 200", "events 200", "feedback 201"}
    assert SERVE_ADMIN not in (tmp_path / "serve.log").read_text()  # the key never reaches the log
