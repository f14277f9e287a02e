"""Candidates from the named sources first, then features for those only: the serving pool.

The ranker was trained on pools of the ``POOL`` items with the best stage-1 score (the feature
set's hand-weighted blend) over the whole catalog. Scoring the whole catalog costs O(catalog) per
request, so serving gathers candidates from the sources (retrieval.sources), each read to its
depth, and every other item's stage-1 score is bounded by what those sources leave out: where the
pool's last score is above that bound, the pool is provably the one the whole catalog gives
(``exact``); elsewhere it can differ in its tail, items that barely made the whole catalog's cut.
The cost follows the depths and the person's history, not the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.catalog_stats import CatalogStats
from retrieval.features import FeatureSet
from retrieval.query import Query
from retrieval.sources import CandidateSource

DEPTH = 512  # items read from each ranked source (settings: retrieval.source_depth)
# float32 features against a float64 bound: a margin well above their rounding
MARGIN = 1e-4


@dataclass(frozen=True)
class CandidatePool:
    rows: np.ndarray  # the pool, best stage-1 score first, then ``extra`` rows not already in it
    features: np.ndarray  # feature rows aligned with ``rows``
    pool_size: int  # how many of ``rows`` are the stage-1 pool
    scored: int  # items whose features were computed to find it
    exact: bool  # proven to be the pool the whole catalog gives (the bound was met)


@dataclass(frozen=True)
class SourcePlan:
    """The sources a query reads, each with its depth."""

    sources: tuple[CandidateSource, ...]
    depths: Mapping[str, int]
    # True: the pool is every allowed item the sources return (their union, as the ranker was
    # trained on it), topped up by stage 1 when a narrow filter leaves fewer than the pool size
    union: bool = False

    def depth(self, name: str) -> int:
        return int(self.depths.get(name, DEPTH))

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]


def top_by_score(scores: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Positions of the best ``size`` scores, best first, ties by catalog index (so a pool does
    not depend on which other items were scored)."""
    if size <= 0 or not len(scores):
        return np.zeros(0, dtype=np.int64)
    return np.lexsort((rows, -scores))[:size]


def gather_sources(
    stats: CatalogStats, q: Query, plan: SourcePlan, fset: FeatureSet
) -> tuple[np.ndarray, float]:
    """The items the sources return, and the best stage-1 score an item none of them returned
    can have (infinite when a weighted feature is covered by no source)."""
    parts = []
    bound = MARGIN
    covered: set[str] = set()
    for s in plan.sources:
        d = plan.depth(s.name)
        rows = np.asarray(s.rows(stats, q, d), dtype=np.int64)
        parts.append(rows)
        bound += s.bound(stats, q, d, fset.stage1, rows)
        covered.update(s.covers)
    if any(w and name not in covered for name, w in fset.stage1.items()):
        bound = float("inf")
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64), bound


def candidate_pool(
    stats: CatalogStats,
    q: Query,
    fset: FeatureSet,
    plan: SourcePlan,
    allowed: np.ndarray,
    pool_size: int,
    extra: np.ndarray | None = None,
) -> CandidatePool:
    """The ``pool_size`` allowed items with the best stage-1 score (as over the whole catalog),
    plus the allowed ``extra`` rows (e.g. embedding-search hits), with their features."""
    if plan.union:
        return _union_pool(stats, q, fset, plan, allowed, pool_size, extra)
    rows = np.zeros(0, dtype=np.int64)
    best = rows
    exact = True
    widest = max((plan.depth(s.name) for s in plan.sources), default=DEPTH)
    if int(allowed.sum()) > max(pool_size * 2, widest):
        found, bound = gather_sources(stats, q, plan, fset)
        rows = found[allowed[found]]
        f = fset.at(stats, q, rows)
        s = fset.heuristic(f)
        best = top_by_score(s, rows, pool_size)
        exact = len(best) == pool_size and float(s[best[-1]]) > bound
    if len(best) < pool_size or not len(rows):
        # few items allowed (a narrow filter), or the sources fell short of them: score them all
        rows = np.flatnonzero(allowed)
        f = fset.at(stats, q, rows)
        best = top_by_score(fset.heuristic(f), rows, pool_size)
        exact = True
    pool = rows[best]
    feats = f[best]
    if extra is not None and len(extra):
        more = np.setdiff1d(extra[allowed[extra]], pool)
        if len(more):
            pool = np.concatenate([pool, more])
            feats = np.vstack([feats, fset.at(stats, q, more)])
    return CandidatePool(pool, feats, len(best), len(rows), exact)


def _union_pool(
    stats: CatalogStats,
    q: Query,
    fset: FeatureSet,
    plan: SourcePlan,
    allowed: np.ndarray,
    pool_size: int,
    extra: np.ndarray | None,
) -> CandidatePool:
    found, _ = gather_sources(stats, q, plan, fset)
    if extra is not None and len(extra):
        found = np.union1d(found, extra)
    rows = found[allowed[found]]
    scored = len(rows)
    if len(rows) < pool_size:  # a narrow filter: the best of what it allows fill the pool
        rest = np.flatnonzero(allowed)
        scored = len(rest)
        top = rest[top_by_score(fset.heuristic(fset.at(stats, q, rest)), rest, pool_size)]
        rows = np.union1d(rows, top)
    f = fset.at(stats, q, rows)
    order = top_by_score(fset.heuristic(f), rows, len(rows))
    return CandidatePool(rows[order], f[order], len(rows), scored, True)


def provenance(
    stats: CatalogStats,
    q: Query,
    plan: SourcePlan,
    fset: FeatureSet,
    pool: np.ndarray,
    f: np.ndarray,
    extra: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Which sources name each pool item (an item may come from several)."""
    out = {s.name: np.asarray(s.named(stats, q, pool, f, fset.col), dtype=bool) for s in plan.sources}
    for name, ix in (extra or {}).items():
        out[name] = np.isin(pool, ix)
    return out


def plan_from(available: Sequence[CandidateSource], depths: Mapping[str, int]) -> SourcePlan:
    """The sources named in ``depths`` (in the available order), each read to its depth; an
    unknown name is an error that lists the known ones."""
    by_name = {s.name: s for s in available}
    unknown = [n for n in depths if n not in by_name and n != "embedding"]
    if unknown:
        raise ValueError(
            f"unknown candidate source(s) {unknown}; this domain has {sorted(by_name)} and embedding"
        )
    return SourcePlan(tuple(s for s in available if s.name in depths), dict(depths))
