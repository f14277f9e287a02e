"""One user's events before the query time as catalog indices: what the per-query kernel reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import columns as C
from retrieval.catalog_stats import CatalogStats


@dataclass
class UserHistory:
    """One user's events before the query time, as catalog indices (time order)."""

    idx: np.ndarray  # catalog index per event (-1: not in the catalog)
    hour: np.ndarray  # local hour (float, with minutes)
    weekend: np.ndarray  # bool
    t_h: np.ndarray  # UTC hours since epoch
    weekday: np.ndarray | None = None
    rating: np.ndarray | None = None  # the event's rating (NaN where it has none)
    user_id: str | None = None  # whose history (a domain may read the person's row of its own data)

    @property
    def n(self) -> int:
        return len(self.idx)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, stats: CatalogStats) -> UserHistory:
        if len(df) == 0:
            e = np.array([], dtype=float)
            return cls(np.array([], dtype=int), e, np.array([], dtype=bool), e, np.array([], dtype=int), e)
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
            rating=_ratings(df),
            user_id=str(df[C.USER].iloc[0]) if C.USER in df else None,
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
    rating = _ratings(df)
    users = df[C.USER].astype(str).to_numpy()
    cuts = np.flatnonzero(users[1:] != users[:-1]) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, len(df)]
    return {
        str(users[a]): UserHistory(
            idx[a:b], hour[a:b], weekend[a:b], t_h[a:b], weekday[a:b], rating[a:b], str(users[a])
        )
        for a, b in zip(starts, ends, strict=True)
    }


def _ratings(df: pd.DataFrame) -> np.ndarray:
    if C.RATING not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[C.RATING], errors="coerce").to_numpy(dtype=float)
