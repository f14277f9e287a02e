"""``chronotope eval --ranker llm``: the LLM reranks the learned ranker's top-N for each target.

The profile text is mined from the target's input only (history + the user's earlier test rows),
so nothing about the target reaches the prompt. The request is for the query's moment in local
time (the target's own time, or with ``--no-query-time`` the check-in before it); a chat wish, when
the evaluation gives one, is the request's text as a served chat turn would carry it."""

from __future__ import annotations

from datetime import timedelta, timezone

import pandas as pd

from agent.llm.rerank import LLMReranker
from core.settings import Settings
from evaluation.dev_split import Query
from evaluation.harness import Reranked, Reranker
from mining import build_profile
from retrieval.types import Candidate, RequestContext


def make_eval_reranker(settings: Settings) -> Reranker:
    reranker = LLMReranker(settings)
    failures = {"n": 0}

    def rerank(q: Query, history: pd.DataFrame, top: list[Candidate], wish: str | None) -> Reranked:
        profile = build_profile(history, q.user_id)
        ts, tz = q.rank_time()
        when = ts.to_pydatetime().astimezone(timezone(timedelta(minutes=tz)))
        out = reranker.rerank(
            profile,
            RequestContext(time=when, text=wish, time_known=q.query_time_known),
            top[: settings.llm.rerank_top_n],
        )
        if out.error:
            failures["n"] += 1
        return Reranked(out.candidates + top[settings.llm.rerank_top_n :], out.order_scores, out.orders)

    rerank.failures = failures  # type: ignore[attr-defined]
    return rerank
