"""``chronotope eval-explain``: explanations for sampled dev users, as served, measured.

For each sampled dev target (the last check-in of an NYC_val trajectory, as in ``chronotope
eval``), the user's input is the history plus their test rows before the target; the profile is
mined from that input only. The pipeline recommends k items at the target's time and the
explainer writes their explanations exactly as ``POST /v1/recommendations`` does (evidence, LLM,
faithfulness checker, one regeneration, template); with ``--rerank`` the LLM reranks too
(``llm.rerank_when=always``). Nothing of the target reaches it.

Reported: the share of shown explanations written by the LLM, the share of LLM texts that passed
the checker on the first try and after the one regeneration, the share of served explanations
that pass (must be 1.0), why LLM texts were rejected (most common reasons), and the latency of the
explanation stage for k places (p50/p95).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.pipeline import RecommendOptions
from core import columns as C
from evaluation.dev_split import DevSplit, Query, user_input
from evaluation.world import World
from retrieval.serving_state import behaviour
from retrieval.types import RequestContext


def _reason_kind(reason: str) -> str:
    """A rejection reason without its specifics ("the number 25 is in no cited fact" -> "the
    number N is in no cited fact"), for counting."""
    return re.sub(r"\b\d+(?:[.:]\d+)?\b", "N", reason)


def run(
    world: World,
    split: DevSplit,
    queries: list[Query],
    k: int,
    progress: Callable[[int], None] = lambda _n: None,
) -> dict[str, Any]:
    pipeline = world.pipeline
    by_hist = {str(u): g for u, g in split.history.groupby(C.USER, sort=False)}
    by_test = {str(u): g for u, g in split.test.groupby(C.USER, sort=False)}
    writers: Counter[str] = Counter()
    first_ok: list[bool] = []
    final_llm_ok: list[bool] = []
    served_ok: list[bool] = []
    reasons: Counter[str] = Counter()
    ms: list[float] = []
    totals: list[float] = []
    examples: list[dict[str, Any]] = []
    for q in queries:
        progress(1)
        inp = behaviour(user_input(split, q, by_hist, by_test))
        world.serve_history(q.user_id, inp)
        opts = RecommendOptions(explain=True, use_llm=True, explain_with_llm=True)
        ctx = RequestContext(time=q.ts.to_pydatetime())
        r = pipeline.run(q.user_id, ctx, k, opts)
        if r.explanation is None:
            continue
        ms.append(r.explanation.ms)
        totals.append(float(r.timings.get("total_ms", 0.0)))
        for item_id, e in r.explanation.items.items():
            writers[e.source] += 1
            served_ok.append(bool(e.verdict.get("ok")))
            if e.attempts:
                first_ok.append(bool(e.attempts[0]["verdict"]["ok"]))
                final_llm_ok.append(e.source == "llm")
                for a in e.attempts:
                    reasons.update(_reason_kind(x) for x in a["verdict"]["reasons"])
            if len(examples) < 12:
                examples.append(
                    {"user": q.user_id, "place": r.labels.get(item_id), "by": e.source, "text": e.text}
                    | ({"rejected": e.rejected} if e.rejected else {})
                )
    n = sum(writers.values())

    def share(xs: list[bool]) -> float | None:
        return round(float(np.mean(xs)), 4) if xs else None

    return {
        "n_requests": len(ms),
        "k": k,
        "n_explanations": n,
        "llm-written (served)": round(writers["llm"] / n, 4) if n else None,
        "llm texts passing the checker, first try": share(first_ok),
        "llm texts passing after one regeneration": share(final_llm_ok),
        "served explanations passing the checker": share(served_ok),
        "rejection reasons": dict(reasons.most_common(8)),
        "latency_ms": {
            f"explain_{k}_p50": _pct(ms, 50),
            f"explain_{k}_p95": _pct(ms, 95),
            "request_p50": _pct(totals, 50),  # retrieval, rerank (with --rerank) and explanations
            "request_p95": _pct(totals, 95),
        },
        "examples": examples,
    }


def _pct(xs: list[float], p: float) -> float | None:
    return round(float(np.percentile(xs, p)), 1) if xs else None


def sample_queries(split: DevSplit, n: int, seed: int) -> list[Query]:
    rng = random.Random(seed)
    return rng.sample(split.queries, min(n, len(split.queries)))
