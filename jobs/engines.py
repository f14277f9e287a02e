"""Ray as the engine for batch jobs: the same batch functions, run as Ray tasks.

``ray`` starts a local Ray runtime when no address is given (dashboard off, CPUs from the
machine) or joins the cluster at ADDR. Each task opens the store from its URL once per worker
process (so PostgreSQL is the store every node can reach), runs one batch end to end and returns
its counts; Ray retries a task whose worker died, and the batch's store step is idempotent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidInputError, NotReadyError
from mining import GlobalStats

log = logging.getLogger(__name__)

TASK_RETRIES = 3  # a task whose worker process died is run again this many times
_FACTORIES: dict[str, sessionmaker[Session]] = {}  # per Ray worker process: one engine per URL


def store_url(factory: sessionmaker[Session]) -> str:
    """The URL a Ray task reopens the store with (password included: it stays in the cluster)."""
    bind: Any = factory.kw["bind"]
    return str(bind.url.render_as_string(hide_password=False))


def check_store_for_ray(url: str, address: str | None) -> None:
    """SQLite is one file on one machine: a cluster cannot share it, and even locally many writer
    processes queue on its lock. Refuse the first, warn about the second."""
    if not url.startswith("sqlite"):
        return
    if address:
        raise InvalidInputError(
            "--engine ray with --address needs a store every node can reach: set CHRONOTOPE_DB_URL "
            "to PostgreSQL (postgresql+psycopg://…); SQLite is a file on this machine only"
        )
    log.warning(
        "--engine ray on SQLite: tasks on this machine share one database file and queue on its "
        "write lock; use PostgreSQL (CHRONOTOPE_DB_URL) for anything beyond a trial run"
    )


def start_ray(address: str | None, num_cpus: int | None = None) -> Any:
    """``ray.init`` with the product's defaults; one clear error when Ray is missing or the
    cluster cannot be reached."""
    try:
        import ray
    except ImportError as exc:
        raise NotReadyError(
            "--engine ray needs Ray: pip install 'chronotope[ray]' (or pip install ray)"
        ) from exc
    if ray.is_initialized():
        return ray
    if address:
        _check_reachable(address)
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray runtime"
        raise NotReadyError(f"could not start or join {where}: {exc}") from exc
    return ray


def _check_reachable(address: str) -> None:
    """Ray waits minutes for a head that is not there; a TCP connect answers in seconds."""
    import socket
    from urllib.parse import urlsplit

    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    host, port = parts.hostname, parts.port or (10001 if address.startswith("ray://") else 6379)
    try:
        with socket.create_connection((host or "", port), timeout=5):
            pass
    except OSError as exc:
        raise NotReadyError(f"cannot reach the Ray cluster at {address}: {exc}") from exc


def _factory_for(url: str) -> sessionmaker[Session]:
    if url not in _FACTORIES:
        from core.db import make_engine, make_sessionmaker

        _FACTORIES[url] = make_sessionmaker(make_engine(url))
    return _FACTORIES[url]


def _mine_task(url: str, users: list[str], gs: GlobalStats | None) -> Any:
    from jobs.mine import mine_batch_from_store

    return mine_batch_from_store(_factory_for(url), users, gs)


def ray_mine(
    factory: sessionmaker[Session],
    batches: list[list[str]],
    gs: GlobalStats | None,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    task_fn: Callable[[str, list[str], GlobalStats | None], Any] = _mine_task,
) -> Iterator[tuple[list[str], Any]]:
    """Run every batch as a Ray task; yields (users, BatchResult) as tasks finish. ``task_fn``
    is the task (tests wrap it to kill a worker mid-way)."""
    url = store_url(factory)
    check_store_for_ray(url, address)
    ray = start_ray(address, num_cpus)
    task = ray.remote(max_retries=TASK_RETRIES, retry_exceptions=False)(task_fn)
    gs_ref = ray.put(gs)
    pending = {task.remote(url, users, gs_ref): users for users in batches}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            yield pending.pop(ref), ray.get(ref)


class _RecommendActor:
    """One serving state per actor, loaded once; batches of users go through it."""

    def __init__(self, use_llm: bool) -> None:
        from core.db import open_store
        from core.settings import Settings
        from jobs.recommend_batch import build_service

        settings = Settings()  # from the CHRONOTOPE_* variables the driver passed (runtime_env)
        _, factory = open_store(settings, migrate=False)
        self.service = build_service(settings, factory, use_llm=use_llm)

    def run(
        self, users: list[str], when: Any, k: int, use_llm: bool, run_id: str, concurrency: int
    ) -> list[dict[str, Any]]:
        from jobs.recommend_batch import recommend_users

        return recommend_users(
            self.service, users, when, k=k, use_llm=use_llm, run_id=run_id, concurrency=concurrency
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
