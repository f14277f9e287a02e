"""Synthetic users with planted behaviour, built as events frames (core.columns)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core import columns as C

HOME = (40.6782, -73.9442)  # planted home
WORK = (40.7580, -73.9855)  # planted office, ~9 km away


def make_events(
    rows: list[tuple[datetime, str, float | None, float | None, str | None]], user: str = "u"
) -> pd.DataFrame:
    """rows: (local time, item, lat, lon, category); local offset -300 (New York winter)."""
    df = pd.DataFrame(rows, columns=["local", C.ITEM, C.LAT, C.LON, C.CATEGORY])
    df[C.TIME] = pd.to_datetime(df["local"]).dt.tz_localize("UTC") + pd.Timedelta(minutes=300)
    df[C.TZ_OFFSET] = -300
    df[C.USER] = user
    df[C.KIND] = "checkin"
    df[C.TEXT] = None
    df[C.RATING] = np.nan
    df[C.EVENT_ID] = [f"e{i}" for i in range(len(df))]
    df[C.ITEM_NAME] = None
    return df.drop(columns=["local"])


@pytest.fixture
def planted() -> Callable[..., pd.DataFrame]:
    """A commuter: home nights/weekends, office weekdays 9-17, coffee (A) then office (B) most mornings,
    activity that rises over time, and one party day with a burst of events."""

    def build(weeks: int = 12, seed: int = 0, anomaly_day: int = 40) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        rows: list[tuple[datetime, str, float | None, float | None, str | None]] = []
        start = datetime(2012, 1, 2)  # a Monday
        for d in range(weeks * 7):
            day = start + timedelta(days=d)
            wd = day.weekday()
            jitter = lambda: float(rng.normal(0, 0.0004))  # noqa: E731
            # rising trend: more evening outings later on
            n_extra = int(rng.poisson(0.3 + 2.5 * d / (weeks * 7)))
            if wd < 5:
                rows.append(
                    (
                        day + timedelta(hours=8, minutes=int(rng.integers(0, 20))),
                        "cafeA",
                        WORK[0] + 0.002,
                        WORK[1],
                        "Coffee Shop",
                    )
                )
                rows.append(
                    (
                        day + timedelta(hours=8, minutes=45),
                        "officeB",
                        WORK[0] + jitter(),
                        WORK[1] + jitter(),
                        "Office",
                    )
                )
                rows.append((day + timedelta(hours=13), "deli", WORK[0] - 0.001, WORK[1] + 0.001, "Deli"))
                rows.append(
                    (day + timedelta(hours=17), "officeB", WORK[0] + jitter(), WORK[1] + jitter(), "Office")
                )
            rows.append(
                (
                    day + timedelta(hours=22, minutes=int(rng.integers(0, 50))),
                    "home",
                    HOME[0] + jitter(),
                    HOME[1] + jitter(),
                    "Home (private)",
                )
            )
            if wd >= 5:
                rows.append((day + timedelta(hours=10), "park", HOME[0] + 0.003, HOME[1] - 0.002, "Park"))
                rows.append(
                    (
                        day + timedelta(hours=9),
                        "homeAM",
                        HOME[0] + jitter(),
                        HOME[1] + jitter(),
                        "Home (private)",
                    )
                )
            for k in range(n_extra):
                rows.append(
                    (day + timedelta(hours=19, minutes=10 * k), f"bar{k}", 40.72 + 0.001 * k, -73.99, "Bar")
                )
            if d == anomaly_day:
                for k in range(25):
                    rows.append(
                        (day + timedelta(hours=15, minutes=5 * k), "party", 40.70, -73.95, "Nightclub")
                    )
        return make_events(rows)

    return build


NOW = datetime(2013, 1, 1, tzinfo=UTC)
