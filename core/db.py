"""Engine and sessions for the store, plus schema upgrades through Alembic."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None: PostgreSQL's JSON refuses them
    (SQLite takes them), and a trace or a profile must store on both."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def dumps_finite(obj: Any) -> str:
    try:
        return json.dumps(obj, allow_nan=False)
    except ValueError:  # a NaN somewhere (a place without coordinates): walk and replace
        return json.dumps(finite(obj), allow_nan=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the pragmas the product relies on (FK cascades and WAL on SQLite) and JSON
    that both stores accept (``dumps_finite``)."""
    kwargs.setdefault("json_serializer", dumps_finite)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    else:
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")  # ON DELETE CASCADE is off by default in SQLite
            cur.execute("PRAGMA journal_mode=WAL")  # readers (the API) do not block the writer (ingest)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction: commit on success, roll back everything on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("core") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent; cheap when already current)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def has_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("events")


def open_store(settings: Settings, *, migrate: bool = True) -> tuple[Engine, sessionmaker[Session]]:
    """Engine + sessionmaker for the configured store, upgraded to the latest schema."""
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_db_url)
    if migrate:
        upgrade(engine)
    return engine, make_sessionmaker(engine)
