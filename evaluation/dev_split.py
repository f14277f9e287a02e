"""The evaluation protocol of shared/datasets/foursquare_nyc/README.md, as queries.

History rows at or after the earliest test time are ignored. For each test trajectory with ≥ 2
check-ins, the target is its last check-in; the input is the history plus the same user's test
rows before the target. The target's POI, category and coordinates never reach the features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core import columns as C
from domains import formats


@dataclass
class Query:
    user_id: str
    trajectory_id: str
    ts: pd.Timestamp
    tz_offset_min: int
    target_item: str
    prefix_rows: np.ndarray  # positions in the user's test rows that are before the target
    # The "where next?" setting: ranked at the time of the check-in before the target (the
    # target's own time unknown), and/or with only the target trajectory's prefix as test input.
    prev_ts: pd.Timestamp | None = None
    prev_tz_offset_min: int = 0
    query_time_known: bool = True
    prefix_only: bool = False

    def rank_time(self) -> tuple[pd.Timestamp, int]:
        """When the ranking is for, and that moment's UTC offset (minutes)."""
        if self.query_time_known or self.prev_ts is None:
            return self.ts, self.tz_offset_min
        return self.prev_ts, self.prev_tz_offset_min


@dataclass
class DevSplit:
    history: pd.DataFrame  # events frame, rows before the first test time
    test: pd.DataFrame  # events frame of the test file, with trajectory_id
    queries: list[Query]


def load_split(
    history_csv: Path,
    test_csv: Path,
    zone: str | None = None,
    *,
    query_time: bool = True,
    prefix_only: bool = False,
) -> DevSplit:
    """``query_time=False``: rank each target at the time of the check-in before it (a live
    "where next?" does not know when the next visit will be). ``prefix_only``: the test input is
    only the target trajectory's prefix, not the user's earlier test trajectories (GETNext-like)."""
    registry = formats()
    hist = registry.parse(Path(history_csv), None, zone).events
    parsed = registry.parse(Path(test_csv), None, zone)
    test, fmt = parsed.events, parsed.format
    if "trajectory_id" not in str(test["attributes"].iloc[0] if len(test) else ""):
        raise ValueError(f"{test_csv}: expected the GETNext format with trajectory_id (found {fmt})")
    test = test.copy()
    test["trajectory_id"] = [
        a.get("trajectory_id") if isinstance(a, dict) else None for a in test["attributes"]
    ]
    t0 = test[C.TIME].min()
    hist = hist[hist[C.TIME] < t0].reset_index(drop=True)
    test = test.sort_values([C.USER, C.TIME], kind="stable").reset_index(drop=True)
    queries: list[Query] = []
    for (u, traj), g in test.groupby([C.USER, "trajectory_id"], sort=False):
        if len(g) < 2:
            continue
        last = g.loc[g[C.TIME].idxmax()]
        rest = g.drop(index=last.name)
        prev = rest.loc[rest[C.TIME].idxmax()]  # the check-in before the target
        queries.append(
            Query(
                user_id=str(u),
                trajectory_id=str(traj),
                ts=last[C.TIME],
                tz_offset_min=int(last[C.TZ_OFFSET]),
                target_item=str(last[C.ITEM]),
                prefix_rows=np.array([], dtype=int),
                prev_ts=prev[C.TIME],
                prev_tz_offset_min=int(prev[C.TZ_OFFSET]),
                query_time_known=query_time,
                prefix_only=prefix_only,
            )
        )
    queries.sort(key=lambda q: (q.ts, q.user_id))
    return DevSplit(hist, test, queries)


def user_input(
    split: DevSplit, q: Query, by_user_hist: dict[str, pd.DataFrame], by_user_test: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    """The query's input: the user's history plus their test rows strictly before the target
    (with ``q.prefix_only``, only the target trajectory's)."""
    h = by_user_hist.get(q.user_id)
    t = by_user_test.get(q.user_id)
    if t is not None and q.prefix_only:
        t = t[t["trajectory_id"].astype(str) == q.trajectory_id]
    parts = []
    if h is not None:
        parts.append(h)
    if t is not None:
        parts.append(t[t[C.TIME] < q.ts])
    if not parts:
        return split.history.iloc[0:0]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
