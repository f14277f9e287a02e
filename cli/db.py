"""``chronotope db upgrade|current``: schema migrations through Alembic."""

from __future__ import annotations

import typer

from cli.common import console, handle_errors, settings

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
@handle_errors
def upgrade_cmd(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or upgrade the schema of the configured store."""
    from core.db import current_revision, make_engine, upgrade

    s = settings()
    s.ensure_dirs()
    engine = make_engine(s.resolved_db_url)
    upgrade(engine, revision)
    console.print(f"schema at {current_revision(engine)} ({engine.url.render_as_string(hide_password=True)})")


@db_app.command("current")
@handle_errors
def current_cmd() -> None:
    """Print the schema revision of the configured store."""
    from core.db import current_revision, make_engine

    engine = make_engine(settings().resolved_db_url)
    console.print(current_revision(engine) or "(empty database)")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
