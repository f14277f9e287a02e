"""Per-candidate features for next-place ranking, computed vectorised over the whole catalog.

``CatalogStats`` holds what is shared by all users, built from a training history: POI
coordinates, popularity, global transitions (consecutive check-ins ≤ 24 h apart) and item-item
co-visitation. ``query_features`` turns one user's history before the query time into a feature
matrix over every POI: O(catalog) numpy work per query, a few milliseconds.

No information after the query time may enter: callers pass only the user's events before it,
and CatalogStats is built from rows before the earliest query (tests/evaluation checks this).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core import columns as C
from core.geo import haversine_km

MAX_GAP_H = 24.0
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


@dataclass
class CatalogStats:
    item_ids: np.ndarray  # index -> item id (str)
    lat: np.ndarray
    lon: np.ndarray
    popularity: np.ndarray  # check-ins per POI in the training history
    recent_popularity: np.ndarray  # in its last 30 days
    trans: sp.csr_matrix  # global transition counts (from -> to)
    trans_row_sum: np.ndarray
    covis: sp.csr_matrix  # item-item cosine co-visitation (users), diagonal zero
    user_items: sp.csr_matrix  # users x items, log(1 + visits), rows L2-normalised
    known: np.ndarray  # bool: seen in the training history
    cutoff: pd.Timestamp  # the latest training time
    hour_hist: np.ndarray  # (n, 24) check-ins per local hour of day
    weekend_count: np.ndarray  # check-ins on a local weekend day
    _lookup: pd.Index | None = field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.item_ids)

    def index_of(self, ids: pd.Series | np.ndarray) -> np.ndarray:
        assert self._lookup is not None  # built in __post_init__
        return self._lookup.get_indexer(pd.Index(np.asarray(ids).astype(str)))

    def __post_init__(self) -> None:
        # The id -> index lookup, built once per stats object (not per request).
        self._lookup = pd.Index(self.item_ids)

    @classmethod
    def build(cls, history: pd.DataFrame, items: pd.DataFrame | None = None) -> CatalogStats:
        """history: events frame (core.columns) of the training period; items: extra catalog rows
        (item_id, lat, lon) known but maybe never visited."""
        h = history.dropna(subset=[C.ITEM]).sort_values([C.USER, C.TIME], kind="stable")
        ids = pd.Index(pd.unique(h[C.ITEM].astype(str)))
        if items is not None and len(items):
            ids = ids.append(pd.Index(items["item_id"].astype(str))).unique()
        coords = h.groupby(h[C.ITEM].astype(str))[[C.LAT, C.LON]].median()
        lat = coords[C.LAT].reindex(ids).to_numpy(dtype=float).copy()
        lon = coords[C.LON].reindex(ids).to_numpy(dtype=float).copy()
        if items is not None and len(items):
            it = (
                items.assign(item_id=items["item_id"].astype(str))
                .drop_duplicates("item_id")
                .set_index("item_id")
            )
            miss = np.isnan(lat)
            lat[miss] = it["lat"].reindex(ids[miss]).to_numpy(dtype=float)
            lon[miss] = it["lon"].reindex(ids[miss]).to_numpy(dtype=float)
        n = len(ids)
        idx = ids.get_indexer(h[C.ITEM].astype(str))
        pop = np.bincount(idx, minlength=n).astype(float)
        ts = pd.to_datetime(h[C.TIME], utc=True)
        cutoff = ts.max() if len(ts) else pd.Timestamp.now(tz="UTC")
        recent = (ts >= cutoff - pd.Timedelta(days=30)).to_numpy()
        rpop = np.bincount(idx[recent], minlength=n).astype(float)
        users = h[C.USER].astype(str).to_numpy()
        th = ts.dt.as_unit("ns").astype("int64").to_numpy() / 3.6e12
        ok = (users[1:] == users[:-1]) & ((th[1:] - th[:-1]) <= MAX_GAP_H)
        a, b = idx[:-1][ok], idx[1:][ok]
        trans = sp.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
        trans.sum_duplicates()
        # Co-visitation: users who went to i also went to j (binary user x item, cosine).
        uidx = pd.Index(pd.unique(users)).get_indexer(users)
        x = sp.csr_matrix((np.ones(len(idx)), (uidx, idx)), shape=(uidx.max() + 1 if len(uidx) else 0, n))
        x.data[:] = 1.0
        x.sum_duplicates()
        x.data[:] = 1.0
        co = (x.T @ x).tocsr().astype(np.float32)
        deg = np.sqrt(np.asarray(co.diagonal()).astype(np.float32))
        co.setdiag(0)
        co.eliminate_zeros()
        inv = np.where(deg > 0, 1 / np.maximum(deg, 1e-9), 0).astype(np.float32)
        co = sp.diags(inv) @ co @ sp.diags(inv)
        cnt = sp.csr_matrix((np.ones(len(idx)), (uidx, idx)), shape=x.shape)
        cnt.sum_duplicates()
        cnt.data = np.log1p(cnt.data)
        norms = np.sqrt(np.asarray(cnt.multiply(cnt).sum(axis=1)).ravel())
        user_items = sp.csr_matrix(sp.diags(1 / np.maximum(norms, 1e-9)) @ cnt, dtype=np.float32)
        known = np.zeros(n, dtype=bool)
        known[np.unique(idx)] = True
        hour_hist, weekend_count = _time_profile(h, idx, n)
        return cls(
            item_ids=np.asarray(ids, dtype=object),
            lat=lat,
            lon=lon,
            popularity=pop,
            recent_popularity=rpop,
            trans=trans,
            trans_row_sum=np.asarray(trans.sum(axis=1)).ravel(),
            covis=sp.csr_matrix(co),
            user_items=user_items,
            known=known,
            cutoff=cutoff,
            hour_hist=hour_hist,
            weekend_count=weekend_count,
        )

    def with_events(self, events: pd.DataFrame) -> CatalogStats:
        """A new CatalogStats with ``events`` folded into popularity, time profiles and
        transitions; this one is left untouched (serving swaps whole states while requests read).

        Unknown items join the catalog at the end, so every index into this one stays valid;
        co-visitation and the user-item matrix are kept as built (a rebuild refreshes them)."""
        if len(events) == 0:
            return self
        e = events.dropna(subset=[C.ITEM]).sort_values([C.USER, C.TIME], kind="stable")
        new_ids = pd.Index(pd.unique(e[C.ITEM].astype(str))).difference(pd.Index(self.item_ids))
        item_ids, lat, lon = self.item_ids, self.lat, self.lon
        popularity, recent, known = self.popularity, self.recent_popularity, self.known
        hour_hist, weekend_count = self.hour_hist, self.weekend_count
        trans, trans_row_sum, covis, user_items = self.trans, self.trans_row_sum, self.covis, self.user_items
        if len(new_ids):
            k = len(new_ids)
            coords = e.groupby(e[C.ITEM].astype(str))[[C.LAT, C.LON]].median().reindex(new_ids)
            item_ids = np.concatenate([item_ids, np.asarray(new_ids, dtype=object)])
            lat = np.concatenate([lat, coords[C.LAT].to_numpy(dtype=float)])
            lon = np.concatenate([lon, coords[C.LON].to_numpy(dtype=float)])
            popularity = np.concatenate([popularity, np.zeros(k)])
            recent = np.concatenate([recent, np.zeros(k)])
            known = np.concatenate([known, np.zeros(k, dtype=bool)])
            hour_hist = np.vstack([hour_hist, np.zeros((k, 24), dtype=np.float32)])
            weekend_count = np.concatenate([weekend_count, np.zeros(k)])
            n = len(item_ids)
            trans = _grown(trans, (n, n))
            trans_row_sum = np.concatenate([trans_row_sum, np.zeros(k)])
            covis = _grown(covis, (n, n))
            user_items = _grown(user_items, (user_items.shape[0], n))
        out = replace(
            self,
            item_ids=item_ids,
            lat=lat,
            lon=lon,
            trans=trans,
            trans_row_sum=trans_row_sum,
            covis=covis,
            user_items=user_items,
            _lookup=None,
        )
        n = out.n
        idx = out.index_of(e[C.ITEM].astype(str).to_numpy())
        out.popularity = popularity + np.bincount(idx, minlength=n)
        out.recent_popularity = recent + np.bincount(idx, minlength=n)
        out.known = known.copy()
        out.known[idx] = True
        hh, wk = _time_profile(e, idx, n)
        out.hour_hist = hour_hist + hh
        out.weekend_count = weekend_count + wk
        users = e[C.USER].astype(str).to_numpy()
        th = pd.to_datetime(e[C.TIME], utc=True).dt.as_unit("ns").astype("int64").to_numpy() / 3.6e12
        ok = (users[1:] == users[:-1]) & ((th[1:] - th[:-1]) <= MAX_GAP_H)
        a, b = idx[:-1][ok], idx[1:][ok]
        if len(a):
            out.trans = (out.trans + sp.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))).tocsr()
            out.trans_row_sum = np.asarray(out.trans.sum(axis=1)).ravel()
        out.cutoff = max(self.cutoff, pd.to_datetime(e[C.TIME], utc=True).max())
        return out


def _grown(m: sp.csr_matrix, shape: tuple[int, int]) -> sp.csr_matrix:
    """A copy of ``m`` with more (empty) rows/columns; ``m`` itself is not resized in place."""
    c = m.tocoo()
    return sp.csr_matrix((c.data, (c.row, c.col)), shape=shape, dtype=m.dtype)


def _time_profile(h: pd.DataFrame, idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Check-ins per (POI, local hour) and per POI on weekends, from the rows' own offsets."""
    ts = pd.to_datetime(h[C.TIME], utc=True).dt.tz_localize(None)
    off = h[C.TZ_OFFSET].fillna(0).to_numpy(dtype=float) if C.TZ_OFFSET in h else np.zeros(len(h))
    local = ts + pd.to_timedelta(off, unit="m")
    hours = local.dt.hour.to_numpy(dtype=int)
    ok = idx >= 0
    hist = np.zeros((n, 24), dtype=np.float32)
    np.add.at(hist, (idx[ok], hours[ok]), 1.0)
    wk = np.bincount(idx[ok], weights=(local.dt.day_of_week >= 5).to_numpy()[ok].astype(float), minlength=n)
    return hist, wk


@dataclass
class UserHistory:
    """One user's events before the query time, as catalog indices (time order)."""

    idx: np.ndarray  # POI index per event (-1: not in the catalog)
    hour: np.ndarray  # local hour (float, with minutes)
    weekend: np.ndarray  # bool
    t_h: np.ndarray  # UTC hours since epoch
    weekday: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.idx)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, stats: CatalogStats) -> UserHistory:
        if len(df) == 0:
            e = np.array([], dtype=float)
            return cls(np.array([], dtype=int), e, np.array([], dtype=bool), e, np.array([], dtype=int))
        df = df.sort_values(C.TIME, kind="stable")
        ts = pd.to_datetime(df[C.TIME], utc=True)
        off = df[C.TZ_OFFSET].fillna(0).to_numpy(dtype=float) if C.TZ_OFFSET in df else np.zeros(len(df))
        local = ts.dt.tz_localize(None) + pd.to_timedelta(off, unit="m")
        return cls(
            idx=stats.index_of(df[C.ITEM].astype(str).to_numpy()),
            hour=(local.dt.hour + local.dt.minute / 60).to_numpy(dtype=float),
            weekend=(local.dt.day_of_week >= 5).to_numpy(),
            t_h=ts.dt.as_unit("ns").astype("int64").to_numpy() / 3.6e12,
            weekday=local.dt.day_of_week.to_numpy(),
        )


def user_histories(events: pd.DataFrame, stats: CatalogStats) -> dict[str, UserHistory]:
    """``UserHistory.from_frame`` for every user of ``events`` at once (one vectorised pass, then
    slices): what serving precomputes so a request never converts a history."""
    if not len(events):
        return {}
    df = events.sort_values([C.USER, C.TIME], kind="stable")
    ts = pd.to_datetime(df[C.TIME], utc=True)
    off = df[C.TZ_OFFSET].fillna(0).to_numpy(dtype=float) if C.TZ_OFFSET in df else np.zeros(len(df))
    local = ts.dt.tz_localize(None) + pd.to_timedelta(off, unit="m")
    idx = stats.index_of(df[C.ITEM].astype(str).to_numpy())
    hour = (local.dt.hour + local.dt.minute / 60).to_numpy(dtype=float)
    weekend = (local.dt.day_of_week >= 5).to_numpy()
    t_h = ts.dt.as_unit("ns").astype("int64").to_numpy() / 3.6e12
    weekday = local.dt.day_of_week.to_numpy()
    users = df[C.USER].astype(str).to_numpy()
    cuts = np.flatnonzero(users[1:] != users[:-1]) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, len(df)]
    return {
        str(users[a]): UserHistory(idx[a:b], hour[a:b], weekend[a:b], t_h[a:b], weekday[a:b])
        for a, b in zip(starts, ends, strict=True)
    }


def haversine_to_all(stats: CatalogStats, lat: float, lon: float) -> np.ndarray:
    d = haversine_km(lat, lon, stats.lat, stats.lon)
    return np.where(np.isnan(d), 50.0, d)  # an unlocated POI is "far", not an error


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
