"""Ray as the engine for batch jobs: starting or joining a runtime, and reaching the store from a task.

The jobs themselves (jobs/mine.py, jobs/recommend_batch.py) define their Ray tasks and actors and
use these helpers; nothing here knows about them.

``ray`` starts a local Ray runtime when no address is given (dashboard off, CPUs from the
machine) or joins the cluster at ADDR. Each task opens the store from its URL once per worker
process (so PostgreSQL is the store every node can reach), runs one batch end to end and returns
its counts; Ray retries a task whose worker died, and the batch's store step is idempotent.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidInputError, NotReadyError

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


def factory_for(url: str) -> sessionmaker[Session]:
    if url not in _FACTORIES:
        from core.db import make_engine, make_sessionmaker

        _FACTORIES[url] = make_sessionmaker(make_engine(url))
    return _FACTORIES[url]
