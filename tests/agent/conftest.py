from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mining import Fact, UserProfile
from retrieval.types import Candidate, RequestContext


@pytest.fixture
def profile() -> UserProfile:
    facts = [
        Fact("data.summary", "data", "120 events at 30 places.", {"events": 120}, 120, 1.0),
        Fact("rhythm.peak_hours", "rhythm", "Most active around 12:00.", {"peaks": [12]}, 120, 1.0),
        Fact("trans.places", "transition", "Repeated routes: place 1 → place 2.", {}, 50, 0.9),
        Fact("trans.next", "transition", "After Cafe, likely next: Office.", {}, 20, 0.6),
        Fact("space.home", "spatial", "Not enough data for a home area.", {"status": "insufficient"}, 1, 0.0),
    ]
    return UserProfile("u1", facts, "Most active around 12:00.", 120, None)


@pytest.fixture
def ctx() -> RequestContext:
    return RequestContext(time=datetime(2012, 6, 4, 16, tzinfo=UTC), text="somewhere for lunch")


@pytest.fixture
def candidates() -> list[Candidate]:
    return [
        Candidate(
            item_id=f"i{i}",
            category=["Cafe", "Office", "Bar", "Park", "Museum"][i % 5],
            attrs={"lat": 40.75, "lon": -73.98},
            sources=["repeat", "markov"] if i < 2 else ["popular"],
            features={"user_count_log": 1.5 if i < 2 else 0.0, "distance_km": 0.5 * i},
            score=1.0 - 0.1 * i,
        )
        for i in range(8)
    ]


def llm_session(client, settings=None, breaker=None, *, timeout_s: float = 10.0, enabled: bool = True):  # type: ignore[no-untyped-def]
    """An LLM session over ``client`` (a fake or the real server's), as a request opens one."""
    import time

    from agent.llm.breaker import CircuitBreaker
    from agent.llm.gateway import LLMGateway, LLMSession
    from core.settings import Settings

    s = settings or Settings(env="test")
    gw = LLMGateway(
        client, breaker or CircuitBreaker(), s.llm.model_name, None, s.llm.retries, enabled=enabled
    )
    if not enabled:
        return gw.unused(time.monotonic() + timeout_s, "LLM disabled")
    return LLMSession(gw, time.monotonic() + timeout_s)
