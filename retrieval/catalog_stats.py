"""What every user shares, built once from a training history: the catalog statistics.

``CatalogStats`` holds popularity (all and last 30 days), global transitions (consecutive events
<= 24 h apart), item-item co-visitation, the user-item matrix behind the collaborative features,
each item's hour-of-day and weekend profile, and the parts a domain's feature groups build once
(``parts``: item locations for places, genres and ratings for films). Built as a unit (``build``);
new events make a new one (``with_events``), so serving never patches one in use. No information
after the training cutoff may enter (tests/evaluation check this).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core import columns as C

MAX_GAP_H = 24.0  # consecutive events further apart are not a transition


@dataclass
class CatalogStats:
    item_ids: np.ndarray  # index -> item id (str)
    popularity: np.ndarray  # events per item in the training history
    recent_popularity: np.ndarray  # in its last 30 days
    trans: sp.csr_matrix  # global transition counts (from -> to)
    trans_row_sum: np.ndarray
    covis: sp.csr_matrix  # item-item cosine co-visitation (users), diagonal zero
    user_items: sp.csr_matrix  # users x items, log(1 + visits), rows L2-normalised
    known: np.ndarray  # bool: seen in the training history
    cutoff: pd.Timestamp  # the latest training time
    hour_hist: np.ndarray  # (n, 24) events per local hour of day
    weekend_count: np.ndarray  # events on a local weekend day
    parts: dict[str, Any] = field(default_factory=dict)  # feature group name -> its catalog part
    _lookup: pd.Index | None = field(default=None, repr=False, compare=False)
    _derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.item_ids)

    def index_of(self, ids: pd.Series | np.ndarray) -> np.ndarray:
        assert self._lookup is not None  # built in __post_init__
        return self._lookup.get_indexer(pd.Index(np.asarray(ids).astype(str)))

    def __post_init__(self) -> None:
        # The id -> index lookup, built once per stats object (not per request).
        self._lookup = pd.Index(self.item_ids)
        self._derived = {}

    def _cached(self, key: str, build: Callable[[], Any]) -> Any:
        # Derived read-only structures, built once per stats object; ``warm`` builds them all up
        # front so a request never does (two threads racing here would build equal values).
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def warm(self) -> CatalogStats:
        """Build every derived structure now (serving calls this before a state goes live)."""
        _ = self.user_items_by_item, self.popular_order
        for part in self.parts.values():
            warm = getattr(part, "warm", None)
            if warm is not None:
                warm()
        return self

    @property
    def user_items_by_item(self) -> sp.csc_matrix:
        """``user_items`` by column: a query reads the columns of the user's own places only."""
        return cast(sp.csc_matrix, self._cached("by_item", lambda: sp.csc_matrix(self.user_items)))

    @property
    def popular_order(self) -> np.ndarray:
        """Catalog indices by popularity, most visited first (ties by index)."""
        return cast(np.ndarray, self._cached("popular", lambda: np.argsort(-self.popularity, kind="stable")))

    @classmethod
    def build(cls, history: pd.DataFrame, items: pd.DataFrame | None = None) -> CatalogStats:
        """history: events frame (core.columns) of the training period; items: extra catalog rows
        (item_id, ...) known but maybe never visited. The domain's parts are built apart
        (``FeatureSet.build_parts``)."""
        h = history.dropna(subset=[C.ITEM]).sort_values([C.USER, C.TIME], kind="stable")
        ids = pd.Index(pd.unique(h[C.ITEM].astype(str)))
        if items is not None and len(items):
            ids = ids.append(pd.Index(items["item_id"].astype(str))).unique()
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
        co-visitation and the user-item matrix are kept as built (a rebuild refreshes them). The
        domain's parts are left empty: the feature set grows them (``FeatureSet.grow_parts``)."""
        if len(events) == 0:
            return self
        e = events.dropna(subset=[C.ITEM]).sort_values([C.USER, C.TIME], kind="stable")
        new_ids = pd.Index(pd.unique(e[C.ITEM].astype(str))).difference(pd.Index(self.item_ids))
        item_ids = self.item_ids
        popularity, recent, known = self.popularity, self.recent_popularity, self.known
        hour_hist, weekend_count = self.hour_hist, self.weekend_count
        trans, trans_row_sum, covis, user_items = self.trans, self.trans_row_sum, self.covis, self.user_items
        if len(new_ids):
            k = len(new_ids)
            item_ids = np.concatenate([item_ids, np.asarray(new_ids, dtype=object)])
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
            trans=trans,
            trans_row_sum=trans_row_sum,
            covis=covis,
            user_items=user_items,
            parts={},
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
    """Events per (item, local hour) and per item on weekends, from the rows' own offsets."""
    ts = pd.to_datetime(h[C.TIME], utc=True).dt.tz_localize(None)
    off = h[C.TZ_OFFSET].fillna(0).to_numpy(dtype=float) if C.TZ_OFFSET in h else np.zeros(len(h))
    local = ts + pd.to_timedelta(off, unit="m")
    hours = local.dt.hour.to_numpy(dtype=int)
    ok = idx >= 0
    hist = np.zeros((n, 24), dtype=np.float32)
    np.add.at(hist, (idx[ok], hours[ok]), 1.0)
    wk = np.bincount(idx[ok], weights=(local.dt.day_of_week >= 5).to_numpy()[ok].astype(float), minlength=n)
    return hist, wk
