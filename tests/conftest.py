"""Shared fixtures: an isolated data dir and store per test, SQLite and (marker postgres) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_sessionmaker, upgrade
from core.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
# CI clones the repository with shared/ beside it; CHRONOTOPE_DATASETS points elsewhere if needed.
DATASETS = (
    Path(os.environ.get("CHRONOTOPE_DATASETS", REPO_ROOT.parent / "shared" / "datasets")) / "foursquare_nyc"
)
PG_URL = os.environ.get("CHRONOTOPE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _closed_llm_circuits() -> Iterator[None]:
    """Each test starts with closed LLM circuits: one server's breaker is shared process-wide."""
    from agent.llm.breaker import reset_breakers

    reset_breakers()
    yield


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("CHRONOTOPE_DATA_DIR", str(d))
    monkeypatch.delenv("CHRONOTOPE_DB_URL", raising=False)
    monkeypatch.delenv("CHRONOTOPE_LLM_BASE_URL", raising=False)
    return d


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    s = Settings(env="test")
    s.ensure_dirs()
    return s


@pytest.fixture
def sqlite_engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.resolved_db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _pg_available() -> bool:
    try:
        eng = create_engine(PG_URL)
        with eng.connect():
            pass
        eng.dispose()
        return True
    except Exception:
        return False


@contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL, dropped afterwards (skips, or fails on CI, when the
    server is not there)."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {PG_URL}; CI must run the store tests on it")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A fresh schema in the local PostgreSQL for each test (dropped afterwards)."""
    with pg_schema() as schema:
        engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
        upgrade(engine)
        yield engine
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on SQLite and on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)


@pytest.fixture
def session_factory(store_engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(store_engine)


@pytest.fixture
def sqlite_session_factory(sqlite_engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(sqlite_engine)


def services_for(
    settings: Settings, factory: sessionmaker[Session], *, retriever=None, llm: bool = False, **kw
):  # type: ignore[no-untyped-def]
    """The serving core (agent.assembly) for the places domain over a test store; the LLM off
    unless asked for (then ``client=`` gives the fake or real server's client)."""
    from agent.assembly import build_services
    from domains.places import PLACES
    from retrieval.service import Retriever

    s = (
        settings
        if llm
        else settings.model_copy(update={"llm": settings.llm.model_copy(update={"enabled": False})})
    )
    if retriever is None:
        retriever = Retriever.load(s, factory, PLACES.retrieval_plan(), load_index=False, grounding=False)
    kw.setdefault("traces", False)
    return build_services(s, factory, retriever=retriever, domain=PLACES, **kw)
