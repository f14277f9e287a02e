"""A synthetic catalog and its users, for serving and scale benchmarks beyond the NYC data's size.

    python benchmarks/synthetic_catalog.py --items 100000 --users 100000 --events-per-user 10 \
        --out /tmp/synthetic.jsonl
    CHRONOTOPE_DATA_DIR=/tmp/syn chronotope ingest /tmp/synthetic.jsonl --format events
    CHRONOTOPE_DATA_DIR=/tmp/syn python benchmarks/load_api.py --no-embedding

Places lie in city-sized clusters of neighbourhoods, each with a category from a few hundred and a
Zipf popularity; each user has a home neighbourhood, a handful of favourite places near it that
they revisit at their own hours (half of them on weekdays only), and occasional trips anywhere.
A population shaped like NYC at scale (benchmarks/scale.py): ``--users 100000 --events-per-user 100``
(10M events). Deterministic for a seed. Writes
the generic events format (docs/ingest-format.md), one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--events-per-user", type=int, default=10)
    ap.add_argument("--categories", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    n_hoods = max(a.items // 200, 1)
    hood_lat = 40.55 + rng.random(n_hoods) * 0.35  # a New York-sized box
    hood_lon = -74.15 + rng.random(n_hoods) * 0.45
    item_hood = rng.integers(0, n_hoods, a.items)
    lat = hood_lat[item_hood] + rng.normal(0, 0.004, a.items)
    lon = hood_lon[item_hood] + rng.normal(0, 0.004, a.items)
    cats = [f"Synthetic Category {i}" for i in range(a.categories)]
    item_cat = rng.zipf(1.3, a.items) % a.categories
    popularity = rng.zipf(1.2, a.items).astype(float)
    by_hood = [np.flatnonzero(item_hood == h) for h in range(n_hoods)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    n = 0
    with a.out.open("w") as fh:
        for u in range(a.users):
            home = int(rng.integers(0, n_hoods))
            near = by_hood[home] if len(by_hood[home]) else np.arange(a.items)
            p = popularity[near] / popularity[near].sum()
            favourites = rng.choice(near, size=min(5, len(near)), replace=False, p=p)
            hours = rng.integers(7, 23, len(favourites))
            weekdays_only = rng.random(len(favourites)) < 0.5  # work-like places: Monday to Friday
            t = start + timedelta(days=float(rng.random() * 30))
            for _ in range(a.events_per_user):
                if rng.random() < 0.8:
                    k = int(rng.integers(0, len(favourites)))
                    item, hour = int(favourites[k]), int(hours[k])
                else:
                    item, hour = int(rng.integers(0, a.items)), int(rng.integers(0, 24))
                t = (t + timedelta(days=float(rng.exponential(3)))).replace(hour=hour)
                if item in favourites[weekdays_only] and t.weekday() >= 5:
                    t += timedelta(days=7 - t.weekday())  # moved to the Monday after
                fh.write(
                    json.dumps(
                        {
                            "user_id": f"s{u}",
                            "item_id": f"i{item}",
                            "timestamp": t.isoformat(),
                            "kind": "checkin",
                            "lat": round(float(lat[item]), 6),
                            "lon": round(float(lon[item]), 6),
                            "category": cats[int(item_cat[item])],
                            "item_name": f"Place {item}",
                            "tz_offset_min": -300,
                        }
                    )
                    + "\n"
                )
                n += 1
    print(f"wrote {n:,} events for {a.users:,} users over {a.items:,} places to {a.out}")


if __name__ == "__main__":
    main()
