"""Per-user arrays prepared once from the events DataFrame, shared by every miner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from core import columns as C
from core.kinds import split_kinds


@dataclass
class UserEvents:
    """One user's events in time order, with local-time fields precomputed."""

    user_id: str
    ts: pd.DatetimeIndex  # UTC
    local: pd.DatetimeIndex  # local wall-clock, naive
    hour: np.ndarray
    weekday: np.ndarray  # 0 = Monday
    lat: np.ndarray
    lon: np.ndarray
    item: np.ndarray  # object array of str (or None)
    category: np.ndarray  # object array of str (or None): the item's primary kind
    text: np.ndarray
    rating: np.ndarray
    kinds: list[tuple[str, ...]]  # every kind of the event's item (a film's genres)
    names: np.ndarray | None = None  # the item's name (a film's title) per event, where known

    @property
    def n(self) -> int:
        return len(self.ts)

    @property
    def has_coords(self) -> np.ndarray:
        return ~(np.isnan(self.lat) | np.isnan(self.lon))


def user_events(events: pd.DataFrame, user_id: str, now: datetime | None = None) -> tuple[UserEvents, int]:
    """Select, clean and sort one user's events. Events after ``now`` are dropped (and counted):
    a clock error must not become a habit."""
    df = events
    if C.USER in df and len(df) and (df[C.USER].astype(str) != str(user_id)).any():
        df = df[df[C.USER].astype(str) == str(user_id)]
    ts = pd.to_datetime(df[C.TIME], utc=True) if len(df) else pd.Series([], dtype="datetime64[ns, UTC]")
    n_future = 0
    if now is not None and len(df):
        keep = (ts <= pd.Timestamp(now)).to_numpy()  # type: ignore[operator]
        n_future = int((~keep).sum())
        df, ts = df[keep], ts[keep]
    order = np.argsort(ts.to_numpy(), kind="stable")
    df = df.iloc[order]
    ts_idx = pd.DatetimeIndex(ts.iloc[order])
    off = df[C.TZ_OFFSET].fillna(0).to_numpy(dtype=float) if C.TZ_OFFSET in df else np.zeros(len(df))
    local = pd.DatetimeIndex(ts_idx.tz_localize(None) + pd.to_timedelta(off, unit="m"))

    def col(name: str, dtype: object = object) -> np.ndarray:
        if name in df:
            return df[name].to_numpy(dtype=dtype)  # type: ignore[arg-type,call-overload]
        return np.full(len(df), np.nan if dtype is float else None, dtype=dtype)  # type: ignore[arg-type,call-overload]

    kinds = [split_kinds(c) for c in col(C.CATEGORY)]
    cat = np.array([k[0] if k else None for k in kinds], dtype=object)
    item = np.array(
        [None if i is None or (isinstance(i, float) and np.isnan(i)) else str(i) for i in col(C.ITEM)],
        dtype=object,
    )
    return (
        UserEvents(
            user_id=str(user_id),
            ts=ts_idx,
            local=local,
            hour=local.hour.to_numpy(),
            weekday=local.weekday.to_numpy(),
            lat=pd.to_numeric(pd.Series(col(C.LAT)), errors="coerce").to_numpy(dtype=float),
            lon=pd.to_numeric(pd.Series(col(C.LON)), errors="coerce").to_numpy(dtype=float),
            item=item,
            category=cat,
            text=col(C.TEXT),
            rating=pd.to_numeric(pd.Series(col(C.RATING)), errors="coerce").to_numpy(dtype=float),
            kinds=kinds,
            names=col(C.ITEM_NAME),
        ),
        n_future,
    )
