"""``chronotope eval --format movielens --ranker llm``: the LLM reranks the films ranker's top N.

The profile is mined from the person's events before the target only (their ratings and tags),
so nothing of the target reaches the prompt; the request is for the target's time. The served
LLMReranker scores the candidates (title (year) and genres) in ``CHRONOTOPE_LLM__RERANK_ORDERS``
orders; evaluation/llm_calibration.py then compares the ways of countering position bias on the
very same calls.
"""

from __future__ import annotations

import time
from typing import Any

from agent.assembly import gateway
from agent.llm.label_tokens import LabelTokens
from agent.llm.rerank import LLMReranker
from core.settings import Settings
from domains.films import FILMS
from evaluation.llm_report import Reranked
from evaluation.ranking import EvalTarget, Reranker
from mining import build_profile
from retrieval.types import Candidate, RequestContext


def films_reranker(settings: Settings) -> Reranker:
    llm = gateway(settings)
    reranker = LLMReranker(settings.llm, FILMS, LabelTokens(settings))
    plan = FILMS.mining_plan()
    failures = {"n": 0}

    def rerank(t: EvalTarget, top: list[Candidate]) -> Reranked:
        user, events, at = t.context
        profile = build_profile(events, user, plan=plan) if events is not None and len(events) else None
        n = settings.llm.rerank_top_n
        with llm.session(time.monotonic() + settings.llm.timeout_s) as session:
            out = reranker.rerank(session, profile, RequestContext(time=at.to_pydatetime()), top[:n])
        if out.error:
            failures["n"] += 1
        return Reranked(out.candidates + top[n:], out.order_scores, out.orders)

    rerank.failures = failures  # type: ignore[attr-defined]
    return rerank


def prompt_example(settings: Settings, t: EvalTarget, top: list[Candidate]) -> list[dict[str, Any]]:
    """The messages one target's first order sends (docs show one)."""
    user, events, at = t.context
    profile = build_profile(events, user, plan=FILMS.mining_plan()) if events is not None else None
    reranker = LLMReranker(settings.llm, FILMS)
    cands = [{"label": chr(65 + i), "text": FILMS.llm_text(c)} for i, c in enumerate(top)]
    return reranker.messages(profile, RequestContext(time=at.to_pydatetime()), cands)
