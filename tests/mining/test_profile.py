"""Planted behaviour is recovered; odd inputs give valid profiles with "not enough data" facts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core import columns as C
from domains.places import PLACES
from mining import UserProfile, global_stats
from mining import build_profile as _build
from mining.facts import Fact
from tests.mining.conftest import make_events


def build_profile(*args, **kw):  # type: ignore[no-untyped-def]
    """The places domain's miners (these events are check-ins)."""
    return _build(*args, plan=PLACES.mining_plan(), **kw)


def _fact(p: UserProfile, fid: str) -> Fact:
    f = p.fact(fid)
    assert f is not None, f"missing fact {fid}: {[x.id for x in p.facts]}"
    return f


def test_planted_home_and_work(planted: Callable[..., pd.DataFrame]) -> None:
    p = build_profile(planted(), "u")
    clusters = {c["id"]: c for c in _fact(p, "space.clusters").value["clusters"]}
    home = _fact(p, "space.home")
    work = _fact(p, "space.work")
    assert home.sufficient and work.sufficient
    hc = clusters[home.value["cluster"]]["center"]
    wc = clusters[work.value["cluster"]]["center"]
    assert abs(hc[0] - 40.678) < 0.01 and abs(hc[1] + 73.944) < 0.01
    assert abs(wc[0] - 40.758) < 0.01 and abs(wc[1] + 73.985) < 0.01
    # the home's coordinates never reach the text
    assert "40.6" not in p.text and "73.9" not in p.text


def test_planted_weekly_rhythm(planted: Callable[..., pd.DataFrame]) -> None:
    p = build_profile(planted(), "u")
    peak = _fact(p, "rhythm.peak_hours").value
    planted_hours = {8, 9, 13, 19, 20, 22}  # commute, lunch, bar evenings, home
    assert set(peak["peaks"]) <= planted_hours | {h - 1 for h in planted_hours} | {
        h + 1 for h in planted_hours
    }
    assert sum(peak["hour_distribution"][2:7]) == 0
    weekly = _fact(p, "ts.weekly")
    assert weekly.sufficient
    by_day = weekly.value["seasonal_by_weekday"]
    assert min(by_day[:5]) > max(by_day[5:])  # weekdays busier than weekends


def test_planted_trend_and_anomaly(planted: Callable[..., pd.DataFrame]) -> None:
    p = build_profile(planted(weeks=16, anomaly_day=60), "u")
    assert _fact(p, "ts.trend").value["direction"] == "rising"
    days = _fact(p, "ts.anomalies").value["days"]
    assert days and days[0]["date"] == (datetime(2012, 1, 2) + timedelta(days=60)).date().isoformat()
    fc = _fact(p, "ts.forecast")
    assert fc.sufficient and len(fc.value["next_7_days"]) == 7 and fc.value["total"] > 0


def test_planted_a_to_b_habit(planted: Callable[..., pd.DataFrame]) -> None:
    p = build_profile(planted(), "u")
    routes = _fact(p, "trans.places").value["top_routes"]
    assert {"from": "cafeA", "to": "officeB"}.items() <= routes[0].items()
    morning = _fact(p, "habit.wd_morning")
    assert morning.value["category"] in {"Coffee Shop", "Office"}


def test_global_transitions_back_off(planted: Callable[..., pd.DataFrame]) -> None:
    df = planted()
    gs = global_stats(df)
    assert gs.category_next["Coffee Shop"]["Office"] > 0.9
    newbie = make_events([(datetime(2012, 6, 1, 8), "c1", 40.7, -73.9, "Coffee Shop")], user="n")
    p = build_profile(newbie, "n", global_stats=gs)
    assert _fact(p, "trans.next").value["next"][0][0] == "Office"


def test_text_is_bounded_and_traceable(planted: Callable[..., pd.DataFrame]) -> None:
    p = build_profile(planted(), "u")
    assert 10 < len(p.text.split()) <= 120
    ids = p.fact_ids
    assert p.text_fact_ids and all(set(s) <= ids for s in p.text_fact_ids)
    assert json.loads(json.dumps(p.to_dict()))["user_id"] == "u"
    assert UserProfile.from_dict(p.to_dict()).facts == p.facts


def _valid(p: UserProfile) -> None:
    assert p.fact("data.summary") is not None
    json.dumps(p.to_dict())  # serialisable
    assert len(p.text.split()) <= 120
    for f in p.facts:
        assert 0.0 <= f.confidence <= 1.0 and f.statement


@pytest.mark.parametrize(
    "case",
    ["empty", "one_event", "one_place", "one_instant", "no_coords", "future"],
)
def test_edge_cases_give_valid_profiles(case: str) -> None:
    t0 = datetime(2012, 5, 1, 12)
    if case == "empty":
        df = make_events([])
    elif case == "one_event":
        df = make_events([(t0, "a", 40.7, -74.0, "Bar")])
    elif case == "one_place":
        df = make_events([(t0 + timedelta(days=i, hours=i % 5), "a", 40.7, -74.0, "Bar") for i in range(40)])
    elif case == "one_instant":
        df = make_events([(t0, f"i{i}", 40.7 + i * 0.01, -74.0, None) for i in range(20)])
    elif case == "no_coords":
        df = make_events([(t0 + timedelta(days=i), f"i{i % 3}", None, None, None) for i in range(30)])
    else:
        df = make_events(
            [(datetime(2031, 1, 1) + timedelta(days=i), "a", 40.7, -74.0, "Bar") for i in range(10)]
        )
    p = build_profile(df, "u", now=datetime(2013, 1, 1, tzinfo=UTC))
    _valid(p)
    insufficient = {f.id for f in p.facts if not f.sufficient}
    if case in ("empty", "future"):
        assert p.n_events == 0 and "data.summary" in insufficient
        if case == "future":
            assert p.fact("data.summary").value["future_ignored"] == 10  # type: ignore[union-attr]
    if case == "one_event":
        assert "rhythm.peak_hours" in insufficient and "little is known" in p.text
    if case == "one_place":
        assert _fact(p, "space.gyration").value["radius_of_gyration_km"] == 0.0
        assert "trans.places" in {f.id for f in p.facts}
    if case == "one_instant":
        assert "ts.trend" in insufficient
    if case == "no_coords":
        assert "space.clusters" in insufficient


def test_reviews_sentiment() -> None:
    df = make_events(
        [
            (datetime(2012, 5, 1 + i, 12), "r1" if i % 2 else "r2", 40.7, -74.0, "Pizza" if i % 2 else "Cafe")
            for i in range(8)
        ]
    )
    df[C.TEXT] = np.where(
        df[C.CATEGORY] == "Pizza", "Delicious pizza, friendly staff", "Rude barista, cold coffee, overpriced"
    )
    p = build_profile(df, "u")
    s = _fact(p, "sentiment.reviews")
    assert s.value["by_category"]["Pizza"] > 0 > s.value["by_category"]["Cafe"]
    assert "service" in s.value["aspects"]
