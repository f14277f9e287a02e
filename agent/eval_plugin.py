"""``chronotope eval --ranker llm``: the LLM reranks the learned ranker's top-N for each target.

The profile text is mined from the target's input only (history + the user's earlier test rows),
so nothing about the target reaches the prompt."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from agent.llm.rerank import LLMReranker
from core.settings import Settings
from evaluation.dev_split import Query
from mining import build_profile
from retrieval.types import Candidate, RequestContext


def make_eval_reranker(
    settings: Settings,
) -> Callable[[Query, pd.DataFrame, list[Candidate]], list[Candidate]]:
    reranker = LLMReranker(settings)
    failures = {"n": 0}

    def rerank(q: Query, history: pd.DataFrame, top: list[Candidate]) -> list[Candidate]:
        profile = build_profile(history, q.user_id)
        out = reranker.rerank(
            profile, RequestContext(time=q.ts.to_pydatetime()), top[: settings.llm.rerank_top_n]
        )
        if out.error:
            failures["n"] += 1
        return out.candidates + top[settings.llm.rerank_top_n :]

    rerank.failures = failures  # type: ignore[attr-defined]
    return rerank
