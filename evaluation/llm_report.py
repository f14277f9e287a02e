"""The LLM rerank against the ranker alone on the same targets: the blend-weight sweep, the MRR
difference with paired bootstrap intervals by slice, and the position-bias check (the same
candidates scored in several orders). Shared by every domain's evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.metrics import paired_bootstrap, summarize
from retrieval.blend import blend_scores
from retrieval.types import Candidate

WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))  # LLM blend weights swept by an LLM eval


@dataclass
class Reranked:
    """A reranker's answer: the new order, and each candidate order's LLM scores by candidate (the
    top-N as given; empty when the LLM call failed and the feature order came back)."""

    candidates: list[Candidate]
    order_scores: list[list[float]]
    orders: list[list[int]]  # per candidate order, the candidates (top-N index) as listed


@dataclass
class SweepInput:
    """One reranked query: the feature and raw LLM scores of its top-N (feature order) and where the
    target sits among them (None: not in the top-N, so the blend cannot move it)."""

    feature: list[float]
    llm: list[float] | None  # None: the LLM call failed and the feature order was served
    target_pos: int | None
    by_order: list[list[float]]  # each candidate order's scores (the position-bias check)
    orders: list[list[int]]  # per candidate order, the candidates (top-N index) as listed


def sweep_input(
    cands: list[Candidate], reranked: list[Candidate], target_id: str | None, answer: Reranked
) -> SweepInput:
    llm_by_id = {c.item_id: c.llm_score for c in reranked}
    llm = [llm_by_id.get(c.item_id) for c in cands]
    ids = [c.item_id for c in cands]
    return SweepInput(
        feature=[c.score for c in cands],
        llm=None if any(v is None for v in llm) else [float(v) for v in llm if v is not None],
        target_pos=ids.index(target_id) if target_id in ids else None,
        by_order=answer.order_scores,
        orders=answer.orders,
    )


def blend_ranks(
    inputs: list[SweepInput], feature_ranks: np.ndarray, weight: float, scores_of: Callable[[SweepInput], Any]
) -> np.ndarray:
    """Each target's rank when the top-N is blended with ``scores_of(input)`` (None: kept as is)."""
    ranks = feature_ranks.copy()
    for i, si in enumerate(inputs):
        llm = scores_of(si)
        if llm is None or si.target_pos is None:
            continue
        order = np.argsort(-blend_scores(si.feature, llm, weight), kind="stable")
        ranks[i] = float(np.flatnonzero(order == si.target_pos)[0] + 1)
    return ranks


def llm_report(
    inputs: list[SweepInput],
    feature_ranks: np.ndarray,
    served_ranks: np.ndarray,
    new: np.ndarray,
    *,
    with_text: bool,
    weight: float,
    splits: tuple[str, str] = ("revisit", "new place"),
) -> dict[str, Any]:
    """The LLM blend against the ranker alone on the same targets: the MRR difference with a paired
    bootstrap interval, overall and by slice; and the position-bias check, from the candidate
    orders each target was scored in (the same candidates, listed in a different order)."""
    slices = {"all": np.ones(len(new), dtype=bool), splits[0]: ~new, splits[1]: new}
    if with_text:
        slices = {f"{k}, with request text": v for k, v in slices.items()}
    out: dict[str, Any] = {
        "blend_weight": weight,
        "failures": sum(si.llm is None for si in inputs),
        "vs_ranker": {
            name: paired_bootstrap(served_ranks[m], feature_ranks[m]) for name, m in slices.items() if m.any()
        },
    }
    n_orders = min((len(si.by_order) for si in inputs if si.llm is not None), default=0)
    if n_orders >= 2:
        scored = [si for si in inputs if si.llm is not None and len(si.by_order) >= n_orders]
        tops = np.array([[int(np.argmax(si.by_order[o])) for o in range(n_orders)] for si in scored])
        pairs = list(zip(tops, scored, strict=True))
        per_order = {}
        for o in range(n_orders):

            def order_only(si: SweepInput, o: int = o) -> list[float] | None:
                return si.by_order[o] if si.llm is not None else None

            blended = blend_ranks(inputs, feature_ranks, weight, order_only)
            alone = blend_ranks(inputs, feature_ranks, 1.0, order_only)
            per_order[f"order {o + 1}"] = {
                "blend_mrr": summarize(blended)["mrr"],
                "llm_alone_mrr": summarize(alone)["mrr"],
                "vs_ranker": paired_bootstrap(blended, feature_ranks),
            }
        mean_alone = blend_ranks(inputs, feature_ranks, 1.0, lambda si: si.llm)
        out["position_bias"] = {
            "orders": n_orders,
            "orders_are": "as ranked, reversed, then rotations (agent.llm.rerank.orders)",
            "top_changes": float(np.mean(np.any(tops != tops[:, :1], axis=1))) if len(tops) else 0.0,
            # how often the LLM's top pick is whatever candidate is listed first, per order
            "top_is_listed_first": [
                float(np.mean([t[o] == si.orders[o][0] for t, si in zip(tops, scored, strict=True)]))
                for o in range(n_orders)
            ],
            # where in the list (0 = first listed) the LLM's top pick sat, counted over every order
            "top_listed_at": np.bincount(
                [si.orders[o].index(t[o]) for t, si in pairs for o in range(n_orders)],
                minlength=max((len(si.feature) for si in scored), default=0),
            ).tolist(),
            "per_order": per_order,
            "averaged": {
                "blend_mrr": summarize(served_ranks)["mrr"],
                "llm_alone_mrr": summarize(mean_alone)["mrr"],
            },
        }
    return out


def blend_sweep(
    inputs: list[SweepInput],
    feature_ranks: np.ndarray,
    weights: tuple[float, ...] = WEIGHTS,
    metrics: Callable[[np.ndarray], dict[str, float]] = summarize,
) -> dict[str, dict[str, float]]:
    """Metrics for each LLM blend weight, blended as served (retrieval.blend). A target outside
    the top-N keeps its feature rank. ``metrics``: the protocol's summary (its hit-rate name)."""
    return {f"{w:.1f}": metrics(blend_ranks(inputs, feature_ranks, w, lambda si: si.llm)) for w in weights}
