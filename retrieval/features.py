"""The per-query kernel: features for next-place ranking, vectorised over the whole catalog.

``query_vectors`` folds one user's history before the query time (``UserHistory``) with the
shared ``CatalogStats`` into what the query needs whichever places are scored (per-place visit
statistics, sparse co-visitation and neighbour vectors); ``features_at`` turns that into feature
rows for chosen places in O(rows). Serving scores only its candidates (retrieval.candidate_pool);
training and evaluation call ``query_features`` for the whole catalog, with the same code, so a
place's features are identical in both. ``heuristic_score`` is the hand-weighted blend that
selects the pool.

No information after the query time may enter: callers pass only the user's events before it,
and CatalogStats is built from rows before the earliest query (tests/evaluation checks this).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from retrieval.catalog_stats import MAX_GAP_H, CatalogStats, distance_at
from retrieval.sparse_vector import SparseVector, gather
from retrieval.user_history import UserHistory

HOUR_SIGMA = 2.0  # hours; the kernel for "visits this place at this time of day"

FEATURES = (
    "user_count_log",
    "user_share",
    "steps_since_visit_log",
    "hours_since_visit_log",
    "user_hour_affinity",
    "user_hour_affinity_share",
    "user_weekend_match",
    "user_trans_count",
    "user_trans_prob",
    "global_trans_prob",
    "global_trans_count_log",
    "dist_last_km_log",
    "dist_last_exp",
    "dist_centroid_km_log",
    "covis_score",
    "covis_rank_score",
    "popularity_log",
    "recent_popularity_log",
    "gap_since_last_h_log",
    "user_n_events_log",
    "visited_before",
    "user_recent10_count",
    "user_recent50_share",
    "user_dow_affinity_share",
    "user_trans_any_prob",
    "user_trans_prev2_prob",
    # The place's own rhythm (all users, training history): helps places new to the user.
    "poi_hour_share",
    "poi_hour_count_log",
    "poi_weekend_match",
    "covis_x_dist",
    "user_knn_score",
    "user_knn_rank_score",
    # The "where next?" setting: the query's time is the last check-in's, the next visit's unknown.
    "query_time_known",
    "user_next_hour_affinity_share",  # at the last check-in's hour plus the user's typical gap
    # Places new to the user: how often this user goes somewhere new (all history, last 20
    # check-ins), and how far a place is from the nearest of their most visited places.
    "user_novelty_rate",
    "user_recent_novelty_rate",
    "dist_anchor_km_log",
)
ANCHORS = 5  # the user's most visited places that "distance from anchors" measures from
RECENT_NOVELTY = 20
KNN_USERS = 30  # neighbours for the user-based collaborative signal


@dataclass(frozen=True)
class QueryVectors:
    """What one query needs, whichever places are scored: the user's history folded per place,
    the sparse co-visitation and neighbour vectors, the reference location. O(history + their
    non-zeros) to build; ``features_at`` then costs O(rows)."""

    n: int
    m: int  # the user's events in the catalog
    t_h: float
    hour: float
    weekend: bool
    weekday: int | None
    places: np.ndarray  # sorted unique catalog indices the user visited
    per_place: dict[str, np.ndarray]  # feature name -> value per entry of ``places``
    global_trans: SparseVector  # counts out of the last place
    global_trans_row_sum: float
    gap_h: float
    covis: SparseVector
    knn: SparseVector | None
    ref: tuple[float, float]  # (nan, nan): unknown
    centroid: tuple[float, float] | None
    hour_kernel: np.ndarray  # (24,) float32
    time_known: bool = True  # False: "where next?", ranked at the time of the last check-in
    novelty: tuple[float, float] = (0.0, 0.0)  # share of first visits: all history, recent
    anchors: np.ndarray | None = None  # (k, 2) lat/lon of the user's most visited located places


def query_vectors(
    stats: CatalogStats,
    user: UserHistory,
    t_h: float,
    hour: float,
    weekend: bool,
    where: tuple[float, float] | None = None,
    weekday: int | None = None,
    time_known: bool = True,
) -> QueryVectors:
    n = stats.n
    valid = user.idx >= 0
    ui, uh, uw, ut = user.idx[valid], user.hour[valid], user.weekend[valid], user.t_h[valid]
    m = len(ui)
    dh24 = np.abs(np.arange(24) + 0.5 - hour)
    dh24 = np.minimum(dh24, 24 - dh24)
    hour_kernel = np.exp(-(dh24**2) / (2 * HOUR_SIGMA**2)).astype(np.float32)
    empty = SparseVector.empty(n)
    if not m:
        ref = where if where is not None else (np.nan, np.nan)
        return QueryVectors(
            n, 0, t_h, hour, weekend, weekday, np.zeros(0, dtype=np.int64), {}, empty, 0.0, np.inf,
            empty, None, (float(ref[0]), float(ref[1])), None, hour_kernel, time_known,
        )  # fmt: skip
    places, first, inv, counts = np.unique(ui, return_index=True, return_inverse=True, return_counts=True)
    k = len(places)
    recent = min(m, RECENT_NOVELTY)
    novelty = (k / m, float(np.sum(first >= m - recent)) / recent)
    by_visits = places[np.argsort(-counts, kind="stable")]
    by_visits = by_visits[~np.isnan(stats.lat[by_visits])][:ANCHORS]
    anchors = np.column_stack([stats.lat[by_visits], stats.lon[by_visits]]) if len(by_visits) else None
    cnt = counts.astype(float)
    pp: dict[str, np.ndarray] = {"count": cnt}
    last_pos = np.zeros(k)
    last_pos[inv] = np.arange(m)  # later positions overwrite earlier ones
    last_t = np.zeros(k)
    last_t[inv] = ut
    pp["last_pos"], pp["last_t"] = last_pos, last_t
    dh = np.abs(uh - hour)
    dh = np.minimum(dh, 24 - dh)
    pp["aff"] = np.bincount(inv, weights=np.exp(-(dh**2) / (2 * HOUR_SIGMA**2)), minlength=k)
    # where the user tends to be one typical gap after now (the median gap between consecutive
    # check-ins under MAX_GAP_H; 3 h without any)
    gaps = np.diff(ut)
    gaps = gaps[(gaps > 0) & (gaps <= MAX_GAP_H)]
    dn = np.abs(uh - (hour + (float(np.median(gaps)) if len(gaps) else 3.0)) % 24)
    dn = np.minimum(dn, 24 - dn)
    pp["next_aff"] = np.bincount(inv, weights=np.exp(-(dn**2) / (2 * HOUR_SIGMA**2)), minlength=k)
    pp["weekend"] = np.bincount(inv, weights=(uw == weekend).astype(float), minlength=k)
    pp["recent10"] = np.bincount(inv[-10:], minlength=k).astype(float)
    pp["recent50"] = np.bincount(inv[-50:], minlength=k) / min(m, 50)
    if weekday is not None and user.weekday is not None:
        same = (user.weekday[valid] == weekday).astype(float)
        pp["dow"] = np.bincount(inv, weights=same, minlength=k)
    last = ui[-1]
    # the user's own transitions out of the last place (any gap, and within MAX_GAP_H)
    prev, nxt = ui[:-1], inv[1:]
    close = (ut[1:] - ut[:-1]) <= MAX_GAP_H
    anygap = nxt[prev == last]
    if len(anygap):
        pp["trans_any"] = np.bincount(anygap, minlength=k) / len(anygap)
    if m >= 2:
        # second-order: where the user went after being at the place before the last one
        after2 = inv[2:][ui[:-2] == ui[-2]] if m > 2 else np.array([], dtype=int)
        if len(after2):
            pp["trans_prev2"] = np.bincount(after2, minlength=k) / len(after2)
    own = nxt[(prev == last) & close]
    if len(own):
        pp["trans_count"] = np.bincount(own, minlength=k).astype(float)
        pp["trans_prob"] = pp["trans_count"] / len(own)
    weights = np.log1p(counts)
    # co-visitation from the user's places, weighted by how often
    covis = SparseVector.from_sparse_row(sp.csr_matrix(weights[None, :]) @ stats.covis[places], n)
    knn = None
    if stats.user_items.shape[0]:
        # user-based: what the most similar users (cosine over log visits) go to
        w = weights.astype(np.float32)
        sims = stats.user_items_by_item[:, places] @ (w / max(float(np.linalg.norm(w)), 1e-9))
        top = np.argpartition(-sims, min(KNN_USERS, len(sims)) - 1)[: min(KNN_USERS, len(sims))]
        knn = SparseVector.from_sparse_row(
            sp.csr_matrix(sims[top].astype(np.float64)[None, :]) @ stats.user_items[top], n
        )
    # the last check-in's place, or the latest located one before it (an event may name a place
    # nobody has located yet: distances from nowhere would all be NaN)
    located = ui[~np.isnan(stats.lat[ui])]
    at = last if not np.isnan(stats.lat[last]) or not len(located) else located[-1]
    ref = (stats.lat[at], stats.lon[at]) if where is None else where
    return QueryVectors(
        n=n,
        m=m,
        t_h=t_h,
        hour=hour,
        weekend=weekend,
        weekday=weekday,
        places=places.astype(np.int64),
        per_place=pp,
        global_trans=SparseVector.from_sparse_row(stats.trans.getrow(last), n),
        global_trans_row_sum=float(stats.trans_row_sum[last]),
        gap_h=max(t_h - ut[-1], 0.0),
        covis=covis,
        knn=knn,
        ref=(float(ref[0]), float(ref[1])),
        centroid=(float(np.nanmedian(stats.lat[ui])), float(np.nanmedian(stats.lon[ui]))),
        hour_kernel=hour_kernel,
        time_known=time_known,
        novelty=novelty,
        anchors=anchors,
    )


def features_at(stats: CatalogStats, q: QueryVectors, rows: np.ndarray) -> np.ndarray:
    """Features (len(FEATURES) columns) for the places ``rows``: each row's values are the same
    whichever other rows are scored with it."""
    rows = np.asarray(rows, dtype=np.int64)
    f = np.zeros((len(rows), len(FEATURES)), dtype=np.float32)
    col = {name: i for i, name in enumerate(FEATURES)}
    if q.m:
        # where each row sits among the user's places, looked up once for every per-place value
        slot, seen = SparseVector(q.n, q.places, np.ones(len(q.places))).slots(rows)

        def at_places(name: str) -> np.ndarray:  # 0 where the user never went
            return gather(q.per_place[name], slot, seen)

        cnt = at_places("count")
        safe = np.maximum(cnt, 1)
        f[:, col["user_count_log"]] = np.log1p(cnt)
        f[:, col["user_share"]] = cnt / q.m
        f[:, col["steps_since_visit_log"]] = np.where(seen, np.log1p(q.m - at_places("last_pos")), 8.0)
        f[:, col["hours_since_visit_log"]] = np.where(
            seen, np.log1p(np.maximum(q.t_h - at_places("last_t"), 0)), 10.0
        )
        aff = at_places("aff")
        f[:, col["user_hour_affinity"]] = np.log1p(aff)
        f[:, col["user_hour_affinity_share"]] = np.where(cnt > 0, aff / safe, 0)
        f[:, col["user_weekend_match"]] = np.where(cnt > 0, at_places("weekend") / safe, 0)
        f[:, col["user_next_hour_affinity_share"]] = np.where(cnt > 0, at_places("next_aff") / safe, 0)
        f[:, col["visited_before"]] = seen
        f[:, col["user_recent10_count"]] = at_places("recent10")
        f[:, col["user_recent50_share"]] = at_places("recent50")
        if "dow" in q.per_place:
            f[:, col["user_dow_affinity_share"]] = np.where(cnt > 0, at_places("dow") / safe, 0)
        for name, key in (
            ("user_trans_any_prob", "trans_any"),
            ("user_trans_prev2_prob", "trans_prev2"),
            ("user_trans_count", "trans_count"),
            ("user_trans_prob", "trans_prob"),
        ):
            if key in q.per_place:
                f[:, col[name]] = at_places(key)
        g = q.global_trans.at(rows)
        rs = q.global_trans_row_sum
        f[:, col["global_trans_prob"]] = g / rs if rs > 0 else 0
        f[:, col["global_trans_count_log"]] = np.log1p(g)
        f[:, col["gap_since_last_h_log"]] = np.log1p(q.gap_h)
        f[:, col["covis_score"]] = q.covis.at(rows)
        f[:, col["covis_rank_score"]] = q.covis.rank_score(rows)
        if q.knn is not None:
            f[:, col["user_knn_score"]] = q.knn.at(rows)
            f[:, col["user_knn_rank_score"]] = q.knn.rank_score(rows)
        assert q.centroid is not None
        f[:, col["dist_centroid_km_log"]] = np.log1p(distance_at(stats, q.centroid, rows))
        f[:, col["user_novelty_rate"]], f[:, col["user_recent_novelty_rate"]] = q.novelty
        if q.anchors is not None:
            near = np.min([distance_at(stats, (float(a[0]), float(a[1])), rows) for a in q.anchors], axis=0)
            f[:, col["dist_anchor_km_log"]] = np.log1p(near)
        else:
            f[:, col["dist_anchor_km_log"]] = np.log1p(50.0)
    else:
        f[:, col["steps_since_visit_log"]] = 8.0
        f[:, col["hours_since_visit_log"]] = 10.0
        f[:, col["gap_since_last_h_log"]] = 10.0
        f[:, col["dist_centroid_km_log"]] = np.log1p(50.0)
        f[:, col["dist_anchor_km_log"]] = np.log1p(50.0)
    d = distance_at(stats, q.ref, rows)
    f[:, col["dist_last_km_log"]] = np.log1p(d)
    f[:, col["dist_last_exp"]] = np.exp(-d / 2)
    pop = stats.popularity[rows]
    f[:, col["popularity_log"]] = np.log1p(pop)
    # row by row (not a BLAS product), so a place's value does not depend on the rows beside it
    at_hour = (stats.hour_hist[rows] * q.hour_kernel).sum(axis=1)
    f[:, col["poi_hour_share"]] = (at_hour + 0.1) / (pop + 1.0)
    f[:, col["poi_hour_count_log"]] = np.log1p(at_hour)
    wshare = (stats.weekend_count[rows] + 0.3) / (pop + 1.0)
    f[:, col["poi_weekend_match"]] = wshare if q.weekend else 1 - wshare
    f[:, col["covis_x_dist"]] = f[:, col["covis_rank_score"]] * f[:, col["dist_last_exp"]]
    f[:, col["recent_popularity_log"]] = np.log1p(stats.recent_popularity[rows])
    f[:, col["user_n_events_log"]] = np.log1p(q.m)
    f[:, col["query_time_known"]] = float(q.time_known)
    return f


def query_features(
    stats: CatalogStats,
    user: UserHistory,
    t_h: float,
    hour: float,
    weekend: bool,
    where: tuple[float, float] | None = None,
    weekday: int | None = None,
    time_known: bool = True,
) -> np.ndarray:
    """Features for every POI in the catalog, for a query at ``t_h`` (UTC hours) and local
    ``hour``; ``where`` overrides the last check-in's location. Training and evaluation use this;
    serving scores only its candidates (retrieval.candidate_pool)."""
    q = query_vectors(stats, user, t_h, hour, weekend, where, weekday, time_known)
    return features_at(stats, q, np.arange(stats.n))


# The hand-weighted blend's weights (the README's blend, plus co-visitation). candidate_pool
# bounds the score of places its sources did not return with the same numbers.
BLEND = {
    "user_count_log": 1.0,
    "global_trans_prob": 1.4,
    "user_trans_prob": 1.0,
    "dist_last_exp": 0.42,
    "user_hour_affinity_share": 0.5,  # counted only for places the user visited
    "covis_rank_score": 0.3,
    "user_knn_rank_score": 0.3,
    "popularity_log": 0.05,
}


def heuristic_score(f: np.ndarray) -> np.ndarray:
    """Hand-weighted blend (``BLEND``): the stage-1 pool selector and the 'heuristic' ranker."""
    col = {name: i for i, name in enumerate(FEATURES)}
    w = BLEND
    return (
        w["user_count_log"] * f[:, col["user_count_log"]]
        + w["global_trans_prob"] * f[:, col["global_trans_prob"]]
        + w["user_trans_prob"] * f[:, col["user_trans_prob"]]
        + w["dist_last_exp"] * f[:, col["dist_last_exp"]]
        + w["user_hour_affinity_share"]
        * f[:, col["user_hour_affinity_share"]]
        * (f[:, col["user_count_log"]] > 0)
        + w["covis_rank_score"] * f[:, col["covis_rank_score"]]
        + w["user_knn_rank_score"] * f[:, col["user_knn_rank_score"]]
        + w["popularity_log"] * f[:, col["popularity_log"]]
    )
