"""The ranking loop every domain's offline evaluation shares.

A protocol (places: evaluation/harness.py; films: evaluation/films.py) turns each target into an
``EvalTarget``: the catalog statistics valid at its time, its query, the items it may rank, where
the target is. Here each target is ranked as serving ranks it (the pool from the named candidate
sources, features for those only, the ranker, optionally the LLM rerank of the top), so that the
full rank (MRR) is defined for every rankable item: the pool first in the ranker's order, every
other item after it in stage-1 order. A target outside the rankable set is a miss (rank ∞).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluation.llm_report import Reranked, SweepInput, blend_sweep, llm_report, sweep_input
from evaluation.metrics import KS, rank_of
from evaluation.metrics import summarize as _summarize
from retrieval.candidate_pool import SourcePlan, candidate_pool
from retrieval.catalog_stats import CatalogStats
from retrieval.features import FeatureSet
from retrieval.query import Query
from retrieval.rankers import Ranker
from retrieval.training import pool_of
from retrieval.types import Candidate


@dataclass
class EvalTarget:
    stats: CatalogStats
    query: Query
    allowed: np.ndarray  # the items it may rank
    target: int  # catalog index of the truth (-1: not in the catalog)
    new: bool  # the truth is an item new to the person
    text: str | None = None  # the request's text (a chat wish), read by the reranker only
    context: Any = None  # what the protocol's reranker needs (the query, the person's input)
    # catalog index -> the item's kind as known at the target's time (for the LLM's candidate list)
    kind_of: Callable[[int], str | None] = field(default=lambda _i: None)
    name_of: Callable[[int], str | None] = field(default=lambda _i: None)
    kinds_of: Callable[[int], tuple[str, ...]] = field(default=lambda _i: ())


# (target, top candidates best first) -> the new order and the LLM's scores
Reranker = Callable[[EvalTarget, list[Candidate]], Reranked]
# (features of every item) -> baseline name -> scores
Baselines = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass
class Tally:
    ranks: list[float] = field(default_factory=list)
    base: dict[str, list[float]] = field(default_factory=dict)
    in_pool: list[bool] = field(default_factory=list)
    new: list[bool] = field(default_factory=list)
    feature_ranks: list[float] = field(default_factory=list)
    reranked_at: list[int] = field(default_factory=list)
    sweep: list[SweepInput] = field(default_factory=list)
    exact: int = 0
    same: int = 0
    t_feat: float = 0.0
    t_rank: float = 0.0


def final_rank(stage1: np.ndarray, order: np.ndarray, target: int, allowed: np.ndarray) -> float:
    """Rank of the target when the pool comes first in ``order`` and the rest follow by stage 1."""
    final = stage1.astype(float) - 1e9
    final[order] = 1e9 - np.arange(len(order))
    return rank_of(final, target, allowed)


def _candidates(
    t: EvalTarget, fset: FeatureSet, f: np.ndarray, order: np.ndarray, scores: np.ndarray
) -> list[Candidate]:
    return [
        Candidate(
            item_id=str(t.stats.item_ids[i]),
            name=t.name_of(int(i)),
            category=t.kind_of(int(i)),
            kinds=t.kinds_of(int(i)),
            features={name: float(f[i, j]) for j, name in enumerate(fset.columns)},
            score=float(s),
        )
        for i, s in zip(order, scores, strict=True)
    ]


def _rerank(
    t: EvalTarget,
    fset: FeatureSet,
    f: np.ndarray,
    order: np.ndarray,
    pool_scores: np.ndarray,
    reranker: Reranker,
    top: int,
) -> tuple[np.ndarray, SweepInput]:
    cands = _candidates(t, fset, f, order[:top], np.sort(pool_scores)[::-1][:top])
    answer = reranker(t, cands)
    new_ids = [c.item_id for c in answer.candidates]
    if sorted(new_ids) != sorted(c.item_id for c in cands):
        raise RuntimeError("reranker returned items that were not among its candidates")
    truth = str(t.stats.item_ids[t.target]) if t.target >= 0 else None
    reordered = np.concatenate([t.stats.index_of(np.array(new_ids, dtype=object)), order[top:]])
    return reordered, sweep_input(cands, answer.candidates, truth, answer)


def rank_target(
    t: EvalTarget,
    tally: Tally,
    fset: FeatureSet,
    sources: SourcePlan,
    ranker: Ranker,
    pool_size: int,
    baselines: Baselines,
    reranker: tuple[Reranker, int] | None = None,
) -> None:
    t0 = time.perf_counter()
    f = fset.every_item(t.stats, t.query)
    t1 = time.perf_counter()
    stage1 = fset.heuristic(f)
    # the pool as serving finds it: from the candidate sources (the whole catalog's features serve
    # only the order beyond the pool and the baselines)
    cp = candidate_pool(t.stats, t.query, fset, sources, t.allowed, pool_size)
    tally.exact += cp.exact
    tally.same += bool(np.array_equal(cp.rows, pool_of(stage1, t.allowed, pool_size)))
    pool_scores = ranker.score(cp.features)
    order = cp.rows[np.argsort(-pool_scores, kind="stable")]
    if reranker is not None and len(order):
        tally.feature_ranks.append(final_rank(stage1, order, t.target, t.allowed))
        tally.reranked_at.append(len(tally.ranks))
        order, si = _rerank(t, fset, f, order, pool_scores, reranker[0], reranker[1])
        tally.sweep.append(si)
    tally.ranks.append(final_rank(stage1, order, t.target, t.allowed))
    tally.in_pool.append(bool(t.target >= 0 and t.target in cp.rows))
    tally.new.append(t.new)
    for name, s in baselines(f).items():
        tally.base.setdefault(name, []).append(rank_of(s, t.target, t.allowed))
    tally.t_feat += t1 - t0
    tally.t_rank += time.perf_counter() - t1


def run(
    targets: Iterable[EvalTarget],
    fset: FeatureSet,
    sources: SourcePlan,
    ranker: Ranker,
    pool_size: int,
    baselines: Baselines,
    reranker: tuple[Reranker, int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Tally:
    """``reranker``: (the reranker, how many of the top it reorders)."""
    tally = Tally()
    for t in targets:
        rank_target(t, tally, fset, sources, ranker, pool_size, baselines, reranker)
        if progress:
            progress(1)
    return tally


@dataclass(frozen=True)
class Reporting:
    """How a protocol reports: its hit-rate name and cut-offs, and its two slices' names."""

    hit: str = "acc"
    ks: tuple[int, ...] = KS
    splits: tuple[str, str] = ("revisit", "new item")


def report(
    tally: Tally,
    ranker: Ranker,
    *,
    reranked: bool,
    with_text: bool,
    blend_weight: float,
    how: Reporting = Reporting(),
) -> dict[str, Any]:
    """Metrics overall and by slice (revisit / new), the baselines, candidate recall and, with a
    reranker, the LLM blend against the ranker alone on the same targets."""

    def summarize(ranks: np.ndarray) -> dict[str, float]:
        return _summarize(ranks, how.hit, how.ks)

    r = np.array(tally.ranks)
    new = np.array(tally.new, dtype=bool)
    pooled = np.array(tally.in_pool, dtype=bool)
    n = max(len(r), 1)
    out: dict[str, Any] = summarize(r)
    out["ranker"] = getattr(ranker, "name", "unknown") + (" + llm rerank" if reranked else "")
    out["candidate_recall"] = float(np.mean(pooled)) if len(pooled) else 0.0
    out["pool"] = {
        "from": "candidate sources, features for those only (as served)",
        "same_as_whole_catalog": tally.same / n,
        "proven_same": tally.exact / n,
    }
    old_name, new_name = how.splits
    out["splits"] = {
        old_name: summarize(r[~new])
        | {"candidate_recall": float(np.mean(pooled[~new])) if (~new).any() else 0.0},
        new_name: summarize(r[new]) | {"candidate_recall": float(np.mean(pooled[new])) if new.any() else 0.0},
    }
    out["baselines"] = {name: summarize(np.array(v)) for name, v in tally.base.items()}
    out["baselines_splits"] = {
        name: {old_name: summarize(np.array(v)[~new]), new_name: summarize(np.array(v)[new])}
        for name, v in tally.base.items()
    }
    if reranked and tally.feature_ranks:
        # LLM vs features on the very same targets, and the blend weight swept on them (one pass of
        # LLM calls; the blend is recomputed offline for each weight).
        fr = np.array(tally.feature_ranks)
        out["without_reranker"] = summarize(fr) | {"ranker": getattr(ranker, "name", "unknown")}
        out["blend_sweep"] = blend_sweep(tally.sweep, fr, metrics=summarize)
        at = tally.reranked_at
        out["llm"] = llm_report(
            tally.sweep, fr, r[at], new[at], with_text=with_text, weight=blend_weight, splits=how.splits
        )
    out["timing_s"] = {
        "features": round(tally.t_feat, 2),
        "rank": round(tally.t_rank, 2),
        "per_query_ms": round(1000 * (tally.t_feat + tally.t_rank) / n, 2),
    }
    return out


def table_rows(result: dict[str, Any], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = [{"method": result["ranker"], "targets": "all", **{k: result[k] for k in keys}}]
    if "without_reranker" in result:
        m = result["without_reranker"]
        rows.append({"method": f"{m['ranker']} alone", "targets": "all", **{k: m[k] for k in keys}})
        for w, m in result.get("blend_sweep", {}).items():
            rows.append({"method": f"llm blend weight {w}", "targets": "all", **{k: m[k] for k in keys}})
    for name, m in result["baselines"].items():
        rows.append({"method": f"baseline: {name}", "targets": "all", **{k: m[k] for k in keys}})
    for split_name, m in result["splits"].items():
        rows.append({"method": result["ranker"], "targets": split_name, **{k: m[k] for k in keys}})
    for name, parts in result["baselines_splits"].items():
        for split_name, m in parts.items():
            rows.append({"method": f"baseline: {name}", "targets": split_name, **{k: m[k] for k in keys}})
    return rows
