"""``chronotope serve [--host H] [--port P]``: the HTTP API and web page."""

from __future__ import annotations

import typer

from cli.common import handle_errors, settings


@handle_errors
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    port: int = typer.Option(8000, "--port", help="Port."),
) -> None:
    """Serve the API (OpenAPI at /openapi.json) and the web page at /."""
    import uvicorn

    from api.app import configure_logging, create_app

    configure_logging()
    # uvicorn's own access log would duplicate the app's JSON request log line
    uvicorn.run(create_app(settings()), host=host, port=port, log_level="info", access_log=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
