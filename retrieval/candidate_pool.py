"""Candidates from the sources first, then features for those only: the serving pool.

The ranker was trained on pools of the ``POOL`` places with the best stage-1 score
(``features.heuristic_score``) over the whole catalog. Scoring the whole catalog costs O(catalog)
per request (27 of 39 ms at 100k places), so serving gathers candidates from the sources that
can give a place a high stage-1 score: the user's own places, the global transitions out of the
last place, the top of the co-visitation and neighbour orders, the nearest places and the most
popular ones, each read to a depth k. Every other place's stage-1 score is bounded by what those
sources leave out (it was never visited, has no transition, ranks below the k-th in both
collaborative orders, is further than the k-th nearest and less popular than the k-th most
popular): where the pool's last score is above that bound, the pool is provably the one the whole
catalog gives (``exact``); elsewhere it can differ in its tail, places that barely made the whole
catalog's cut. The cost follows k and the user's history, not the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval.catalog_stats import CatalogStats, distance_at
from retrieval.features import BLEND, QueryVectors, features_at, heuristic_score

DEPTH = 512  # places read from each ranked source (settings: retrieval.source_depth)
# float32 features against a float64 bound: a margin well above their rounding
MARGIN = 1e-4


@dataclass(frozen=True)
class CandidatePool:
    rows: np.ndarray  # the pool, best stage-1 score first, then ``extra`` rows not already in it
    features: np.ndarray  # feature rows aligned with ``rows``
    pool_size: int  # how many of ``rows`` are the stage-1 pool
    scored: int  # places whose features were computed to find it
    exact: bool  # proven to be the pool the whole catalog gives (the bound was met)


def top_by_score(scores: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Positions of the best ``size`` scores, best first, ties by catalog index (so a pool does
    not depend on which other places were scored)."""
    if size <= 0 or not len(scores):
        return np.zeros(0, dtype=np.int64)
    return np.lexsort((rows, -scores))[:size]


def _sources(stats: CatalogStats, q: QueryVectors, k: int) -> tuple[np.ndarray, float]:
    """The places the sources return, each read to depth ``k``, and the best stage-1 score a place
    none of them returned can have: it was never visited and has no transition out of the last
    place, so only distance, popularity and the two collaborative ranks are left to it, each
    bounded by the k-th place of its source."""
    parts = [q.places, q.global_trans.indices, stats.popular_order[:k]]
    rank_score = 1 / (1 + k / 10)
    bound = MARGIN
    if q.m:
        parts.append(q.covis.top(k))
        bound += BLEND["covis_rank_score"] * rank_score
        if q.knn is not None:
            parts.append(q.knn.top(k))
            bound += BLEND["user_knn_rank_score"] * rank_score
    d_k = 50.0  # an unknown reference or an unlocated place counts as 50 km away
    if not (np.isnan(q.ref[0]) or np.isnan(q.ref[1])):
        near = stats.nearest(q.ref[0], q.ref[1], k)
        parts.append(near)
        if len(near) == k:
            d_k = min(d_k, float(distance_at(stats, q.ref, near[-1:])[0]))
    bound += BLEND["dist_last_exp"] * float(np.exp(-d_k / 2))
    order = stats.popular_order
    pop_k = float(stats.popularity[order[k - 1]]) if k <= len(order) else 0.0
    bound += BLEND["popularity_log"] * float(np.log1p(pop_k))
    return np.unique(np.concatenate([p.astype(np.int64) for p in parts])), bound


def candidate_pool(
    stats: CatalogStats,
    q: QueryVectors,
    allowed: np.ndarray,
    pool_size: int,
    extra: np.ndarray | None = None,
    depth: int = DEPTH,
) -> CandidatePool:
    """The ``pool_size`` allowed places with the best stage-1 score (as over the whole catalog),
    plus the allowed ``extra`` rows (e.g. embedding-search hits), with their features."""
    rows = np.zeros(0, dtype=np.int64)
    best = rows
    exact = True
    if int(allowed.sum()) > max(pool_size * 2, depth):
        found, bound = _sources(stats, q, depth)
        rows = found[allowed[found]]
        f = features_at(stats, q, rows)
        s = heuristic_score(f)
        best = top_by_score(s, rows, pool_size)
        exact = len(best) == pool_size and float(s[best[-1]]) > bound
    if len(best) < pool_size or not len(rows):
        # few places allowed (a narrow filter), or the sources fell short of them: score them all
        rows = np.flatnonzero(allowed)
        f = features_at(stats, q, rows)
        best = top_by_score(heuristic_score(f), rows, pool_size)
        exact = True
    pool = rows[best]
    feats = f[best]
    if extra is not None and len(extra):
        more = np.setdiff1d(extra[allowed[extra]], pool)
        if len(more):
            pool = np.concatenate([pool, more])
            feats = np.vstack([feats, features_at(stats, q, more)])
    return CandidatePool(pool, feats, len(best), len(rows), exact)
