"""The app factory: the store, the retriever and the LLM clients are built in the lifespan and
kept on app.state; nothing heavy happens at import time."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from api import errors
from api.errors import error_body
from api.state import AppState, Remining
from core.db import open_store
from core.metrics import HTTP_LATENCY
from core.settings import Settings, get_settings

log = logging.getLogger("chronotope.api")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update(getattr(record, "extra_fields", {}))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Structured JSON logs on stderr for the `chronotope` loggers and the agent (idempotent);
    called by `chronotope serve`/`demo`, not at import, so tests keep pytest's capture."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("chronotope", "agent", "retrieval"):
        lg = logging.getLogger(name)
        if not any(isinstance(h.formatter, JsonFormatter) for h in lg.handlers):
            lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = False


def build_state(
    settings: Settings,
    *,
    retriever: Any = None,
    use_llm: bool = True,
    chat_client: Any = None,
    remining: Callable[[Any], Remining | None] | None = None,
) -> AppState:
    """The serving core (agent.assembly) plus what only the API has: the state follower, the
    background re-miner (``remining(factory)``, passed in by the composition root) and the rate
    limiter."""
    from agent.assembly import build_services
    from api.rate_limit import RateLimiter
    from retrieval.embedder import limit_threads
    from retrieval.service import Retriever
    from retrieval.state_follower import StateFollower

    limit_threads(settings.retrieval.serving_threads)
    _, factory = open_store(settings)
    if not use_llm:
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"enabled": False})})
    services = build_services(settings, factory, retriever=retriever, client=chat_client)
    follower = (
        StateFollower(services.retriever, factory, interval_s=settings.api.state_poll_s)
        if isinstance(services.retriever, Retriever)
        else None
    )
    miner = remining(factory) if remining is not None and settings.api.remine_after_events else None
    limiter = RateLimiter(settings.api.rate_limit_per_s, settings.api.rate_limit_burst)
    return AppState(settings, services, follower=follower, miner=miner, limiter=limiter)


class ChunkedBodyLimit:
    """Refuse a request body over `limit` bytes that arrives without Content-Length (chunked), which
    the header check in the request middleware cannot see. Such a body is buffered up to the limit
    and replayed; declared lengths pass straight through."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or any(k == b"content-length" for k, _ in scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                await self.app(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                response = JSONResponse(
                    error_body(f"request body over {self.limit} bytes", "invalid_request_error", "too_large"),
                    status_code=413,
                )
                await response(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestContextMiddleware:
    """Request id, the declared-size limit, latency metric and one JSON log line per request, as
    plain ASGI: Starlette's ``BaseHTTPMiddleware`` costs a task and two memory streams per request
    (and buffers streaming responses' start)."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex[:16]
        t0 = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Any) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        length = headers.get(b"content-length", b"")
        try:
            if length.isdigit() and int(length) > self.max_body:
                body = error_body(
                    f"request body over {self.max_body} bytes", "invalid_request_error", "too_large"
                )
                await JSONResponse(body, status_code=413)(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            # Handled here rather than only in the app-level handler so the 500 still carries the
            # request id that the log line below is keyed by.
            log.exception("unhandled error", extra={"extra_fields": {"request_id": rid}})
            if not started:
                await JSONResponse(
                    error_body("internal error", "server_error", "internal_error"), status_code=500
                )(scope, receive, send_with_id)
        finally:
            ms = (time.perf_counter() - t0) * 1000
            route = scope.get("route")
            HTTP_LATENCY.labels(
                getattr(route, "path", "unmatched"), scope["method"], f"{status // 100}xx"
            ).observe(ms / 1000)
            log.info(
                "request",
                extra={
                    "extra_fields": {
                        "request_id": rid,
                        "method": scope["method"],
                        "path": scope.get("path"),
                        "status": status,
                        "ms": round(ms, 1),
                    }
                },
            )


def create_app(
    settings: Settings | None = None, *, state: AppState | None = None, **build_kwargs: Any
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        if state is not None:  # built by the caller (tests): it warms nothing
            app.state.chronotope = state
        else:
            st = await run_in_threadpool(build_state, settings, **build_kwargs)
            app.state.chronotope = st
            if st.settings.llm.enabled and st.settings.llm.warm_up:
                from agent.llm.warmup import warm_up_in_background

                st.llm_warm_up = {"warmed": False, "reason": "waiting for the LLM server"}
                warm_up_in_background(st.settings, stop, lambda r: setattr(st, "llm_warm_up", r))
        st = app.state.chronotope
        if state is None and not st.settings.retrieval.encode_queries_at_start:
            # serving already; the users' precomputed embedding queries are filled in behind it
            threading.Thread(
                target=st.services.retriever.fill_query_vectors,
                args=(st.factory,),
                name="fill-query-vectors",
                daemon=True,
            ).start()
        follower = getattr(st, "follower", None)
        if follower is not None:
            follower.start(stop)
        yield
        stop.set()
        if hasattr(st, "close"):
            await run_in_threadpool(st.close)

    # /docs (Swagger UI) and /redoc load their JS/CSS from assets packaged with fastapi-offline,
    # served under /static-offline-docs, not from a CDN: the docs page works without internet.
    app = FastAPIOffline(
        title="Chronotope",
        version="0.1.0",
        description="Recommendations from when and where people do things, explained.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(ChunkedBodyLimit, limit=settings.api.max_body_bytes)

    app.add_middleware(RequestContextMiddleware, max_body=settings.api.max_body_bytes)

    from api.routers import all_routers

    for router in all_routers():
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((resources.files("api") / "static" / "index.html").read_text(encoding="utf-8"))

    return app
