"""Example profiles and places with real values, for the explanation tests (unit and real LLM)."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.explanations import Situation
from domains.evidence import RequestMoment
from domains.places import PLACES
from mining import Fact, UserProfile
from retrieval.types import Candidate

KINDS = ("Cafe", "Office", "Bar", "Park", "Museum", "Taco Place")
WORK = (40.7500, -73.9800)


def rich_profile() -> UserProfile:
    facts = [
        Fact("data.summary", "data", "120 events at 30 places.", {"events": 120}, 120, 1.0),
        Fact("rhythm.peak_hours", "rhythm", "Most active around 12:00.", {"peaks": [12, 19]}, 120, 1.0),
        Fact(
            "rhythm.peak_days", "rhythm", "Busiest days: Monday and Friday.", {"top_days": [0, 4]}, 120, 1.0
        ),
        Fact(
            "space.clusters",
            "spatial",
            "Activity concentrates in 2 area(s): area A1 60%, area A2 20%.",
            {
                "clusters": [
                    {"id": "area A1", "share": 0.6, "center": list(WORK)},
                    {"id": "area A2", "share": 0.2, "center": [40.70, -73.95]},
                ]
            },
            100,
            1.0,
        ),
        Fact("space.work", "spatial", "Likely work/study area: area A1.", {"cluster": "area A1"}, 30, 0.8),
        Fact("space.home", "spatial", "Not enough data for a home area.", {"status": "insufficient"}, 1, 0.0),
        Fact(
            "habit.wd_midday",
            "habit",
            "On weekday middays (11-14h): in area A1, mostly at Cafe places.",
            {
                "slot": "wd_midday",
                "events": 20,
                "area": "area A1",
                "category": "Cafe",
                "item": "i0",
                "item_share": 0.4,
            },
            20,
            1.0,
        ),
        Fact(
            "trans.places",
            "transition",
            "Repeated routes: place i9 → place i1 (12×).",
            {"top_routes": [{"from": "i9", "to": "i1", "count": 12, "p": 0.5}]},
            50,
            0.9,
        ),
        Fact(
            "trans.next",
            "transition",
            "After Office, likely next: Cafe, Bar.",
            {"after": "Office", "next": [["Cafe", 0.4], ["Bar", 0.2]]},
            20,
            0.6,
        ),
        Fact(
            "drift.interests",
            "drift",
            "Interests are shifting (categories): more Taco Place (5%→30%).",
            {
                "basis": "categories",
                "emerging": [{"key": "Taco Place", "early": 0.05, "recent": 0.3}],
                "fading": [],
            },
            80,
            1.0,
        ),
    ]
    return UserProfile("u1", facts, "Most active around 12:00. Often in area A1.", 120, None)


def example_places() -> list[Candidate]:
    def c(i: int, kind: str, lat: float, lon: float, visits: float, dist: float, **extra: float) -> Candidate:
        return Candidate(
            item_id=f"i{i}",
            category=kind,
            attrs={"lat": lat, "lon": lon},
            sources=["repeat"] if visits else ["popular"],
            features={"user_count_log": visits, "distance_km": dist, **extra},
        )

    return [
        c(0, "Cafe", 40.7505, -73.9805, 2.4, 0.3),  # 10 visits, the midday habit's own place
        c(1, "Bar", 40.7600, -73.9700, 1.1, 1.2),  # twice, at the end of the repeated route
        c(2, "Taco Place", 40.7510, -73.9790, 0.0, 0.2),  # new, near work, a rising interest
        c(3, "Museum", 40.8000, -73.9000, 0.0, 8.0),  # new, far: nothing links it but being new
    ]


def monday_noon() -> Situation:
    """Monday 12:10 local (UTC-4): the weekday-midday slot, near the 12:00 peak, a busiest day;
    the last stop an Office (i9)."""
    moment = RequestMoment(datetime(2012, 6, 4, 12, 10, tzinfo=UTC), "i9", "Office")
    return Situation(moment, {"i9": "Office"}.get, KINDS, PLACES)
