"""Mining throughput on the NYC check-ins: all users, wall time and users/s.

    .venv/bin/python benchmarks/mine.py [--workers N] [--db]

Without --db: pure mining from the CSV (what `mining` costs). With --db: the full `chronotope mine`
path (read events from a fresh SQLite store, mine, write profile versions).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from core import columns as C
from mining import build_profile, global_stats

CSV = Path(__file__).resolve().parents[2] / "shared/datasets/foursquare_nyc/checkins_train.csv"


def load() -> pd.DataFrame:
    raw = pd.read_csv(CSV, dtype={"user_id": str, "stan_poi_id": str})
    ts = pd.to_datetime(raw["UTC_time_minute"], utc=True)
    local = ts.dt.tz_convert("America/New_York").dt.tz_localize(None)
    return pd.DataFrame(
        {
            C.USER: raw["user_id"],
            C.ITEM: raw["stan_poi_id"],
            C.TIME: ts,
            C.TZ_OFFSET: ((local - ts.dt.tz_localize(None)).dt.total_seconds() // 60).astype(int),
            C.LAT: raw["latitude"],
            C.LON: raw["longitude"],
            C.CATEGORY: raw["POI_catname"],
        }
    )


def _chunk(args: tuple[pd.DataFrame, object]) -> int:
    df, gs = args
    n = 0
    for u, g in df.groupby(C.USER, sort=False):
        build_profile(g, str(u), global_stats=gs)  # type: ignore[arg-type]
        n += 1
    return n


def pure(workers: int) -> None:
    df = load()
    t0 = time.perf_counter()
    gs = global_stats(df)
    users = df[C.USER].unique()
    parts = [df[df[C.USER].isin(users[i :: workers * 8])] for i in range(workers * 8)]
    with ProcessPoolExecutor(workers) as pool:
        n = sum(pool.map(_chunk, [(p, gs) for p in parts]))
    dt = time.perf_counter() - t0
    print(
        f"pure mining: {n} users in {dt:.2f} s = {n / dt:.0f} users/s ({workers} workers, incl. global stats)"
    )


def via_db(workers: int) -> None:
    from core.db import make_engine, make_sessionmaker, upgrade
    from core.ingest import ingest_file
    from jobs.mine import mine_users

    with tempfile.TemporaryDirectory() as d:
        engine = make_engine(f"sqlite:///{d}/b.db")
        upgrade(engine)
        factory = make_sessionmaker(engine)
        ingest_file(CSV, factory)
        t0 = time.perf_counter()
        out = mine_users(factory, data_dir=Path(d), workers=workers)
        dt = time.perf_counter() - t0
        print(f"chronotope mine path: {out['mined']} users in {dt:.2f} s = {out['mined'] / dt:.0f} users/s")
        t0 = time.perf_counter()
        mine_users(factory, ["470"], data_dir=Path(d))
        print(f"incremental re-mine of one user: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--db", action="store_true")
    a = ap.parse_args()
    pure(a.workers)
    if a.db:
        via_db(a.workers)
