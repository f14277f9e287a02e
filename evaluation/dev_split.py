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
from core.ingest import parse_file


@dataclass
class Query:
    user_id: str
    trajectory_id: str
    ts: pd.Timestamp
    tz_offset_min: int
    target_item: str
    prefix_rows: np.ndarray  # positions in the user's test rows that are before the target


@dataclass
class DevSplit:
    history: pd.DataFrame  # events frame, rows before the first test time
    test: pd.DataFrame  # events frame of the test file, with trajectory_id
    queries: list[Query]


def load_split(history_csv: Path, test_csv: Path, zone: str = "America/New_York") -> DevSplit:
    hist, _, _, _, _ = parse_file(Path(history_csv), None, zone)
    test, _, _, _, fmt = parse_file(Path(test_csv), None, zone)
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
        queries.append(
            Query(
                user_id=str(u),
                trajectory_id=str(traj),
                ts=last[C.TIME],
                tz_offset_min=int(last[C.TZ_OFFSET]),
                target_item=str(last[C.ITEM]),
                prefix_rows=np.array([], dtype=int),
            )
        )
    queries.sort(key=lambda q: (q.ts, q.user_id))
    return DevSplit(hist, test, queries)


def user_input(
    split: DevSplit, q: Query, by_user_hist: dict[str, pd.DataFrame], by_user_test: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    """The query's input: the user's history plus their test rows strictly before the target."""
    h = by_user_hist.get(q.user_id)
    t = by_user_test.get(q.user_id)
    parts = []
    if h is not None:
        parts.append(h)
    if t is not None:
        parts.append(t[t[C.TIME] < q.ts])
    if not parts:
        return split.history.iloc[0:0]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
