"""One error shape for every failure: {"error": {"message", "type", "code"}}."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ChronotopeError, RetryAfterError

log = logging.getLogger("chronotope.api")
STORE_RETRY_S = 2  # a restarting database is usually back within seconds
STORE_FULL_RETRY_S = 30  # a full disk needs someone to free space


def error_body(message: str, type_: str, code: str) -> dict[str, dict[str, str]]:
    return {"error": {"message": message, "type": type_, "code": code}}


def install(app: FastAPI) -> None:
    @app.exception_handler(ChronotopeError)
    async def _domain(_req: Request, exc: ChronotopeError) -> JSONResponse:
        headers = None
        if isinstance(exc, RetryAfterError):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
        return JSONResponse(
            error_body(exc.message, exc.type, exc.code), status_code=exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:5]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{loc or 'body'}: {e.get('msg')}")
        return JSONResponse(
            error_body("; ".join(parts), "invalid_request_error", "invalid_input"), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
        }
        return JSONResponse(
            error_body(str(exc.detail), "invalid_request_error", codes.get(exc.status_code, "http_error")),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _store_unavailable(req: Request, exc: Exception) -> JSONResponse:
        # The store is down, restarting, unreachable or out of space: nothing was acknowledged, so
        # the client may send the same request again; say when instead of a bare 500.
        full = "full" in str(exc).lower() or "no space" in str(exc).lower()
        log.warning(
            "store unavailable on %s %s: %s", req.method, req.url.path, str(exc).splitlines()[0][:200]
        )
        message = (
            "the store is out of space; nothing from this request was stored"
            if full
            else "the store is unavailable; nothing from this request was stored, try again shortly"
        )
        return JSONResponse(
            error_body(message, "server_error", "store_full" if full else "store_unavailable"),
            status_code=503,
            headers={"Retry-After": str(STORE_FULL_RETRY_S if full else STORE_RETRY_S)},
        )

    @app.exception_handler(Exception)
    async def _unhandled(req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", req.method, req.url.path)
        return JSONResponse(error_body("internal error", "server_error", "internal_error"), status_code=500)
