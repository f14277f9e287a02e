"""The Ray engine on a local Ray runtime against the machine's PostgreSQL: the same profiles and
the same batch recommendations as the local engine, and a killed worker costs nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_sessionmaker, upgrade
from core.models import Profile
from core.settings import Settings
from jobs.mine import mine_users
from tests.conftest import PG_URL, pg_schema
from tests.retrieval.conftest import store_events, world

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    from jobs.engines import start_ray

    start_ray(None)
    yield
    ray.shutdown()


@pytest.fixture
def pg_store() -> Iterator[tuple[str, sessionmaker[Session]]]:
    """A fresh schema whose URL carries it (Ray tasks reopen the store from the URL)."""
    with pg_schema() as schema:
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        engine = make_engine(url)
        upgrade(engine)
        factory = make_sessionmaker(engine)
        store_events(factory, world(n_users=12, days=40)[0])
        yield url, factory
        engine.dispose()


def _facts(factory: sessionmaker[Session]) -> dict[str, list[dict[str, object]]]:
    with factory() as s:
        rows = s.execute(select(Profile.user_id, Profile.version, Profile.facts, Profile.text)).all()
    return {f"{u}@{v}": [*facts, {"text": t}] for u, v, facts, t in rows}


def test_ray_mines_the_same_profiles_as_the_local_engine(
    ray_runtime: None, pg_store: tuple[str, sessionmaker[Session]], tmp_path: Path
) -> None:
    _, factory = pg_store
    local = mine_users(factory, data_dir=tmp_path, workers=1)
    assert local["mined"] == 12 and local["new_versions"] == 12
    by_local = _facts(factory)
    with factory() as s:
        s.query(Profile).delete()
        s.commit()
    out = mine_users(factory, data_dir=tmp_path, engine="ray")
    assert out["mined"] == 12 and out["new_versions"] == 12 and not out["failed"]
    assert _facts(factory) == by_local  # fact by fact, and the text


def test_a_killed_ray_worker_is_retried_without_duplicate_versions(
    ray_runtime: None, pg_store: tuple[str, sessionmaker[Session]], tmp_path: Path
) -> None:
    from jobs.mine import BatchResult, PlanSpec, plan_spec, ray_mine

    _, factory = pg_store
    marker = tmp_path / "killed"

    def dies_once(url: str, users: list[str], gs: object, spec: PlanSpec) -> object:
        # runs in a Ray worker: the first task to get here stores its batch, then its process dies
        # before returning (the worst moment: work committed, result lost)
        from jobs.mine import mine_task

        result = mine_task(url, users, gs, spec)  # type: ignore[arg-type]
        try:
            fd = os.open(str(marker), os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return result
        os.close(fd)
        os._exit(1)

    with factory() as s:
        users = sorted(u for (u,) in s.execute(text("SELECT id FROM users")))
    batches = [users[i : i + 3] for i in range(0, len(users), 3)]
    results = list(ray_mine(factory, batches, None, plan_spec(factory), task_fn=dies_once))
    assert marker.exists()  # a worker did die
    assert sorted(u for b, _ in results for u in b) == users  # every batch came back once
    assert sum(r.mined for _, r in results if isinstance(r, BatchResult)) == len(users)
    with factory() as s:
        counts = dict(s.execute(select(Profile.user_id, func.count()).group_by(Profile.user_id)).all())
    assert counts == dict.fromkeys(users, 1)  # the retried batch added no second version


def test_batch_recommendations_match_between_engines_and_resume(
    ray_runtime: None,
    pg_store: tuple[str, sessionmaker[Session]],
    tmp_path: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobs.recommend_batch import recommend_batch

    url, factory = pg_store
    monkeypatch.setenv("CHRONOTOPE_DB_URL", url)
    monkeypatch.setenv("CHRONOTOPE_RETRIEVAL__EMBEDDING_SOURCE", "false")
    settings = Settings(env="test")
    assert settings.data_dir == data_dir  # nothing lands in the checkout's own data dir
    mine_users(factory, data_dir=settings.data_dir, workers=1)
    users = [f"u{i}" for i in range(12)]
    when = datetime(2012, 6, 4, 18, tzinfo=UTC)
    a, b = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    local = recommend_batch(settings, factory, users[:7], a, when, k=5)
    assert local.users == 7 and not local.failed
    again = recommend_batch(settings, factory, users, a, when, k=5)  # resumes: only the five left
    assert again.skipped == 7 and again.users == 5
    on_ray = recommend_batch(settings, factory, users, b, when, k=5, engine="ray", workers=2)
    assert on_ray.users == 12 and not on_ray.failed

    def lines(p: Path) -> dict[str, list[tuple[str, str]]]:
        rows = [json.loads(line) for line in p.read_text().splitlines()]
        return {r["user_id"]: [(i["item_id"], i["explanation"]) for i in r["items"]] for r in rows}

    assert lines(a) == lines(b) and len(lines(a)) == 12
    with factory() as s:  # every pushed list has its trace, findable by the run
        n = s.scalar(text("SELECT count(*) FROM recommendations"))
    assert n == 7 + 5 + 12
