"""Real NYC users give sane, non-empty profiles (reads shared/datasets)."""

from __future__ import annotations

import pandas as pd
import pytest

from core import columns as C
from domains.places import PLACES
from mining import build_profile as _build
from mining import global_stats
from tests.conftest import DATASETS


def build_profile(*args, **kw):  # type: ignore[no-untyped-def]
    """The places domain's miners (these events are check-ins)."""
    return _build(*args, plan=PLACES.mining_plan(), **kw)


pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def nyc() -> pd.DataFrame:
    raw = pd.read_csv(DATASETS / "checkins_train.csv", dtype={"user_id": str, "stan_poi_id": str})
    ts = pd.to_datetime(raw["UTC_time_minute"], utc=True)
    df = pd.DataFrame(
        {
            C.USER: raw["user_id"],
            C.ITEM: raw["stan_poi_id"],
            C.TIME: ts,
            C.TZ_OFFSET: (ts.dt.tz_convert("America/New_York").dt.tz_localize(None) - ts.dt.tz_localize(None))
            .dt.total_seconds()
            .floordiv(60)
            .astype(int),
            C.LAT: raw["latitude"],
            C.LON: raw["longitude"],
            C.CATEGORY: raw["POI_catname"],
        }
    )
    return df


def test_real_users(nyc: pd.DataFrame) -> None:
    gs = global_stats(nyc)
    users = nyc[C.USER].value_counts()
    picks = [users.index[0], users.index[len(users) // 2], users.index[-1]]
    for u in picks:
        p = build_profile(nyc[nyc[C.USER] == u], u, global_stats=gs)
        assert p.n_events == users[u]
        assert p.text
        rg = p.fact("space.gyration")
        assert rg is not None and 0 <= rg.value["radius_of_gyration_km"] < 100  # NYC-sized
        assert all(" 40." not in p.text and "-73." not in p.text for _ in [0])
    busy = build_profile(nyc[nyc[C.USER] == picks[0]], picks[0], global_stats=gs)
    assert sum(f.sufficient for f in busy.facts) >= 10
