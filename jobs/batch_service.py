"""The serving core as batch jobs use it: built once per process (or Ray actor), users run through
it a few at a time; one JSON line per user."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.assembly import Services, build_services
from agent.pipeline import RecommendationResult, RecommendOptions
from core.settings import Settings
from retrieval.types import RequestContext

log = logging.getLogger(__name__)

BATCH_LLM_TIMEOUT_S = 180.0  # a batch waits for throughput, not for one person: no 20 s deadline


def build_service(settings: Settings, factory: sessionmaker[Session], *, use_llm: bool) -> Services:
    """The API's serving core without the HTTP around it: the same retriever, LLM stages and
    stored traces (written in each call: a batch has no request latency to protect), and no
    online experiments (a batch's requests are not people's and would only dilute the arms'
    rates). The LLM deadline per user is at least BATCH_LLM_TIMEOUT_S: concurrent users queue on
    the server, and a batch would rather wait than fall back."""
    from core.experiments import ExperimentsConfig

    llm = settings.llm.model_copy(
        update={
            "timeout_s": max(settings.llm.timeout_s, BATCH_LLM_TIMEOUT_S),
            "enabled": use_llm and settings.llm.enabled,
        }
    )
    settings = settings.model_copy(update={"llm": llm})
    return build_services(settings, factory, traces=False, experiments=ExperimentsConfig(), grounding=False)


def result_line(r: RecommendationResult, use_llm: bool) -> dict[str, Any]:
    """One user's output line: what was recommended, how, and where the full trace is."""
    expl = r.explanation.items if r.explanation else {}
    return {
        "user_id": r.user_id,
        "recommendation_id": r.recommendation_id,  # GET /v1/recommendations/{id}: the whole trace
        "ranker": r.ranker,
        "items": [
            {
                "item_id": c.item_id,
                "name": r.labels.get(c.item_id) or c.name,
                "category": c.category,
                "score": c.final_score if c.final_score is not None else c.score,
                "explanation": expl[c.item_id].text if c.item_id in expl else None,
                "explained_by": expl[c.item_id].source if c.item_id in expl else None,
            }
            for c in r.items
        ],
        "llm_fallback": use_llm and _fell_back(r),
        "notes": r.notes,
    }


def _fell_back(r: RecommendationResult) -> bool:
    """The LLM did not rank, or wrote none of the explanations (one text refused by the
    faithfulness checker and replaced by the template is not a fallback: it is in the notes)."""
    return "llm" not in r.ranker or (r.explanation is not None and r.explanation.source == "template")


def recommend_users(
    services: Services,
    users: Sequence[str],
    when: datetime,
    *,
    k: int,
    use_llm: bool,
    run_id: str,
    concurrency: int = 1,
) -> list[dict[str, Any]]:
    """Lines for ``users`` from one service; a user whose request fails gets an ``error`` line."""

    def one(u: str) -> dict[str, Any]:
        try:
            opts = RecommendOptions(
                use_llm=use_llm, trace_extra={"batch_run": run_id}, unknown_user_is_error=True
            )
            r = services.pipeline.run(u, RequestContext(time=when), k, opts)
            return result_line(r, use_llm)
        except Exception as exc:  # one user's failure is reported, the batch goes on
            log.error("batch recommendation for user %s failed: %s", u, exc)
            return {"user_id": u, "error": f"{type(exc).__name__}: {exc}"[:300]}

    if concurrency <= 1:
        return [one(u) for u in users]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, users))
