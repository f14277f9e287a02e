"""What one query needs, whichever items are scored: the user's history folded per item.

``query_vectors`` folds one user's history before the query time (``UserHistory``) with the
shared ``CatalogStats`` into per-item visit statistics and the sparse co-visitation and neighbour
vectors. It is domain-neutral: what a domain adds (a reference location for places, genre
affinities for films) is computed by that domain's feature groups (``retrieval.features``) and
kept beside it in ``Query.parts``. O(history + non-zeros) to build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.clock import local_time
from retrieval.catalog_stats import MAX_GAP_H, CatalogStats
from retrieval.sparse_vector import SparseVector
from retrieval.user_history import UserHistory

HOUR_SIGMA = 2.0  # hours; the kernel for "goes to this item at this time of day"
RECENT_NOVELTY = 20
KNN_USERS = 30  # neighbours for the user-based collaborative signal


@dataclass(frozen=True)
class QueryTime:
    """When a query ranks for: UTC hours since the epoch and the person's local clock then."""

    t_h: float
    hour: float
    weekend: bool
    weekday: int | None = None
    known: bool = True  # False: "what next?", ranked at the time of the latest event


@dataclass(frozen=True)
class QueryVectors:
    """The domain-neutral part of a query: the user's history folded per item, the sparse
    co-visitation and neighbour vectors; ``features`` turn it into rows in O(rows)."""

    n: int
    m: int  # the user's events in the catalog
    when: QueryTime
    items: np.ndarray  # sorted unique catalog indices the user has events on
    per_item: dict[str, np.ndarray]  # name -> value per entry of ``items``
    global_trans: SparseVector  # counts out of the last item
    global_trans_row_sum: float
    gap_h: float
    covis: SparseVector
    knn: SparseVector | None
    hour_kernel: np.ndarray  # (24,) float32
    novelty: tuple[float, float] = (0.0, 0.0)  # share of first visits: all history, recent
    user: UserHistory | None = None

    @property
    def t_h(self) -> float:
        return self.when.t_h

    @property
    def time_known(self) -> bool:
        return self.when.known


@dataclass(frozen=True)
class Query:
    """A query as every feature group sees it: the neutral vectors and each group's own part
    (``parts[group name]``), plus the request's domain arguments."""

    base: QueryVectors
    parts: Mapping[str, Any] = field(default_factory=dict)
    args: Mapping[str, Any] = field(default_factory=dict)


def local_clock(ts: pd.Timestamp, utc_offset_min: int) -> tuple[float, bool, int]:
    """The person's local clock at ``ts`` (tz-aware) given their offset from UTC: hour (with
    minutes), weekend, weekday (0 = Monday). The one conversion ranking uses."""
    loc = local_time(ts.to_pydatetime(), utc_offset_min)
    return loc.hour + loc.minute / 60, loc.weekday() >= 5, int(loc.weekday())


def _hour_kernel(hour: float) -> np.ndarray:
    dh24 = np.abs(np.arange(24) + 0.5 - hour)
    dh24 = np.minimum(dh24, 24 - dh24)
    return np.exp(-(dh24**2) / (2 * HOUR_SIGMA**2)).astype(np.float32)


def _affinity(hours: np.ndarray, at: float, inv: np.ndarray, k: int) -> np.ndarray:
    dh = np.abs(hours - at)
    dh = np.minimum(dh, 24 - dh)
    return np.bincount(inv, weights=np.exp(-(dh**2) / (2 * HOUR_SIGMA**2)), minlength=k)


def _transitions(ui: np.ndarray, inv: np.ndarray, ut: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The user's own transitions out of their last item (any gap, and within MAX_GAP_H), and the
    second-order ones out of the item before it."""
    m = len(ui)
    out: dict[str, np.ndarray] = {}
    last = ui[-1]
    prev, nxt = ui[:-1], inv[1:]
    close = (ut[1:] - ut[:-1]) <= MAX_GAP_H
    anygap = nxt[prev == last]
    if len(anygap):
        out["trans_any"] = np.bincount(anygap, minlength=k) / len(anygap)
    if m > 2:
        after2 = inv[2:][ui[:-2] == ui[-2]]
        if len(after2):
            out["trans_prev2"] = np.bincount(after2, minlength=k) / len(after2)
    own = nxt[(prev == last) & close]
    if len(own):
        out["trans_count"] = np.bincount(own, minlength=k).astype(float)
        out["trans_prob"] = out["trans_count"] / len(own)
    return out


def query_vectors(stats: CatalogStats, user: UserHistory, when: QueryTime) -> QueryVectors:
    n = stats.n
    valid = user.idx >= 0
    ui, uh, uw, ut = user.idx[valid], user.hour[valid], user.weekend[valid], user.t_h[valid]
    m = len(ui)
    kernel = _hour_kernel(when.hour)
    empty = SparseVector.empty(n)
    if not m:
        return QueryVectors(
            n, 0, when, np.zeros(0, dtype=np.int64), {}, empty, 0.0, np.inf, empty, None, kernel, user=user
        )
    items, first, inv, counts = np.unique(ui, return_index=True, return_inverse=True, return_counts=True)
    k = len(items)
    recent = min(m, RECENT_NOVELTY)
    novelty = (k / m, float(np.sum(first >= m - recent)) / recent)
    pp: dict[str, np.ndarray] = {"count": counts.astype(float)}
    last_pos = np.zeros(k)
    last_pos[inv] = np.arange(m)  # later positions overwrite earlier ones
    last_t = np.zeros(k)
    last_t[inv] = ut
    pp["last_pos"], pp["last_t"] = last_pos, last_t
    pp["aff"] = _affinity(uh, when.hour, inv, k)
    # where the user tends to be one typical gap after now (the median gap between consecutive
    # events under MAX_GAP_H; 3 h without any)
    gaps = np.diff(ut)
    gaps = gaps[(gaps > 0) & (gaps <= MAX_GAP_H)]
    pp["next_aff"] = _affinity(uh, (when.hour + (float(np.median(gaps)) if len(gaps) else 3.0)) % 24, inv, k)
    pp["weekend"] = np.bincount(inv, weights=(uw == when.weekend).astype(float), minlength=k)
    pp["recent10"] = np.bincount(inv[-10:], minlength=k).astype(float)
    pp["recent50"] = np.bincount(inv[-50:], minlength=k) / min(m, 50)
    if when.weekday is not None and user.weekday is not None:
        same = (user.weekday[valid] == when.weekday).astype(float)
        pp["dow"] = np.bincount(inv, weights=same, minlength=k)
    pp.update(_transitions(ui, inv, ut, k))
    weights = np.log1p(counts)
    # co-visitation from the user's items, weighted by how often
    covis = SparseVector.from_sparse_row(sp.csr_matrix(weights[None, :]) @ stats.covis[items], n)
    knn = None
    if stats.user_items.shape[0]:
        # user-based: what the most similar users (cosine over log visits) go to
        w = weights.astype(np.float32)
        sims = stats.user_items_by_item[:, items] @ (w / max(float(np.linalg.norm(w)), 1e-9))
        top = np.argpartition(-sims, min(KNN_USERS, len(sims)) - 1)[: min(KNN_USERS, len(sims))]
        knn = SparseVector.from_sparse_row(
            sp.csr_matrix(sims[top].astype(np.float64)[None, :]) @ stats.user_items[top], n
        )
    last = ui[-1]
    return QueryVectors(
        n=n,
        m=m,
        when=when,
        items=items.astype(np.int64),
        per_item=pp,
        global_trans=SparseVector.from_sparse_row(stats.trans.getrow(last), n),
        global_trans_row_sum=float(stats.trans_row_sum[last]),
        gap_h=max(when.t_h - ut[-1], 0.0),
        covis=covis,
        knn=knn,
        hour_kernel=kernel,
        novelty=novelty,
        user=user,
    )
