"""``chronotope keys create --role user|support|admin [--user ID]``: prints the new key as the last line."""

from __future__ import annotations

import typer

from cli.common import console, err_console, handle_errors, settings

keys_app = typer.Typer(help="API keys (stored hashed; shown once).", no_args_is_help=True)


@keys_app.command("create")
@handle_errors
def create_cmd(
    role: str = typer.Option(..., "--role", help="user | support | admin"),
    user: str | None = typer.Option(None, "--user", help="The user a 'user' key belongs to."),
) -> None:
    """Create an API key; the plain key is printed once, as the last line."""
    from api.auth import create_key
    from core.db import open_store

    _, factory = open_store(settings())
    with factory() as s:
        key = create_key(s, role, user)
        s.commit()
    err_console.print(f"created a {role} key" + (f" for user {user}" if user and role == "user" else ""))
    console.print(key, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
