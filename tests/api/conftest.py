"""An app over a small synthetic store (SQLite), LLM off by default so tests are fast and exact."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.auth import create_key
from core.db import open_store
from core.ingest import write_events
from core.ingest.reading import ATTRS, LINE
from core.models import Item
from core.settings import Settings
from jobs.mine import mine_users
from tests.retrieval.conftest import world


@dataclass
class Keys:
    admin: str
    support: str
    u1: str
    u2: str


def seed(factory: sessionmaker[Session], data_dir: Path) -> None:
    ev, items = world(n_users=8, days=40)
    df = ev.copy()
    df[ATTRS] = None
    df[LINE] = range(len(df))
    write_events(factory, df)
    with factory() as s:
        for r in items.itertuples():
            it = s.get(Item, r.item_id)
            if it is not None:
                it.name, it.category = r.name, r.category
        s.commit()
    mine_users(factory, data_dir=data_dir, workers=1)


@pytest.fixture
def api_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CHRONOTOPE_LLM__ENABLED", "false")
    monkeypatch.setenv("CHRONOTOPE_RETRIEVAL__RANKER", "heuristic")
    # schemathesis and the route tests fire hundreds of requests with one key; the limit has its
    # own test (test_rate_limit.py)
    monkeypatch.setenv("CHRONOTOPE_API__RATE_LIMIT_PER_S", "0")
    return Settings(env="test")


@pytest.fixture
def client_keys(api_settings: Settings) -> Iterator[tuple[TestClient, Keys]]:
    _, factory = open_store(api_settings)
    seed(factory, api_settings.data_dir)
    with factory() as s:
        keys = Keys(
            create_key(s, "admin"),
            create_key(s, "support"),
            create_key(s, "user", "u1"),
            create_key(s, "user", "u2"),
        )
        s.commit()
    with TestClient(create_app(api_settings, use_llm=False, remining=remining(api_settings))) as c:
        yield c, keys


def remining(settings: Settings):  # type: ignore[no-untyped-def]
    """The product's background re-miner, as `chronotope serve` wires it (cli/serving.py)."""
    from jobs.background_mining import BackgroundMiner

    return lambda factory: BackgroundMiner(factory, settings.data_dir)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
