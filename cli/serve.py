"""``chronotope serve [--host H] [--port P] [--workers N]``: the HTTP API and web page."""

from __future__ import annotations

import os
import tempfile

import typer

from cli.common import handle_errors, settings


@handle_errors
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    port: int = typer.Option(8000, "--port", help="Port."),
    workers: int = typer.Option(
        -1, "--workers", help="Server processes (default: CHRONOTOPE_API__WORKERS, 0 there: one per core)."
    ),
) -> None:
    """Serve the API (OpenAPI at /openapi.json) and the web page at /.

    Each worker loads the serving state once and follows the store's state version, so events
    posted through any of them are served by all within CHRONOTOPE_API__STATE_POLL_S."""
    import uvicorn

    from api.app import configure_logging

    n = workers if workers >= 0 else settings().api.workers
    n = n or (os.cpu_count() or 1)
    configure_logging()
    if n > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics then adds up every worker's counters (prometheus-client's multiprocess mode).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="chronotope-metrics-")
    # uvicorn's own access log would duplicate the app's JSON request log line
    uvicorn.run(
        "cli.serving:serving_app",
        factory=True,
        host=host,
        port=port,
        workers=n,
        log_level="info",
        access_log=False,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
