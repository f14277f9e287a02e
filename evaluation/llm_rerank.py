"""``chronotope eval --ranker llm``: the LLM reranks the learned ranker's top-N for each target.

The profile text is mined from the target's input only (history + the user's earlier test rows),
so nothing about the target reaches the prompt. The request is for the query's moment in local
time (the target's own time, or with ``--no-query-time`` the check-in before it); a chat wish, when
the evaluation gives one, is the request's text as a served chat turn would carry it. Each target
gets its own LLM session (agent/llm/gateway.py) with the configured deadline."""

from __future__ import annotations

import time
from datetime import timedelta, timezone

import pandas as pd

from agent.assembly import gateway
from agent.llm.label_tokens import LabelTokens
from agent.llm.rerank import LLMReranker
from core.settings import Settings
from domains.base import Domain
from evaluation.dev_split import Query
from evaluation.harness import Reranker
from evaluation.llm_report import Reranked
from mining import build_profile
from retrieval.types import Candidate, RequestContext


def make_eval_reranker(settings: Settings, domain: Domain) -> Reranker:
    llm = gateway(settings)
    reranker = LLMReranker(settings.llm, domain, LabelTokens(settings))
    failures = {"n": 0}
    plan = domain.mining_plan()

    def rerank(q: Query, history: pd.DataFrame, top: list[Candidate], wish: str | None) -> Reranked:
        profile = build_profile(history, q.user_id, plan=plan)
        ts, tz = q.rank_time()
        when = ts.to_pydatetime().astimezone(timezone(timedelta(minutes=tz)))
        n = settings.llm.rerank_top_n
        with llm.session(time.monotonic() + settings.llm.timeout_s) as session:
            ctx = RequestContext(time=when, text=wish, time_known=q.query_time_known)
            out = reranker.rerank(session, profile, ctx, top[:n], utc_offset_min=tz)
        if out.error:
            failures["n"] += 1
        return Reranked(out.candidates + top[n:], out.order_scores, out.orders)

    rerank.failures = failures  # type: ignore[attr-defined]
    return rerank
