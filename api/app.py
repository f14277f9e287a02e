"""The app factory: the store, the retriever and the LLM clients are built in the lifespan and
kept on app.state; nothing heavy happens at import time."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api import errors
from api.errors import error_body
from core.db import open_store
from core.settings import Settings, get_settings

log = logging.getLogger("chronotope.api")


@dataclass
class AppState:
    settings: Settings
    factory: sessionmaker[Session]
    service: Any  # agent.service.RecommendationService
    chat: Any  # agent.chat.ChatAgent


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {"level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        payload.update(getattr(record, "extra_fields", {}))
        return json.dumps(payload)


def build_state(
    settings: Settings,
    *,
    retriever: Any = None,
    reranker: Any = None,
    explainer: Any = None,
    use_llm: bool = True,
) -> AppState:
    from agent.chat import ChatAgent
    from agent.llm.explain import Explainer
    from agent.llm.rerank import LLMReranker
    from agent.service import RecommendationService
    from retrieval.service import Retriever

    _, factory = open_store(settings)
    retriever = retriever or Retriever.load(settings, factory)
    if use_llm and settings.llm.enabled:
        reranker = reranker or LLMReranker(settings)
        explainer = explainer or Explainer(settings)
    service = RecommendationService(factory, retriever, reranker, explainer)
    return AppState(settings, factory, service, ChatAgent(service))


def create_app(
    settings: Settings | None = None, *, state: AppState | None = None, **build_kwargs: Any
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.chronotope = state or await run_in_threadpool(build_state, settings, **build_kwargs)
        yield

    app = FastAPI(
        title="Chronotope",
        version="0.1.0",
        description="Recommendations from when and where people do things, explained.",
        lifespan=lifespan,
    )
    errors.install(app)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.api.max_body_bytes:
            return JSONResponse(
                error_body(
                    f"request body over {settings.api.max_body_bytes} bytes",
                    "invalid_request_error",
                    "too_large",
                ),
                status_code=413,
                headers={"x-request-id": rid},
            )
        t0 = time.perf_counter()
        response = await call_next(request)
        response.headers["x-request-id"] = rid
        log.info(
            "request",
            extra={
                "extra_fields": {
                    "request_id": rid,
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - t0) * 1000, 1),
                }
            },
        )
        return response

    from api.routes import router

    app.include_router(router)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((resources.files("api") / "static" / "index.html").read_text(encoding="utf-8"))

    return app
