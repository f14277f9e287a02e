"""The app each `chronotope serve` worker runs (uvicorn's import string ``cli.serving:serving_app``):
the API wired with the product's background re-miner. The CLI is the composition root: the API
package itself never imports the batch jobs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from core.settings import Settings


def create_served_app(settings: Settings) -> FastAPI:
    from api.app import create_app
    from jobs.background_mining import BackgroundMiner

    def remining(factory: Any) -> BackgroundMiner:
        return BackgroundMiner(factory, settings.data_dir)

    return create_app(settings, remining=remining)


def serving_app() -> FastAPI:
    """The import-string factory each worker calls (settings from the environment, JSON logs)."""
    from api.app import configure_logging
    from core.settings import get_settings

    configure_logging()
    return create_served_app(get_settings())
