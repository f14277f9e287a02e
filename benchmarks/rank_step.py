"""p50/p95 of the full candidate + rank step for one user (no LLM), on the NYC catalog.

    .venv/bin/python benchmarks/rank_step.py [--requests 200] [--with-embedding]

Builds a store in a temp dir (ingest + mine), trains the ranker if none is given via
CHRONOTOPE_DATA_DIR, then times Retriever.recommend for random users at random times.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from core.db import open_store
from core.ingest import ingest_file
from core.settings import Settings
from retrieval.service import Retriever
from retrieval.types import RequestContext

CSV = Path(__file__).resolve().parents[2] / "shared/datasets/foursquare_nyc/checkins_train.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--with-embedding", action="store_true", help="Needs an index in CHRONOTOPE_DATA_DIR.")
    ap.add_argument(
        "--direct",
        action="store_true",
        help="Time Recommender.recommend on the parsed CSV (no store); uses the newest model in "
        "CHRONOTOPE_DATA_DIR/models if there is one.",
    )
    a = ap.parse_args()
    if a.direct:
        direct(a.requests)
        return
    data_dir = os.environ.get("CHRONOTOPE_DATA_DIR")
    tmp = None
    if not data_dir:
        tmp = tempfile.TemporaryDirectory()
        data_dir = tmp.name
    s = Settings(data_dir=Path(data_dir))
    _, factory = open_store(s)
    if tmp is not None:
        ingest_file(CSV, factory)
    r = Retriever.load(s, factory, load_index=a.with_embedding)
    users = list(r.histories)
    rng = np.random.default_rng(0)
    times = []
    for i in range(a.requests + 10):
        u = users[rng.integers(len(users))]
        t = datetime(2012, 11, 10, tzinfo=UTC) + timedelta(hours=int(rng.integers(0, 24 * 30)))
        t0 = time.perf_counter()
        r.recommend(None, u, RequestContext(time=t), k=10)
        if i >= 10:  # warm-up excluded
            times.append((time.perf_counter() - t0) * 1000)
    ts = np.array(times)
    print(
        f"candidate+rank ({r.status()['ranker']}, embedding={'on' if r.index else 'off'}): "
        f"p50 {np.percentile(ts, 50):.1f} ms, p95 {np.percentile(ts, 95):.1f} ms, "
        f"max {ts.max():.1f} ms over {len(ts)} requests"
    )


def direct(requests: int) -> None:
    import pandas as pd

    from core import columns as C
    from core.ingest import parse_file
    from core.settings import get_settings
    from retrieval.recommender import Recommender

    ev, _, _, _, _ = parse_file(CSV)
    ev = ev[ev[C.TIME] < pd.Timestamp("2012-11-09 21:54", tz="UTC")]
    items = (
        ev.groupby(C.ITEM)
        .agg(
            name=(C.ITEM_NAME, "first"),
            category=(C.CATEGORY, "first"),
            lat=(C.LAT, "median"),
            lon=(C.LON, "median"),
        )
        .reset_index()
        .rename(columns={C.ITEM: "item_id"})
    )
    t0 = time.perf_counter()
    rec = Recommender.fit(ev, items, ranker="learned", models_dir=get_settings().models_dir)
    fit_s = time.perf_counter() - t0
    hist = {u: g.reset_index(drop=True) for u, g in ev.groupby(C.USER, sort=False)}
    users = list(hist)
    rng = np.random.default_rng(0)
    times = []
    for i in range(requests + 10):
        u = users[rng.integers(len(users))]
        t = datetime(2012, 11, 10, tzinfo=UTC) + timedelta(hours=int(rng.integers(0, 24 * 30)))
        t1 = time.perf_counter()
        rec.recommend(str(u), hist[u], RequestContext(time=t), k=10)
        if i >= 10:
            times.append((time.perf_counter() - t1) * 1000)
    ts = np.array(times)
    print(
        f"Recommender.fit {fit_s:.2f} s ({rec.stats.n} items); candidate+rank ({rec.ranker.name}): "
        f"p50 {np.percentile(ts, 50):.1f} ms, p95 {np.percentile(ts, 95):.1f} ms, "
        f"max {ts.max():.1f} ms over {len(ts)} requests"
    )


if __name__ == "__main__":
    main()
