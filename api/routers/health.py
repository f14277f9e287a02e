"""Liveness and readiness."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text

from agent.llm.breaker import breaker_for
from agent.llm.status import llm_status
from api.deps import SessionDep, State
from core.metrics import BREAKER_CODES, BREAKER_STATE, REGISTRY

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
    out["retrieval"] = state.services.retriever.status()
    out["serving"] = {
        "worker_pid": os.getpid(),
        "state": state.follower.status() if state.follower else None,
        "traces_pending": state.services.traces.pending() if state.services.traces else 0,
        "mining_pending": state.miner.pending() if state.miner else 0,
    }
    out["llm"] = llm_status(state.settings, timeout_s=1.0)
    out["llm"]["warm_up"] = state.llm_warm_up
    llm = state.services.llm
    out["llm"]["breaker"] = llm.breaker.state
    out["llm"]["queue"] = llm.admission.status() if llm.admission is not None else None
    out["ready"] = out["db"]["ok"]
    # What a request would get now: the LLM serves only when it answers and its breaker lets calls
    # through (an open circuit sends every stage to its fallback without asking it).
    llm_serves = bool(out["llm"]["reachable"]) and out["llm"]["breaker"] != "open"
    pipe = state.pipeline
    rerank = pipe.settings.rerank_when or pipe.domain.rerank_when
    if not pipe.reranker:
        out["ranker_in_use"] = "features (no LLM reranker)"
    elif rerank == "never":
        out["ranker_in_use"] = "features (llm.rerank_when=never)"
    elif not llm_serves:
        out["ranker_in_use"] = "features (llm unavailable)"
    else:
        out["ranker_in_use"] = "llm+features" + (" (requests with text)" if rerank == "with_text" else "")
    out["explanations"] = "llm" if llm_serves and pipe.explainer is not None else "template"
    out["chat"] = {
        "understanding": "llm" if state.chat.llm_on and llm_serves else "rules",
        "replies": "llm" if state.chat.llm_on and llm_serves else "template",
    }
    out["degraded"] = _degraded(out)
    if not out["ready"]:
        response.status_code = 503
    return out


def _degraded(out: dict[str, Any]) -> list[str]:
    """What serves less than it could, and why, in one list (each part above has the detail)."""
    why = []
    r = out["retrieval"]
    if r.get("index_error"):
        why.append(f"embedding source: {r['index_error']}")
    why += [f"ranker: {x}" for x in r.get("ranker_refused", [])]
    if r.get("behaviour_error"):
        why.append(f"behaviour source: {r['behaviour_error']}")
    if str(r.get("ranker", "")) == "heuristic":
        why.append("ranker: the heuristic blend (no learned model loaded)")
    state = out["serving"]["state"]
    if state and state.get("error"):
        why.append(f"state follower: {state['error']} (serving state version {state['version']})")
    if not out["llm"].get("enabled"):
        why.append("llm: off in the settings (feature ranker order, template explanations, rule-based chat)")
    elif not out["llm"].get("reachable"):
        why.append("llm: unreachable (feature ranker order, template explanations, rule-based chat)")
    elif out["llm"]["breaker"] != "closed":
        why.append(f"llm: circuit breaker {out['llm']['breaker']}")
    if out["serving"]["traces_pending"] > 1000:
        why.append(f"traces: {out['serving']['traces_pending']} waiting to be written")
    return why


@router.get("/metrics", include_in_schema=False)
def metrics(state: State) -> Response:
    """Prometheus text format: counts and latencies only, no user data (so no key is needed).
    Under several workers, every worker's figures (prometheus-client's multiprocess mode)."""
    url = state.settings.resolved_llm_base_url
    BREAKER_STATE.labels(url).set(BREAKER_CODES[breaker_for(url).state])
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
