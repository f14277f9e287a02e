"""Training data for the learned ranker: pseudo-targets cut from the end of a history.

Queries are the events of the last ``weeks`` of the history; catalog statistics are built from
the rows before that window only, so a query's own future never shapes its features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import columns as C
from retrieval.candidate_pool import top_by_score
from retrieval.catalog_stats import CatalogStats
from retrieval.features import FeatureSet
from retrieval.query import QueryTime, local_clock
from retrieval.user_history import UserHistory

POOL = 300


@dataclass
class TrainingSet:
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    users: np.ndarray  # user per query, for splitting
    pool_recall: float


def pool_of(scores: np.ndarray, allowed: np.ndarray, size: int) -> np.ndarray:
    """The best ``size`` allowed items by stage-1 score, best first, ties by index: the same
    pool serving finds from its candidates (retrieval.candidate_pool)."""
    rows = np.flatnonzero(allowed)
    return rows[top_by_score(scores[rows], rows, size)]


def query_time(ts: pd.Timestamp, utc_offset_min: int, known: bool = True) -> QueryTime:
    """A query at ``ts`` (tz-aware) for a person ``utc_offset_min`` from UTC."""
    hour, weekend, weekday = local_clock(ts, utc_offset_min)
    return QueryTime(ts.value / 3.6e12, hour, weekend, weekday, known)


def build_training_set(
    history: pd.DataFrame,
    fset: FeatureSet,
    *,
    weeks: int = 6,
    max_queries: int = 6000,
    seed: int = 0,
    next_share: float = 0.5,
    progress: Callable[[int], None] | None = None,
) -> TrainingSet:
    """``next_share`` of the pseudo-targets are "what next?" queries, ranked at the time of the
    event before them (``query_time_known`` 0), the rest at their own time: one model serves
    both settings. (Every target in both settings trained no better: dev Acc@1 0.390 / 0.296.)"""
    h = history.dropna(subset=[C.ITEM])
    if C.KIND in h:  # feedback on recommendations is not behaviour
        h = h[h[C.KIND] != "feedback"]
    h = h.sort_values([C.USER, C.TIME], kind="stable").reset_index(drop=True)
    ts = pd.to_datetime(h[C.TIME], utc=True)
    cut = ts.max() - pd.Timedelta(weeks=weeks)
    before_cut = h[(ts < cut).to_numpy()]
    stats = CatalogStats.build(before_cut)
    fset.build_parts(stats, before_cut, None)
    rng = np.random.default_rng(seed)
    cand = np.where((ts >= cut).to_numpy())[0]
    rng.shuffle(cand)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    groups: list[int] = []
    users: list[str] = []
    hits = tried = 0
    by_user = {u: g.index.to_numpy() for u, g in h.groupby(C.USER, sort=False)}
    for row in cand:
        if len(groups) >= max_queries:
            break
        u = h.at[row, C.USER]
        rows = by_user[u]
        before = rows[rows < row]
        if len(before) == 0:
            continue
        target = stats.index_of(np.array([str(h.at[row, C.ITEM])]))[0]
        tried += 1
        uh = UserHistory.from_frame(h.loc[before], stats)
        allowed = stats.known.copy()
        allowed[uh.idx[uh.idx >= 0]] = True
        known = bool(rng.random() >= next_share)
        at = row if known else before[-1]  # "what next?": the time of the event before
        q = fset.query(stats, uh, query_time(ts.iloc[at], int(h.at[at, C.TZ_OFFSET]), known))
        f = fset.every_item(stats, q)
        pool = pool_of(fset.heuristic(f), allowed, POOL)
        if target < 0 or target not in pool:
            continue  # no positive in the pool: nothing to learn from this query
        hits += 1
        xs.append(f[pool])
        ys.append((pool == target).astype(float))
        groups.append(len(pool))
        users.append(u)
        if progress:
            progress(1)
    return TrainingSet(
        x=np.vstack(xs) if xs else np.zeros((0, len(fset.columns))),
        y=np.concatenate(ys) if ys else np.zeros(0),
        groups=np.array(groups),
        users=np.array(users),
        pool_recall=hits / max(tried, 1),
    )
