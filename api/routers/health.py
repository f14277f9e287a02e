"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import text

from agent.llm.status import llm_status
from api.deps import SessionDep, State

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: State, session: SessionDep, response: Response) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        session.execute(text("SELECT 1"))
        out["db"] = {"ok": True}
    except Exception as exc:  # pragma: no cover - db down
        out["db"] = {"ok": False, "error": str(exc)[:200]}
    out["retrieval"] = state.service.retriever.status()
    out["llm"] = llm_status(state.settings, timeout_s=1.0)
    out["ready"] = out["db"]["ok"]
    out["ranker_in_use"] = (
        "llm+features" if out["llm"]["reachable"] and state.service.reranker else "features (llm unavailable)"
    )
    out["chat"] = {
        "understanding": "llm" if state.chat.understander.enabled and out["llm"]["reachable"] else "rules",
        "replies": "llm" if state.chat.writer.enabled and out["llm"]["reachable"] else "template",
    }
    if not out["ready"]:
        response.status_code = 503
    return out
