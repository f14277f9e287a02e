"""The per-query kernel: features for next-place ranking, vectorised over the whole catalog.

``query_features`` turns one user's history before the query time (``UserHistory``) and the
shared ``CatalogStats`` into a feature matrix over every POI: O(catalog) numpy work per query, a
few milliseconds. ``heuristic_score`` is the hand-weighted blend that selects the pool.

No information after the query time may enter: callers pass only the user's events before it,
and CatalogStats is built from rows before the earliest query (tests/evaluation checks this).
"""

from __future__ import annotations

import numpy as np

from retrieval.catalog_stats import MAX_GAP_H, CatalogStats, haversine_to_all
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
)
KNN_USERS = 30  # neighbours for the user-based collaborative signal


def query_features(
    stats: CatalogStats,
    user: UserHistory,
    t_h: float,
    hour: float,
    weekend: bool,
    where: tuple[float, float] | None = None,
    weekday: int | None = None,
) -> np.ndarray:
    """Features (len(FEATURES) columns) for every POI in the catalog, for a query at ``t_h``
    (UTC hours) and local ``hour``. ``where`` overrides the last check-in's location."""
    n = stats.n
    f = np.zeros((n, len(FEATURES)), dtype=np.float32)
    col = {name: i for i, name in enumerate(FEATURES)}
    valid = user.idx >= 0
    ui, uh, uw, ut = user.idx[valid], user.hour[valid], user.weekend[valid], user.t_h[valid]
    m = len(ui)
    if m:
        cnt = np.bincount(ui, minlength=n).astype(float)
        f[:, col["user_count_log"]] = np.log1p(cnt)
        f[:, col["user_share"]] = cnt / m
        last_pos = np.full(n, -1.0)
        last_pos[ui] = np.arange(m)  # later positions overwrite earlier ones
        last_t = np.full(n, np.nan)
        last_t[ui] = ut
        seen = last_pos >= 0
        f[:, col["steps_since_visit_log"]] = np.where(seen, np.log1p(m - last_pos), 8.0)
        f[:, col["hours_since_visit_log"]] = np.where(seen, np.log1p(np.maximum(t_h - last_t, 0)), 10.0)
        dh = np.abs(uh - hour)
        dh = np.minimum(dh, 24 - dh)
        kern = np.exp(-(dh**2) / (2 * HOUR_SIGMA**2))
        aff = np.bincount(ui, weights=kern, minlength=n)
        f[:, col["user_hour_affinity"]] = np.log1p(aff)
        f[:, col["user_hour_affinity_share"]] = np.where(cnt > 0, aff / np.maximum(cnt, 1), 0)
        wk = np.bincount(ui, weights=(uw == weekend).astype(float), minlength=n)
        f[:, col["user_weekend_match"]] = np.where(cnt > 0, wk / np.maximum(cnt, 1), 0)
        f[:, col["visited_before"]] = seen
        f[:, col["user_recent10_count"]] = np.bincount(ui[-10:], minlength=n)
        f[:, col["user_recent50_share"]] = np.bincount(ui[-50:], minlength=n) / min(m, 50)
        if weekday is not None and user.weekday is not None:
            same = (user.weekday[valid] == weekday).astype(float)
            f[:, col["user_dow_affinity_share"]] = np.where(
                cnt > 0, np.bincount(ui, weights=same, minlength=n) / np.maximum(cnt, 1), 0
            )
        last = ui[-1]
        # the user's own transitions out of the last place
        prev, nxt = ui[:-1], ui[1:]
        close = (ut[1:] - ut[:-1]) <= MAX_GAP_H
        anygap = nxt[prev == last]
        if len(anygap):
            f[:, col["user_trans_any_prob"]] = np.bincount(anygap, minlength=n) / len(anygap)
        if m >= 2:
            # second-order: where the user went after being at the place before the last one
            prev2 = ui[-2]
            after2 = ui[2:][(ui[:-2] == prev2)] if m > 2 else np.array([], dtype=int)
            if len(after2):
                f[:, col["user_trans_prev2_prob"]] = np.bincount(after2, minlength=n) / len(after2)
        own = nxt[(prev == last) & close]
        if len(own):
            oc = np.bincount(own, minlength=n).astype(float)
            f[:, col["user_trans_count"]] = oc
            f[:, col["user_trans_prob"]] = oc / len(own)
        row = stats.trans.getrow(last)
        g = np.zeros(n)
        g[row.indices] = row.data
        rs = stats.trans_row_sum[last]
        f[:, col["global_trans_prob"]] = g / rs if rs > 0 else 0
        f[:, col["global_trans_count_log"]] = np.log1p(g)
        lat, lon = (stats.lat[last], stats.lon[last]) if where is None else where
        gap = max(t_h - ut[-1], 0.0)
        f[:, col["gap_since_last_h_log"]] = np.log1p(gap)
        # co-visitation from the user's places, weighted by how often
        places, counts = np.unique(ui, return_counts=True)
        cv = np.asarray(stats.covis[places].T @ np.log1p(counts)).ravel()
        f[:, col["covis_score"]] = cv
        f[:, col["covis_rank_score"]] = _rank_score(cv)
        # user-based: what the most similar users (cosine over log visits) go to
        if stats.user_items.shape[0]:
            v = np.zeros(n, dtype=np.float32)
            v[places] = np.log1p(counts)
            sims = stats.user_items @ (v / max(float(np.linalg.norm(v)), 1e-9))
            k = min(KNN_USERS, len(sims))
            top = np.argpartition(-sims, k - 1)[:k]
            knn = np.asarray(stats.user_items[top].T @ sims[top]).ravel()
            f[:, col["user_knn_score"]] = knn
            f[:, col["user_knn_rank_score"]] = _rank_score(knn)
        clat, clon = np.nanmedian(stats.lat[ui]), np.nanmedian(stats.lon[ui])
        f[:, col["dist_centroid_km_log"]] = np.log1p(haversine_to_all(stats, clat, clon))
    else:
        f[:, col["steps_since_visit_log"]] = 8.0
        f[:, col["hours_since_visit_log"]] = 10.0
        f[:, col["gap_since_last_h_log"]] = 10.0
        lat, lon = where if where is not None else (np.nan, np.nan)
        f[:, col["dist_centroid_km_log"]] = np.log1p(50.0)
    if not (np.isnan(lat) or np.isnan(lon)):
        d = haversine_to_all(stats, float(lat), float(lon))
    else:
        d = np.full(n, 50.0)
    f[:, col["dist_last_km_log"]] = np.log1p(d)
    f[:, col["dist_last_exp"]] = np.exp(-d / 2)
    f[:, col["popularity_log"]] = np.log1p(stats.popularity)
    dh = np.abs(np.arange(24) + 0.5 - hour)
    dh = np.minimum(dh, 24 - dh)
    at_hour = stats.hour_hist @ np.exp(-(dh**2) / (2 * HOUR_SIGMA**2)).astype(np.float32)
    f[:, col["poi_hour_share"]] = (at_hour + 0.1) / (stats.popularity + 1.0)
    f[:, col["poi_hour_count_log"]] = np.log1p(at_hour)
    wshare = (stats.weekend_count + 0.3) / (stats.popularity + 1.0)
    f[:, col["poi_weekend_match"]] = wshare if weekend else 1 - wshare
    f[:, col["covis_x_dist"]] = f[:, col["covis_rank_score"]] * f[:, col["dist_last_exp"]]
    f[:, col["recent_popularity_log"]] = np.log1p(stats.recent_popularity)
    f[:, col["user_n_events_log"]] = np.log1p(m)
    return f


def _rank_score(v: np.ndarray) -> np.ndarray:
    """1 / (1 + rank / 10) by descending value: scale-free, so users with long and short
    histories get comparable numbers."""
    order = np.argsort(-v, kind="stable")
    rank = np.empty(len(v))
    rank[order] = np.arange(len(v))
    return 1 / (1 + rank / 10)


def heuristic_score(f: np.ndarray) -> np.ndarray:
    """Hand-weighted blend (the README's blend, plus co-visitation): the stage-1 pool selector
    and the 'heuristic' ranker."""
    col = {name: i for i, name in enumerate(FEATURES)}
    return (
        f[:, col["user_count_log"]]
        + 1.4 * f[:, col["global_trans_prob"]]
        + 1.0 * f[:, col["user_trans_prob"]]
        + 0.42 * f[:, col["dist_last_exp"]]
        + 0.5 * f[:, col["user_hour_affinity_share"]] * (f[:, col["user_count_log"]] > 0)
        + 0.3 * f[:, col["covis_rank_score"]]
        + 0.3 * f[:, col["user_knn_rank_score"]]
        + 0.05 * f[:, col["popularity_log"]]
    )
