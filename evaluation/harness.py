"""``chronotope eval``: rank every known POI for each dev target, report metrics and baselines.

Per target: features for every POI (vectorised), a pool of the top ``pool_size`` by the heuristic
blend (stage 1), the ranker orders the pool. So that the full rank (MRR) is defined for every
known POI, the pool comes first in the ranker's order and all other rankable POIs follow in
stage-1 order (a cheap fallback that includes popularity). A target that is not rankable at all
(never seen in the history nor in the user's own input) is a miss: rank ∞, reciprocal rank 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core import columns as C
from evaluation.dev_split import DevSplit, Query, user_input
from evaluation.known_categories import KnownCategories
from evaluation.metrics import paired_bootstrap, rank_of, summarize
from retrieval.blend import blend_scores
from retrieval.candidate_pool import candidate_pool
from retrieval.catalog_stats import CatalogStats
from retrieval.features import FEATURES, QueryVectors, features_at, heuristic_score, query_vectors
from retrieval.rankers import Ranker
from retrieval.training import POOL, local_hour_weekend, local_weekday, pool_of
from retrieval.types import Candidate
from retrieval.user_history import UserHistory

COL = {name: i for i, name in enumerate(FEATURES)}


@dataclass
class Reranked:
    """A reranker's answer: the new order, and each candidate order's LLM scores by candidate (the
    top-N as given; empty when the LLM call failed and the feature order came back)."""

    candidates: list[Candidate]
    order_scores: list[list[float]]
    orders: list[list[int]]  # per candidate order, the candidates (top-N index) as listed


# Reranks the top of a ranked list: (query, the user's input frame, top candidates best first,
# the request's text or None) -> the new order
Reranker = Callable[[Query, pd.DataFrame, list[Candidate], str | None], Reranked]
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))  # LLM blend weights swept by an LLM eval


def _baseline_scores(f: np.ndarray) -> dict[str, np.ndarray]:
    pop = f[:, COL["popularity_log"]]
    ucount = f[:, COL["user_count_log"]]
    markov = f[:, COL["global_trans_prob"]]
    return {
        "popularity": pop,
        "user frequency": ucount * 1e3 + pop,
        "markov": markov * 1e6 + ucount * 1e3 + pop,
        "heuristic blend": heuristic_score(f),
    }


def catalog_of(split: DevSplit) -> CatalogStats:
    """Statistics from the history only; test-only POIs join the catalog (coordinates from the test
    file) but are rankable for a user only once they are in that user's own input."""
    return CatalogStats.build(
        split.history, split.test.rename(columns={C.ITEM: "item_id", C.LAT: "lat", C.LON: "lon"})
    )


def _features(
    stats: CatalogStats, q: Query, inp: pd.DataFrame
) -> tuple[np.ndarray, UserHistory, np.ndarray, QueryVectors]:
    uh = UserHistory.from_frame(inp, stats)
    ts, tz = q.rank_time()
    hour, weekend = local_hour_weekend(ts, tz)
    qv = query_vectors(
        stats,
        uh,
        ts.value / 3.6e12,
        hour,
        weekend,
        weekday=local_weekday(ts, tz),
        time_known=q.query_time_known,
    )
    f = features_at(stats, qv, np.arange(stats.n))
    allowed = stats.known.copy()
    allowed[uh.idx[uh.idx >= 0]] = True
    return f, uh, allowed, qv


def query_matrix(split: DevSplit, q: Query) -> np.ndarray:
    """The feature rows of every rankable POI for one query (what the ranker sees; for tests)."""
    stats = catalog_of(split)
    by_hist = {str(u): g for u, g in split.history.groupby(C.USER, sort=False)}
    by_test = {str(u): g for u, g in split.test.groupby(C.USER, sort=False)}
    f, _, allowed, _ = _features(stats, q, user_input(split, q, by_hist, by_test))
    return f[allowed]


def evaluate(
    split: DevSplit,
    ranker: Ranker,
    *,
    pool_size: int = POOL,
    sample: int | None = None,
    seed: int = 0,
    reranker: Reranker | None = None,
    rerank_top: int = 20,
    blend_weight: float = 0.4,
    wishes: Callable[[Query], str | None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """``wishes``: the request text of a target (a chat wish), or None to leave the target out;
    with it only targets that have one are evaluated, and only the reranker reads the text."""
    t_start = time.perf_counter()
    stats = catalog_of(split)
    kinds = KnownCategories(split.test)
    queries = split.queries
    texts: list[str | None] = [None] * len(queries)  # each query's request text, aligned with them
    if wishes is not None:
        worded = [(q, w) for q in queries if (w := wishes(q))]
        queries, texts = [q for q, _ in worded], [w for _, w in worded]
    if sample is not None and sample < len(queries):
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(queries), size=sample, replace=False))
        queries = [queries[i] for i in pick]
        texts = [texts[i] for i in pick]
    by_hist = {str(u): g for u, g in split.history.groupby(C.USER, sort=False)}
    by_test = {str(u): g for u, g in split.test.groupby(C.USER, sort=False)}
    ranks: list[float] = []
    base_ranks: dict[str, list[float]] = {}
    in_pool: list[bool] = []
    is_new: list[bool] = []
    feature_ranks: list[float] = []  # with a reranker: the same targets ranked without it
    reranked_at: list[int] = []  # which queries those are (the positions in ``ranks``)
    sweep_inputs: list[SweepInput] = []
    t_feat = t_rank = 0.0
    exact_pools = same_pools = 0
    for qi, q in enumerate(queries):
        t0 = time.perf_counter()
        inp = user_input(split, q, by_hist, by_test)
        f, uh, allowed, qv = _features(stats, q, inp)
        target = int(stats.index_of(np.array([q.target_item]))[0])
        t1 = time.perf_counter()
        stage1 = heuristic_score(f)
        # the pool as serving finds it: from the candidate sources (the whole catalog's features
        # serve only the order beyond the pool and the baselines)
        cp = candidate_pool(stats, qv, allowed, pool_size)
        pool = cp.rows
        exact_pools += cp.exact
        same_pools += bool(np.array_equal(pool, pool_of(stage1, allowed, pool_size)))
        pool_scores = ranker.score(cp.features)
        order = pool[np.argsort(-pool_scores, kind="stable")]
        if reranker is not None and len(order):
            top_scores = np.sort(pool_scores)[::-1][:rerank_top]
            at = q.rank_time()[0]
            cands = [
                Candidate(
                    item_id=str(stats.item_ids[i]),
                    category=kinds.at(str(stats.item_ids[i]), at),
                    lat=None if np.isnan(stats.lat[i]) else float(stats.lat[i]),
                    lon=None if np.isnan(stats.lon[i]) else float(stats.lon[i]),
                    features={name: float(f[i, j]) for j, name in enumerate(FEATURES)},
                    score=float(s),
                )
                for i, s in zip(order[:rerank_top], top_scores, strict=True)
            ]
            answer = reranker(q, inp, cands, texts[qi])
            reranked = answer.candidates
            new_ids = [c.item_id for c in reranked]
            if sorted(new_ids) != sorted(c.item_id for c in cands):
                raise RuntimeError("reranker returned items that were not among its candidates")
            feature_ranks.append(_final_rank(stage1, order, target, allowed))
            reranked_at.append(qi)
            sweep_inputs.append(
                _sweep_input(cands, reranked, str(stats.item_ids[target]) if target >= 0 else None, answer)
            )
            order = np.concatenate([stats.index_of(np.array(new_ids, dtype=object)), order[rerank_top:]])
        ranks.append(_final_rank(stage1, order, target, allowed))
        in_pool.append(bool(target >= 0 and target in pool))
        visited = target >= 0 and target in set(uh.idx.tolist())
        is_new.append(not visited)
        for name, s in _baseline_scores(f).items():
            base_ranks.setdefault(name, []).append(rank_of(s, target, allowed))
        t2 = time.perf_counter()
        t_feat += t1 - t0
        t_rank += t2 - t1
        if progress:
            progress(1)
    r = np.array(ranks)
    new = np.array(is_new)
    result: dict[str, Any] = summarize(r)
    result["ranker"] = getattr(ranker, "name", "unknown") + (" + llm rerank" if reranker else "")
    pooled = np.array(in_pool, dtype=bool)
    result["candidate_recall"] = float(np.mean(pooled)) if in_pool else 0.0
    result["pool_size"] = pool_size
    result["pool"] = {
        "from": "candidate sources, features for those only (as served)",
        "same_as_whole_catalog": same_pools / max(len(queries), 1),
        "proven_same": exact_pools / max(len(queries), 1),
    }
    result["beyond_pool_order"] = "stage-1 heuristic blend (user visits, transitions, distance, popularity)"
    result["splits"] = {
        "revisit": summarize(r[~new])
        | {"candidate_recall": float(np.mean(pooled[~new])) if (~new).any() else 0.0},
        "new place": summarize(r[new])
        | {"candidate_recall": float(np.mean(pooled[new])) if new.any() else 0.0},
    }
    result["baselines"] = {name: summarize(np.array(v)) for name, v in base_ranks.items()}
    result["baselines_splits"] = {
        name: {"revisit": summarize(np.array(v)[~new]), "new place": summarize(np.array(v)[new])}
        for name, v in base_ranks.items()
    }
    if reranker is not None and feature_ranks:
        # LLM vs features on the very same targets, and the blend weight swept on them (one pass of
        # LLM calls; the blend is recomputed offline for each weight).
        result["without_reranker"] = summarize(np.array(feature_ranks)) | {
            "ranker": getattr(ranker, "name", "unknown")
        }
        result["blend_sweep"] = blend_sweep(sweep_inputs, np.array(feature_ranks))
        result["llm"] = llm_report(
            sweep_inputs,
            np.array(feature_ranks),
            r[reranked_at],
            new[reranked_at],
            with_text=wishes is not None,
            weight=blend_weight,
        )
    result["timing_s"] = {
        "total": round(time.perf_counter() - t_start, 2),
        "features": round(t_feat, 2),
        "rank": round(t_rank, 2),
        "per_query_ms": round(1000 * (t_feat + t_rank) / max(len(queries), 1), 2),
    }
    result["setting"] = {
        "request_text": "a chat wish for the target's kind (evaluation/chat_wishes.yaml), read by the "
        "reranker only; targets of kinds the bank lacks left out"
        if wishes is not None
        else "none",
        "query_time": "the target's own time"
        if not queries or queries[0].query_time_known
        else "unknown: ranked at the time of the check-in before the target",
        "input": "the history and the target trajectory's prefix only"
        if queries and queries[0].prefix_only
        else "the history and every test row of the user before the target",
    }
    result["sample"] = sample
    result["seed"] = seed
    return result


def _final_rank(stage1: np.ndarray, order: np.ndarray, target: int, allowed: np.ndarray) -> float:
    """Rank of the target when the pool comes first in ``order`` and the rest follow by stage 1."""
    final = stage1.astype(float) - 1e9
    final[order] = 1e9 - np.arange(len(order))
    return rank_of(final, target, allowed)


@dataclass
class SweepInput:
    """One reranked query: the feature and raw LLM scores of its top-N (feature order) and where the
    target sits among them (None: not in the top-N, so the blend cannot move it)."""

    feature: list[float]
    llm: list[float] | None  # None: the LLM call failed and the feature order was served
    target_pos: int | None
    by_order: list[list[float]]  # each candidate order's scores (the position-bias check)
    orders: list[list[int]]  # per candidate order, the candidates (top-N index) as listed


def _sweep_input(
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


def _blend_ranks(
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
) -> dict[str, Any]:
    """The LLM blend against the ranker alone on the same targets: the MRR difference with a paired
    bootstrap interval, overall and by slice; and the position-bias check, from the candidate
    orders each target was scored in (the same candidates, listed in a different order)."""
    slices = {"all": np.ones(len(new), dtype=bool), "revisit": ~new, "new place": new}
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

            blended = _blend_ranks(inputs, feature_ranks, weight, order_only)
            alone = _blend_ranks(inputs, feature_ranks, 1.0, order_only)
            per_order[f"order {o + 1}"] = {
                "blend_mrr": summarize(blended)["mrr"],
                "llm_alone_mrr": summarize(alone)["mrr"],
                "vs_ranker": paired_bootstrap(blended, feature_ranks),
            }
        mean_alone = _blend_ranks(inputs, feature_ranks, 1.0, lambda si: si.llm)
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
    inputs: list[SweepInput], feature_ranks: np.ndarray, weights: tuple[float, ...] = WEIGHTS
) -> dict[str, dict[str, float]]:
    """Metrics for each LLM blend weight, blended as served (retrieval.blend). A target outside
    the top-N keeps its feature rank."""
    return {f"{w:.1f}": summarize(_blend_ranks(inputs, feature_ranks, w, lambda si: si.llm)) for w in weights}


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("n", "acc@1", "acc@5", "acc@10", "ndcg@10", "mrr")
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
