"""Batch recommendations on Ray: one serving state per actor, loaded once; batches of users go through it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from jobs.batch_service import build_service, recommend_users
from jobs.engines import TASK_RETRIES, check_store_for_ray, start_ray, store_url


class _RecommendActor:
    """One serving state per actor, loaded once; batches of users go through it."""

    def __init__(self, use_llm: bool) -> None:
        from core.db import open_store
        from core.settings import Settings

        settings = Settings()  # from the CHRONOTOPE_* variables the driver passed (runtime_env)
        _, factory = open_store(settings, migrate=False)
        self.services = build_service(settings, factory, use_llm=use_llm)

    def run(
        self, users: list[str], when: Any, k: int, use_llm: bool, run_id: str, concurrency: int
    ) -> list[dict[str, Any]]:
        return recommend_users(
            self.services, users, when, k=k, use_llm=use_llm, run_id=run_id, concurrency=concurrency
        )


def ray_recommend(
    factory: sessionmaker[Session],
    data_dir: Path,
    batches: list[list[str]],
    when: Any,
    *,
    k: int,
    use_llm: bool,
    run_id: str,
    address: str | None,
    actors: int,
    concurrency: int,
) -> Iterator[list[dict[str, Any]]]:
    """Batches over ``actors`` Ray actors (each holds a serving state); yields each batch's lines
    as it finishes. An actor whose process dies is restarted by Ray and its batch retried."""
    check_store_for_ray(store_url(factory), address)
    ray = start_ray(address)
    actor_cls = ray.remote(max_restarts=TASK_RETRIES, max_task_retries=TASK_RETRIES)(_RecommendActor)
    # the driver's settings travel as its CHRONOTOPE_* variables (secrets included, never in code)
    env = {k: v for k, v in os.environ.items() if k.startswith("CHRONOTOPE_")}
    env |= {"CHRONOTOPE_DATA_DIR": str(data_dir.resolve()), "CHRONOTOPE_DB_URL": store_url(factory)}
    n = max(1, min(actors, len(batches)))
    pool = [actor_cls.options(runtime_env={"env_vars": env}).remote(use_llm) for _ in range(n)]
    queue = list(batches)
    pending: dict[Any, Any] = {}

    def give_next(actor: Any) -> None:
        if queue:
            pending[actor.run.remote(queue.pop(0), when, k, use_llm, run_id, concurrency)] = actor

    for actor in pool:
        give_next(actor)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            actor = pending.pop(ref)
            yield ray.get(ref)
            give_next(actor)
